"""The site's entry points for imports and bulk accounts (the names are a contract).

``import_mijnrood`` takes a server path and is for ``bench execute`` only: it is not whitelisted, so
nothing reachable over HTTP takes a file path. Desk starts an import from its document (``start_import``).
"""

import os

import frappe

from verenigingen.accounts.errors import AccountCreationError, PermissionDenied
from verenigingen.accounts.retry import retry_failed_requests
from verenigingen.accounts.states import Roles
from verenigingen.frappe_host import status
from verenigingen.frappe_host.files import IMPORT, read_server_file
from verenigingen.frappe_host.host import frappe_host
from verenigingen.frappe_host.imports import new_import, run_import


def import_mijnrood(path: str, create_accounts: bool = True) -> dict:
    """`bench --site S execute verenigingen.api.import_mijnrood --kwargs '{"path": "/abs/file.csv"}'`:
    the report of the CLI's ``import --json``."""
    content = read_server_file(path)
    name = new_import(content, os.path.basename(path), bool(create_accounts))
    return _engine(run_import, name, bool(create_accounts))


@frappe.whitelist()
def start_import(import_name: str) -> str:
    """Import an attached export in the background (queue long, one job per import); the job id."""
    _require(Roles.ADMINISTRATOR)
    frappe.get_doc(IMPORT, import_name).check_permission("write")
    job_id = f"verenigingen-import-{import_name}"
    frappe.enqueue(
        "verenigingen.api.run_import_job",
        queue="long",
        job_id=job_id,
        deduplicate=True,
        enqueue_after_commit=True,
        import_name=import_name,
    )
    return job_id


def run_import_job(import_name: str) -> dict:
    """The background job start_import enqueues; it runs as the user who started it."""
    return _engine(run_import, import_name)


@frappe.whitelist()
def bulk_status(tracker: str | None = None) -> dict:
    """A bulk operation (the latest when none is named), shaped like the CLI's ``status --json``."""
    _require(Roles.ADMINISTRATOR, Roles.MANAGER)
    tracker = tracker or status.latest_tracker()
    if not tracker:
        raise frappe.DoesNotExistError("no bulk operations yet")
    frappe.get_doc("Bulk Operation Tracker", tracker).check_permission("read")
    return status.bulk_status(frappe_host(), tracker)


@frappe.whitelist(methods=["POST"])
def retry_failed(tracker: str | None = None) -> dict:
    """Queue the failed requests again (of one bulk operation, or all), as the session user."""
    _require(Roles.ADMINISTRATOR)
    report = _engine(retry_failed_requests, frappe_host(), frappe.session.user, tracker or None)
    return {"retried": report.retried, "refused": [refusal.as_dict() for refusal in report.refused]}


def _require(*roles: str) -> None:
    """As frappe.only_for, but also under tests (only_for lets every test and Administrator through)."""
    if set(roles).isdisjoint(frappe.get_roles()):
        raise frappe.PermissionError(f"not allowed: that needs the role {' or '.join(roles)}")


def _engine(function, *args):
    """The engine's refusals as Frappe's errors, with their one-line reason."""
    try:
        return function(*args)
    except PermissionDenied as exc:
        raise frappe.PermissionError(str(exc)) from None
    except AccountCreationError as exc:
        raise frappe.ValidationError(str(exc)) from None
