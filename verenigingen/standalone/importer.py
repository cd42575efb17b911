"""Import a Mijnrood export into the standalone store: upsert members, report rejected rows, start accounts.

The file is read twice: first to the end without writing anything (a file that cannot be read fails
before a single member is written), then to write members in chunks, one transaction each. What a row
does to a stored member is decided by the shared rules of ``verenigingen.mijnrood.updates``.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, insert, or_, select, update

from verenigingen.accounts.bulk import BulkQueued, queue_bulk_account_creation_for_members
from verenigingen.accounts.errors import IntegrityConflict
from verenigingen.accounts.manager import with_conflict_retries
from verenigingen.accounts.permissions import BULK_ROLES, require_any_role
from verenigingen.mijnrood import MijnroodExport, RowResult
from verenigingen.mijnrood.rejected import RejectedRow, write_rejected_rows
from verenigingen.mijnrood.rows import match_key
from verenigingen.mijnrood.updates import (
    CREATE,
    REFUSE,
    UPDATE,
    StoredMember,
    decide,
    present_fields,
    remember,
    row_reasons,
)
from verenigingen.standalone.host import StandaloneHost, utc_now
from verenigingen.standalone.schema import members, mijnrood_imports, users
from verenigingen.standalone.store import new_name
from verenigingen.text import Text

CHUNK = 500
CONCURRENT_IMPORT = (
    "another import saved a member with this Lidnr. or e-mail address at the same moment; import the file again"
)


@dataclass
class ImportResult:
    name: str
    rows: int = 0
    invalid_rows: int = 0
    members_created: int = 0
    members_updated: int = 0
    members_unchanged: int = 0
    members_refused: int = 0  # valid rows whose update the import rules refused (counted in invalid_rows)
    skipped_rows: int = 0  # double registrations and rows of empty markers: deliberately not imported
    rejected_rows_file: str | None = None
    member_names: list[str] = field(default_factory=list)
    accounts: BulkQueued | None = None


class Importer:
    def __init__(self, shost: StandaloneHost, actor: str):
        self.shost = shost
        self.store = shost.store
        self.actor = actor

    def run(
        self,
        path: Path,
        encoding: str | None = None,
        create_accounts: bool = True,
        on_row: Callable[[], None] | None = None,
    ) -> ImportResult:
        with self.store.transaction():
            require_any_role(self.actor, self.store.roles_of(self.actor), BULK_ROLES, Text("import members"))
        export = MijnroodExport(path, encoding, membership_types=dict(self.shost.settings.membership_types))
        for _ in export:  # the first pass: nothing is written unless the whole file reads
            pass
        self.present = present_fields(frozenset(export.header.positions))
        result = ImportResult(new_name("IMP"))
        rejected: list[RejectedRow] = []
        chunk: list[RowResult] = []
        for row in export:
            result.rows += 1
            if on_row:
                on_row()
            if row.skipped:
                result.skipped_rows += 1
                continue
            if not row.valid:
                rejected.append(RejectedRow(row.row, row.cells, row_reasons(row)))
                continue
            chunk.append(row)
            if len(chunk) == CHUNK:
                rejected += self._upsert(chunk, result)
                chunk = []
        rejected += self._upsert(chunk, result)
        result.invalid_rows = len(rejected)
        if rejected:
            rejected.sort(key=lambda r: r.row)
            result.rejected_rows_file = str(self._write_rejected(export, rejected, result.name))
        if create_accounts and result.member_names:
            result.accounts = queue_bulk_account_creation_for_members(
                self.shost.host, self.actor, result.member_names, source_import=result.name
            )
        self._record(path, export, result)
        return result

    def _upsert(self, rows: list[RowResult], result: ImportResult) -> list[RejectedRow]:
        """One transaction for the chunk; when another import's insert collides with ours, row by row,
        each re-read (and so updating what the other import created): a collision rejects a row, never
        the import."""
        if not rows:
            return []
        try:
            return self._upsert_rows(rows, result)
        except IntegrityConflict:
            pass
        rejected = []
        for row in rows:
            try:
                rejected += self._upsert_rows([row], result)
            except IntegrityConflict:
                rejected.append(RejectedRow(row.row, row.cells, [CONCURRENT_IMPORT]))
                result.members_refused += 1
        return rejected

    def _upsert_rows(self, rows: list[RowResult], result: ImportResult) -> list[RejectedRow]:
        outcome = ImportResult(result.name)
        rejected = with_conflict_retries(self.shost.host, lambda: self._write_chunk(rows, outcome))
        # Counted only once the chunk is committed: a rolled back chunk is tried again from scratch.
        result.members_created += outcome.members_created
        result.members_updated += outcome.members_updated
        result.members_unchanged += outcome.members_unchanged
        result.members_refused += outcome.members_refused
        result.member_names += outcome.member_names
        return rejected

    def _stored(self, rows: list[RowResult]) -> tuple[dict, dict]:
        """The stored members the rows' Lidnr. and e-mail addresses match, keyed as the rules compare them."""
        ids = {match_key(r.values["member_id"]) for r in rows if r.values["member_id"]}
        emails = {match_key(r.values["email"]) for r in rows if r.values["email"]}
        caseless = self.store.engine.dialect.name != "mysql"  # MariaDB's collation ignores case already
        id_column = func.lower(members.c.member_id) if caseless else members.c.member_id
        email_column = func.lower(members.c.email) if caseless else members.c.email
        found = self.store.db.execute(
            select(members).where(or_(id_column.in_(ids), email_column.in_(emails)))
        ).mappings()
        by_id: dict[str, StoredMember] = {}
        by_email: dict[str, StoredMember] = {}
        for values in found:
            stored = StoredMember(values["name"], dict(values), values["user"])
            if values["member_id"]:
                by_id[match_key(values["member_id"])] = stored
            if values["email"]:
                by_email[match_key(values["email"])] = stored
        return by_id, by_email

    def _write_chunk(self, rows: list[RowResult], result: ImportResult) -> list[RejectedRow]:
        result.members_created = result.members_updated = result.members_unchanged = result.members_refused = 0
        result.member_names = []
        rejected = []
        with self.store.transaction():
            db = self.store.db
            by_id, by_email = self._stored(rows)
            new_rows, now = [], utc_now()
            for row in rows:
                decision = decide(row, self.present, by_id, by_email)
                if decision.outcome == REFUSE:
                    rejected.append(RejectedRow(row.row, row.cells, [decision.message]))
                    result.members_refused += 1
                    continue
                if decision.outcome == CREATE:
                    name = new_name("MEM")
                    new_rows.append({"name": name, **decision.changes, "creation": now, "modified": now})
                    result.members_created += 1
                else:
                    name = str(decision.member)
                    if decision.outcome == UPDATE:
                        changed = update(members).where(members.c.name == name)
                        db.execute(changed.values(**decision.changes, modified=now))
                        self._follow_name_change(name, decision.changes)
                        result.members_updated += 1
                    else:
                        result.members_unchanged += 1
                remember(decision, name, by_id, by_email)  # later rows of the chunk see this one
                result.member_names.append(name)
            if new_rows:
                db.execute(insert(members), new_rows)
        return rejected

    def _follow_name_change(self, member: str, changes: dict) -> None:
        """The account of a member shows the member's name: a corrected name reaches it too."""
        if "full_name" in changes:
            self.store.db.execute(update(users).where(users.c.member == member).values(full_name=changes["full_name"]))

    def _write_rejected(self, export: MijnroodExport, rejected: list[RejectedRow], name: str) -> Path:
        """The rejected rows as they were, plus the reasons: fix them and import this file again."""
        folder = self.shost.environment.home / "rejected"
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = folder / f"{export.path.stem}-rejected-{name}.csv"
        return write_rejected_rows(path, export.header_cells, rejected)

    def _record(self, path: Path, export: MijnroodExport, result: ImportResult) -> None:
        with self.store.transaction():
            self.store.db.execute(
                insert(mijnrood_imports).values(
                    name=result.name,
                    file=str(path),
                    encoding=export.encoding,
                    status="Completed",
                    row_count=result.rows,
                    invalid_rows=result.invalid_rows,
                    members_created=result.members_created,
                    members_updated=result.members_updated,
                    members_unchanged=result.members_unchanged,
                    bulk_operation_tracker=result.accounts.tracker if result.accounts else None,
                    rejected_rows_file=result.rejected_rows_file,
                    imported_by=self.actor,
                    creation=utc_now(),
                )
            )
