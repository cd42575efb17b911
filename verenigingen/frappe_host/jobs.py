"""What Frappe's workers and scheduler run: a bulk batch, an individual request, the sweep.

Each job runs as the administrator who asked for the work, also when the sweeper (which Frappe's
scheduler runs as Administrator) enqueued it: people are changed as that user, with their permissions.
"""

import frappe

from verenigingen.accounts.bulk import process_bulk_account_creation_batch
from verenigingen.accounts.individual import process_individual_request
from verenigingen.accounts.sweeper import sweep as sweep_engine
from verenigingen.frappe_host.host import frappe_host


def _run_as(user: str | None) -> None:
    if user and user != frappe.session.user:
        frappe.set_user(user)


def run_bulk_batch(tracker: str, batch_number: int, generation: int = 0) -> dict:
    _run_as(frappe.db.get_value("Bulk Operation Tracker", tracker, "requested_by"))
    return vars(process_bulk_account_creation_batch(frappe_host(), tracker, batch_number, generation))


def run_individual(request: str) -> str:
    _run_as(frappe.db.get_value("Account Creation Request", request, "requested_by"))
    return process_individual_request(frappe_host(), request)


def sweep() -> dict:
    """Every minute (scheduler_events): recover, retry what is due, re-enqueue lost jobs."""
    return vars(sweep_engine(frappe_host()))
