"""One Mijnrood CSV Import run end to end: members, reports, accounts, and the document's outcome, all as
the session user. The report has the shape of the CLI's ``import --json``."""

from collections.abc import Callable
from pathlib import Path

import frappe
from frappe import _

from verenigingen.accounts.bulk import queue_bulk_account_creation_for_members
from verenigingen.accounts.eligibility import refused_counts
from verenigingen.accounts.errors import PermissionDenied, ValidationFailed
from verenigingen.frappe_host.checks import account_checks, require_bulk_queue
from verenigingen.frappe_host.files import IMPORT, refused_accounts_file, rejected_rows_file, save_file
from verenigingen.frappe_host.host import frappe_host
from verenigingen.frappe_host.importer import FrappeImporter, ImportResult
from verenigingen.frappe_host.status import tracker_dict, unsent
from verenigingen.frappe_host.translate import reason_of
from verenigingen.mijnrood import ExportError
from verenigingen.mijnrood.updates import REFUSE
from verenigingen.text import Text

# Realtime events to the user who runs an import (the form listens to them).
IMPORT_PROGRESS = "verenigingen_import_progress"
IMPORT_DONE = "verenigingen_import_done"


def new_import(content: bytes, file_name: str, create_accounts: bool) -> str:
    """A private File with the export and the Mijnrood CSV Import document it is attached to."""
    stored = save_file(content, file_name)
    doc = frappe.get_doc({"doctype": IMPORT, "import_file": stored.file_url, "create_accounts": int(create_accounts)})
    doc.insert()
    stored.reload()  # Frappe attaches a document's Attach fields' files on save: make sure of it
    if (stored.attached_to_doctype, stored.attached_to_name) != (IMPORT, doc.name):
        stored.attached_to_doctype, stored.attached_to_name, stored.attached_to_field = IMPORT, doc.name, "import_file"
        stored.save()
    frappe.db.commit()
    return doc.name


def export_path(import_name: str) -> tuple[str, str]:
    """The full path and the name of the export attached to the import."""
    doc = frappe.get_doc(IMPORT, import_name)
    if not doc.import_file:
        frappe.throw(_("Attach a Mijnrood export to {0} first.").format(import_name))
    # Only the export attached to this import, and only one the user may read: never another document's file.
    found = frappe.get_all(
        "File",
        filters={"file_url": doc.import_file, "attached_to_doctype": IMPORT, "attached_to_name": import_name},
        pluck="name",
        limit=1,
    )
    if not found:
        frappe.throw(_("The export of {0} is not a file attached to it.").format(import_name), frappe.PermissionError)
    stored = frappe.get_doc("File", found[0])
    stored.check_permission("read")
    return stored.get_full_path(), stored.file_name


def _set(import_name: str, values: dict) -> None:
    doc = frappe.get_doc(IMPORT, import_name)
    doc.update(values)
    doc.save()
    frappe.db.commit()


def progress_to_desk(import_name: str) -> Callable[[int, int], None]:
    """The import's progress to the user who started it, for the form's progress bar."""
    user = frappe.session.user

    def publish(done: int, total: int) -> None:
        message = {"import": import_name, "done": done, "total": total}
        frappe.publish_realtime(IMPORT_PROGRESS, message, user=user, after_commit=False)

    return publish


def run_import(
    import_name: str, create_accounts: bool | None = None, progress: Callable[[int, int], None] | None = None
) -> dict:
    """Import the attached export; ExportError (a file that cannot be read) fails the import with its
    one-line reason as a frappe.ValidationError, before any member is written."""
    doc = frappe.get_doc(IMPORT, import_name)
    doc.check_permission("write")
    # In the language of who runs it (a background job starts in the site's): they read its reports.
    from frappe.translate import get_user_lang  # here: imported first in a worker, it is a circular import

    frappe.local.lang = get_user_lang()
    if create_accounts is None:
        create_accounts = bool(doc.create_accounts)
    path, file_name = export_path(import_name)
    user = frappe.session.user
    host = frappe_host()
    if create_accounts:
        try:
            require_bulk_queue(host.settings)
        except ValidationFailed as exc:
            _set(import_name, {"status": "Failed", "error_message": reason_of(exc)})
            raise frappe.ValidationError(reason_of(exc)) from None
    _set(import_name, {"status": "Importing", "imported_by": user, "error_message": None})
    try:
        result, export = FrappeImporter(import_name).run(path, progress=progress)
    except (ExportError, PermissionDenied) as exc:
        frappe.db.rollback()
        reason = reason_of(exc)
        _set(import_name, {"status": "Failed", "error_message": reason})
        error = frappe.PermissionError if isinstance(exc, PermissionDenied) else frappe.ValidationError
        raise error(reason) from None
    stem = Path(file_name).stem
    rejected_url = (
        rejected_rows_file(import_name, stem, export.header_cells, result.rejected) if result.rejected else None
    )
    if create_accounts and result.member_names:
        result.accounts = queue_bulk_account_creation_for_members(
            host, user, result.member_names, source_import=import_name
        )
    refusals = result.accounts.validation_errors if result.accounts else []
    refused_url = refused_accounts_file(import_name, stem, refusals) if refusals else None
    tracker = result.accounts.tracker if result.accounts else None
    _set(
        import_name,
        {
            "status": "Completed",
            "encoding": result.encoding,
            "row_count": result.rows,
            "invalid_rows": result.invalid_rows,
            "skipped_rows": result.skipped_rows,
            "members_created": result.members_created,
            "members_updated": result.members_updated,
            "members_unchanged": result.members_unchanged,
            "members_refused": result.members_refused,
            "bulk_operation_tracker": tracker,
            "rejected_rows_file": rejected_url,
            "refused_accounts_file": refused_url,
        },
    )  # the commit also sends the batch jobs (enqueued after commit)
    return summary(host, result, tracker_dict(host, tracker), refusals, refused_url, rejected_url)


