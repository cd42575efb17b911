"""Import a Mijnrood export into Member documents, with the rules every host shares (``mijnrood.updates``).

As the standalone importer: the file is read to the end before anything is written (a file that cannot be
read fails before a single member is saved), then members are written in chunks of 500, each committed.
Every member goes through its document as the session user, with that user's permissions: a row whose
document refuses to save is rolled back to its savepoint and becomes a rejected row, never a failed import.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

import frappe
import pymysql

from verenigingen.accounts.bulk import BulkQueued
from verenigingen.accounts.permissions import BULK_ROLES, require_any_role
from verenigingen.frappe_host.settings import account_settings
from verenigingen.mijnrood import MEMBER_FIELDS, MijnroodExport, RowResult
from verenigingen.mijnrood.rejected import RejectedRow
from verenigingen.mijnrood.rows import match_key
from verenigingen.mijnrood.updates import (
    CREATE,
    REFUSE,
    UPDATE,
    Decision,
    StoredMember,
    at,
    decide,
    present_fields,
    remember,
    row_reasons,
)
from verenigingen.text import Text

CHUNK = 500
SAVE_ERRORS = (frappe.ValidationError, frappe.DuplicateEntryError, frappe.PermissionError, pymysql.err.IntegrityError)
CONCURRENT = Text(
    "another import saved a member with this Lidnr. or e-mail address at the same moment; import the file again"
)


@dataclass
class ImportResult:
    name: str
    encoding: str | None = None
    rows: int = 0
    invalid_rows: int = 0
    members_created: int = 0
    members_updated: int = 0
    members_unchanged: int = 0
    members_refused: int = 0  # valid rows the rules or the documents refused (counted in invalid_rows)
    skipped_rows: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)
    member_names: list[str] = field(default_factory=list)
    accounts: BulkQueued | None = None


def save_failure(exc: Exception) -> str:
    """Why a member's document refused, by exception type: Frappe's own message may quote the value."""
    if isinstance(exc, (frappe.UniqueValidationError, frappe.DuplicateEntryError, pymysql.err.IntegrityError)):
        return at(None, CONCURRENT)
    if isinstance(exc, frappe.PermissionError):
        return at(None, Text("you are not permitted to save this member"))
    if isinstance(exc, frappe.InvalidEmailAddressError):
        return at("email", Text("the site does not accept this e-mail address"))
    if isinstance(exc, frappe.InvalidPhoneNumberError):
        return at("phone", Text("the site does not accept this phone number"))
    return at(None, Text("the site refused to save this member ({kind})", kind=type(exc).__name__))


def _comparable(name: str, value):
    """A stored value as the rules compare it: Frappe gives dates and floats, the rows ISO text and Decimal;
    a Currency column holds 0 for 'no amount'."""
    if isinstance(value, date):
        return value.isoformat()
    if name == "dues_amount":
        return Decimal(str(value)).quantize(Decimal("0.01")) if value else None
    return value


class FrappeImporter:
    """Imports one export for one Mijnrood CSV Import document, as the session user."""

    def __init__(self, import_name: str):
        self.import_name = import_name
        self.user = frappe.session.user

    def open(self, path: str | Path, encoding: str | None = None) -> MijnroodExport:
        require_any_role(self.user, set(frappe.get_roles(self.user)), BULK_ROLES, Text("import members"))
        types = dict(account_settings().membership_types)
        export = MijnroodExport(path, encoding, membership_types=types)
        self.present = present_fields(frozenset(export.header.positions))
        return export

    def plan(self, export: MijnroodExport) -> Iterator[tuple[RowResult, Decision | None]]:
        """What :meth:`run` would do with each row, without writing anything: the row and its decision
        (None for a rejected or skipped row). Valid rows come a chunk at a time, after that chunk's others."""
        chunk: list[RowResult] = []
        for row in export:
            if not row.valid:
                yield row, None
                continue
            chunk.append(row)
            if len(chunk) == CHUNK:
                yield from self._plan_chunk(chunk)
                chunk = []
        yield from self._plan_chunk(chunk)

    def _plan_chunk(self, rows: list[RowResult]) -> Iterator[tuple[RowResult, Decision]]:
        if not rows:
            return
        by_id, by_email = self._stored(rows)
        for row in rows:
            if row.values.get("dues_amount") == 0:
                row.values["dues_amount"] = None
            decision = decide(row, self.present, by_id, by_email)
            if decision.outcome != REFUSE:
                remember(decision, decision.member or f"row {row.row}", by_id, by_email)
            yield row, decision

    def run(
        self, path: str | Path, encoding: str | None = None, progress: Callable[[int, int], None] | None = None
    ) -> tuple[ImportResult, MijnroodExport]:
        """``progress(rows done, rows in the file)`` after every committed chunk."""
        export = self.open(path, encoding)
        total = sum(1 for _ in export)  # the first pass: nothing is written unless the whole file reads
        result = ImportResult(self.import_name, export.encoding)
        chunk: list[RowResult] = []
        for row in export:
            result.rows += 1
            if row.skipped:
                result.skipped_rows += 1
            elif not row.valid:
                result.rejected.append(RejectedRow(row.row, row.cells, row_reasons(row)))
            else:
                chunk.append(row)
                if len(chunk) == CHUNK:
                    self._write_chunk(chunk, result)
                    chunk = []
                    if progress:
                        progress(result.rows, total)
        self._write_chunk(chunk, result)
        if progress:
            progress(result.rows, total)
        result.rejected.sort(key=lambda r: r.row)
        result.invalid_rows = len(result.rejected)
        return result, export

    def _stored(self, rows: list[RowResult]) -> tuple[dict, dict]:
        """The members the rows' Lidnr. and e-mail addresses match (the collation ignores case)."""
        ids = [r.values["member_id"] for r in rows if r.values["member_id"]]
        emails = [r.values["email"] for r in rows if r.values["email"]]
        or_filters = [["member_id", "in", ids or [""]], ["email", "in", emails or [""]]]
        fields = ["name", "user", *MEMBER_FIELDS]
        by_id: dict[str, StoredMember] = {}
        by_email: dict[str, StoredMember] = {}
        for found in frappe.get_list("Member", or_filters=or_filters, fields=fields, limit_page_length=0):
            values = {key: _comparable(key, found.get(key)) for key in MEMBER_FIELDS}
            stored = StoredMember(found.name, values, found.user)
            if values["member_id"]:
                by_id[match_key(values["member_id"])] = stored
            if values["email"]:
                by_email[match_key(values["email"])] = stored
        return by_id, by_email

    def _write_chunk(self, rows: list[RowResult], result: ImportResult) -> None:
        if not rows:
            return
        by_id, by_email = self._stored(rows)
        for row in rows:
            if row.values.get("dues_amount") == 0:
                row.values["dues_amount"] = None  # as stored: a Currency column cannot tell 0 from none
            decision = decide(row, self.present, by_id, by_email)
            if decision.outcome == REFUSE:
                result.rejected.append(RejectedRow(row.row, row.cells, [decision.message]))
                result.members_refused += 1
                continue
            savepoint = f"vg_row_{row.row}"
            frappe.db.savepoint(savepoint)
            messages = len(frappe.local.message_log)
            try:
                name = self._save(decision)
            except SAVE_ERRORS as exc:
                frappe.db.rollback(save_point=savepoint)
                del frappe.local.message_log[messages:]  # Frappe's messages may quote the value
                result.rejected.append(RejectedRow(row.row, row.cells, [save_failure(exc)]))
                result.members_refused += 1
                continue
            frappe.db.release_savepoint(savepoint)
            remember(decision, name, by_id, by_email)  # later rows of the chunk see this one
            if decision.outcome == CREATE:
                result.members_created += 1
            elif decision.outcome == UPDATE:
                result.members_updated += 1
            else:
                result.members_unchanged += 1
            result.member_names.append(name)
        frappe.db.commit()

    def _save(self, decision) -> str:
        if decision.outcome == CREATE:
            doc = frappe.get_doc({"doctype": "Member", **decision.changes, "source_import": self.import_name})
            return doc.insert().name
        if decision.outcome == UPDATE:
            doc = frappe.get_doc("Member", decision.member)
            doc.update(decision.changes)
            doc.save()
            if "full_name" in decision.changes and doc.user:
                self._follow_name_change(doc.user, doc.full_name)
        return str(decision.member)

    @staticmethod
    def _follow_name_change(user: str, full_name: str) -> None:
        """The account of a member shows the member's name: a corrected name reaches it too."""
        account = frappe.get_doc("User", user)
        first, _, last = full_name.strip().partition(" ")
        if (account.first_name, account.last_name or "") != (first, last.strip()):
            account.first_name, account.last_name = first, last.strip() or None
            account.save()
