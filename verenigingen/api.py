"""The site's entry points for imports and bulk accounts (the names are a contract).

``import_mijnrood`` takes a server path and is for ``bench execute`` only: it is not whitelisted, so
nothing reachable over HTTP takes a file path. Desk starts an import from its document (``start_import``).
"""

import os

import frappe
from frappe.utils.background_jobs import is_job_enqueued

from verenigingen.accounts.errors import AccountCreationError, PermissionDenied
from verenigingen.accounts.individual import queue_account_creation_for_member
from verenigingen.accounts.retry import retry_failed_requests
from verenigingen.accounts.states import Roles
from verenigingen.frappe_host import preview, status
from verenigingen.frappe_host.files import IMPORT, read_server_file
from verenigingen.frappe_host.host import frappe_host
from verenigingen.frappe_host.imports import (
    IMPORT_DONE,
    accounts_for_import_checks,
    export_path,
    new_import,
    progress_to_desk,
    run_import,
    start_accounts_for_import,
)
from verenigingen.frappe_host.members import account_of_member
from verenigingen.frappe_host.translate import reason_of, translated
from verenigingen.mijnrood import ExportError


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
    doc = frappe.get_doc(IMPORT, import_name)
    doc.check_permission("write")
    job_id = f"verenigingen-import-{import_name}"
    if doc.status == "Importing" and is_job_enqueued(job_id):
        raise frappe.ValidationError(f"import {import_name} is running already")
    # A write, so that the request commits: a job enqueued after a commit that never comes is never sent.
    doc.db_set({"status": "Importing", "error_message": None})
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
    try:
        return _engine(run_import, import_name, None, progress_to_desk(import_name))
    finally:
        frappe.publish_realtime(IMPORT_DONE, {"import": import_name}, user=frappe.session.user, after_commit=False)


@frappe.whitelist()
def preview_import(import_name: str) -> dict:
    """Validate: the first members as they will be stored, what happens to each, every row's problems.
    Nothing is written."""
    _require(Roles.ADMINISTRATOR)
    frappe.get_doc(IMPORT, import_name).check_permission("write")
    path, _ = export_path(import_name)
    try:
        return _engine(preview.preview_import, import_name, path)
    except ExportError as exc:  # a file that is no Mijnrood export: its one-line reason, never a traceback
        raise frappe.ValidationError(reason_of(exc)) from None


@frappe.whitelist()
def account_checks(import_name: str) -> list[dict]:
    """What stands in the way of the accounts of an import, before they are started (Desk shows it)."""
    _require(Roles.ADMINISTRATOR)
    frappe.get_doc(IMPORT, import_name).check_permission("read")
    return [check.as_dict() for check in _engine(accounts_for_import_checks, import_name)]


@frappe.whitelist(methods=["POST"])
def create_accounts(import_name: str) -> dict:
    """Start bulk account creation for the members of an import made without it; the tracker."""
    _require(Roles.ADMINISTRATOR)
    frappe.get_doc(IMPORT, import_name).check_permission("write")
    return _engine(start_accounts_for_import, import_name)


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
    return _retried(report)


@frappe.whitelist(methods=["POST"])
def retry_request(request: str) -> dict:
    """Desk's Retry on one failed Account Creation Request, as the session user."""
    _require(Roles.ADMINISTRATOR)
    frappe.get_doc("Account Creation Request", request).check_permission("read")
    report = _engine(retry_failed_requests, frappe_host(), frappe.session.user, None, request)
    return _retried(report)


@frappe.whitelist()
def member_account(member: str) -> dict:
    """What the Member form shows: the member's user, its latest requests, and why no account can be
    requested now (None when one can)."""
    _require(Roles.ADMINISTRATOR, Roles.MANAGER)
    frappe.get_doc("Member", member).check_permission("read")
    return account_of_member(frappe_host(), member)


@frappe.whitelist(methods=["POST"])
def request_account(member: str) -> dict:
    """Desk's Create Account on a Member: the individual path, as the session user."""
    frappe.get_doc("Member", member).check_permission("read")
    request = _engine(queue_account_creation_for_member, frappe_host(), frappe.session.user, member)
    return {"request": request, "linked": request is None}


def _retried(report) -> dict:
    """A retry's report for Desk, its refusals in the reader's language."""
    refused = [{**refusal.as_dict(), "message": translated(refusal.message)} for refusal in report.refused]
    return {"retried": report.retried, "refused": refused}


def _require(*roles: str) -> None:
    """As frappe.only_for, but also under tests (only_for lets every test and Administrator through)."""
    if set(roles).isdisjoint(frappe.get_roles()):
        raise frappe.PermissionError(f"not allowed: that needs the role {' or '.join(roles)}")


def _engine(function, *args):
    """The engine's refusals as Frappe's errors, with their one-line reason. The engine commits its own
    transactions; the commit here sends the jobs it enqueued after a commit (a web request commits only
    when it wrote since, so without it they would never go)."""
    try:
        result = function(*args)
        frappe.db.commit()
        return result
    except PermissionDenied as exc:
        raise frappe.PermissionError(reason_of(exc)) from None
    except AccountCreationError as exc:
        raise frappe.ValidationError(reason_of(exc)) from None
