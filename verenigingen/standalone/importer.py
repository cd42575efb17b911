"""Import a Mijnrood export into the standalone store: upsert members, report rejected rows, start accounts.

The file is read twice: first to the end without writing anything (a file that cannot be read fails
before a single member is written), then to write members in chunks, one transaction each.
"""

import csv
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import insert, or_, select, update

from verenigingen.accounts.bulk import BulkQueued, queue_bulk_account_creation_for_members
from verenigingen.accounts.errors import IntegrityConflict, ValidationFailed
from verenigingen.accounts.permissions import BULK_ROLES, require_any_role
from verenigingen.mijnrood import MijnroodExport, RowResult
from verenigingen.mijnrood.rows import MEMBER_FIELDS
from verenigingen.standalone.host import StandaloneHost, utc_now
from verenigingen.standalone.schema import members, mijnrood_imports
from verenigingen.standalone.store import new_name

CHUNK = 500
REJECTED_REASONS_COLUMN = "Reden afgewezen"


@dataclass
class ImportResult:
    name: str
    rows: int = 0
    invalid_rows: int = 0
    members_created: int = 0
    members_updated: int = 0
    members_unchanged: int = 0
    rejected_rows_file: str | None = None
    member_names: list[str] = field(default_factory=list)
    accounts: BulkQueued | None = None


def _differs(existing, record: dict) -> bool:
    return any(
        str(getattr(existing, f) or "") != str(record[f] if record[f] is not None else "") for f in MEMBER_FIELDS
    )


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
            require_any_role(self.actor, self.store.roles_of(self.actor), BULK_ROLES, "import members")
        export = MijnroodExport(path, encoding)
        for _ in export:  # the first pass: nothing is written unless the whole file reads
            pass
        result = ImportResult(new_name("IMP"))
        rejected: list[tuple[RowResult, str]] = []
        chunk: list[RowResult] = []
        for row in export:
            result.rows += 1
            if on_row:
                on_row()
            if not row.valid:
                rejected.append((row, "; ".join(f"{p.field or 'rij'}: {p.message}" for p in row.errors)))
                continue
            chunk.append(row)
            if len(chunk) == CHUNK:
                rejected += self._upsert(chunk, result)
                chunk = []
        rejected += self._upsert(chunk, result)
        result.invalid_rows = len(rejected)
        if rejected:
            result.rejected_rows_file = str(self._write_rejected(export, rejected, result.name))
        if create_accounts and result.member_names:
            result.accounts = queue_bulk_account_creation_for_members(
                self.shost.host, self.actor, result.member_names, source_import=result.name
            )
        self._record(path, export, result)
        return result

    def _upsert(self, rows: list[RowResult], result: ImportResult) -> list[tuple[RowResult, str]]:
        """Match by Lidnr., then by e-mail; insert new members, update changed ones, leave the rest."""
        if not rows:
            return []
        try:
            return self._upsert_chunk(rows, result)
        except IntegrityConflict:
            raise ValidationFailed(
                f"the members of rows {rows[0].row} to {rows[-1].row} could not be saved: another import changed "
                "them at the same moment, or two Lidnr. differ only in upper and lower case; import the file again"
            ) from None

    def _upsert_chunk(self, rows: list[RowResult], result: ImportResult) -> list[tuple[RowResult, str]]:
        rejected = []
        ids = [r.values["member_id"] for r in rows if r.values["member_id"]]
        emails = [r.values["email"] for r in rows if r.values["email"]]
        with self.store.transaction():
            db = self.store.db
            found = db.execute(
                select(members).where(or_(members.c.member_id.in_(ids), members.c.email.in_(emails)))
            ).all()
            by_id = {m.member_id: m for m in found if m.member_id}
            by_email = {m.email: m for m in found if m.email}
            new_rows, now = [], utc_now()
            for row in rows:
                record = {f: row.values[f] for f in MEMBER_FIELDS}
                existing = by_id.get(record["member_id"]) or by_email.get(record["email"])
                owner = by_email.get(record["email"])
                if (
                    existing is not None
                    and existing.member_id
                    and record["member_id"]
                    and existing.member_id != record["member_id"]
                ):
                    existing = None
                if owner is not None and owner is not existing:
                    rejected.append((row, f"email: dit e-mailadres hoort bij lid {owner.member_id or owner.name}"))
                    continue
                if existing is None:
                    name = new_name("MEM")
                    new_rows.append({"name": name, **record, "creation": now, "modified": now})
                    result.members_created += 1
                elif _differs(existing, record):
                    name = existing.name
                    db.execute(update(members).where(members.c.name == name).values(**record, modified=now))
                    result.members_updated += 1
                else:
                    name = existing.name
                    result.members_unchanged += 1
                result.member_names.append(name)
            if new_rows:
                db.execute(insert(members), new_rows)
        return rejected

    def _write_rejected(self, export: MijnroodExport, rejected: list[tuple[RowResult, str]], name: str) -> Path:
        """The rejected rows as they were, plus the reasons: fix them and import this file again."""
        folder = self.shost.environment.home / "rejected"
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = folder / f"{export.path.stem}-afgewezen-{name}.csv"
        # It holds IBANs and birth dates: readable by its owner only, from the first byte on.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(descriptor, "w", encoding="utf-8-sig", newline="") as stream:
            writer = csv.writer(stream, delimiter=";")
            writer.writerow([*export.header_cells, REJECTED_REASONS_COLUMN])
            for row, reasons in rejected:
                writer.writerow([*row.cells[: len(export.header_cells)], reasons])
        return path

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