def summary(host, result: ImportResult, tracker: dict | None, refusals: list, refused_file, rejected_file) -> dict:
    accounts = result.accounts
    return {
        "rows": result.rows,
        "invalid_rows": result.invalid_rows,
        "skipped_rows": result.skipped_rows,
        "members_created": result.members_created,
        "members_updated": result.members_updated,
        "members_unchanged": result.members_unchanged,
        "accounts": {
            "requested": accounts.requested if accounts else 0,
            "created": tracker["successful_records"] if tracker else 0,
            "linked": accounts.linked if accounts else 0,
            "failed": tracker["failed_records"] if tracker else 0,
            "refused": refused_counts(refusals),
            "refused_file": refused_file,
            "unsent": unsent(host, tracker["name"]) if tracker else 0,
        },
        "tracker": tracker,
        "rejected_rows_file": rejected_file,
        "checks": [check.as_dict() for check in account_checks(host.settings, accounts.requested)] if tracker else [],
    }


def _members_of(import_name: str) -> list[str]:
    """The members an imported file names, matched as the import matched them (nothing is written)."""
    path, _ = export_path(import_name)
    importer = FrappeImporter(import_name)
    export = importer.open(path)
    return [d.member for _, d in importer.plan(export) if d is not None and d.outcome != REFUSE and d.member]


def accounts_for_import_checks(import_name: str) -> list:
    doc = frappe.get_doc(IMPORT, import_name)
    settings = frappe_host().settings
    members = doc.members_created + doc.members_updated + doc.members_unchanged if doc.status == "Completed" else 0
    return account_checks(settings, members)


def start_accounts_for_import(import_name: str) -> dict:
    """Accounts for an import that was made without them: once, for the members the file names. A
    second click while the first still queues is refused (a lock of the database session, which the
    engine's commits do not release)."""
    lock = f"verenigingen-accounts-{import_name}"
    if not frappe.db.sql("SELECT GET_LOCK(%s, 0)", lock)[0][0]:
        raise ValidationFailed(Text("the accounts of import {name} are being started already", name=import_name))
    try:
        return _start_accounts(import_name)
    finally:
        frappe.db.sql("SELECT RELEASE_LOCK(%s)", lock)


def _start_accounts(import_name: str) -> dict:
    frappe.db.rollback()  # the import as it is now, not as this transaction first saw it
    doc = frappe.get_doc(IMPORT, import_name)
    if doc.status != "Completed":
        raise ValidationFailed(Text("import {name} has not completed: import the file first", name=import_name))
    if doc.bulk_operation_tracker:
        raise ValidationFailed(Text("the accounts of import {name} were started already", name=import_name))
    host = frappe_host()
    require_bulk_queue(host.settings)
    queued = queue_bulk_account_creation_for_members(
        host, frappe.session.user, _members_of(import_name), source_import=import_name
    )
    refusals = queued.validation_errors
    stem = Path(export_path(import_name)[1]).stem
    refused_url = refused_accounts_file(import_name, stem, refusals) if refusals else None
    _set(import_name, {"bulk_operation_tracker": queued.tracker, "refused_accounts_file": refused_url})
    return {
        "tracker": tracker_dict(host, queued.tracker),
        "requested": queued.requested,
        "linked": queued.linked,
        "refused": refused_counts(refusals),
        "checks": [check.as_dict() for check in account_checks(host.settings, queued.requested)],
    }
