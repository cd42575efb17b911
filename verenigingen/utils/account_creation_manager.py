"""The public account API under the plan's names: thin wrappers that run the engine on this site as the
session user (every role check is the engine's)."""

import frappe

from verenigingen.accounts import bulk, individual
from verenigingen.accounts.manager import AccountCreationManager
from verenigingen.frappe_host.host import frappe_host

__all__ = [
    "AccountCreationManager",
    "process_bulk_account_creation_batch",
    "queue_account_creation_for_member",
    "queue_bulk_account_creation_for_members",
]


@frappe.whitelist(methods=["POST"])
def queue_bulk_account_creation_for_members(
    member_names: list[str],
    roles: list[str] | None = None,
    role_profile: str | None = None,
    batch_size: int | None = None,
    priority: str | None = None,
    source_import: str | None = None,
) -> dict:
    """One tracker, one request per eligible member, one job per batch; the tracking information."""
    member_names, roles = frappe.parse_json(member_names), frappe.parse_json(roles) if roles else None
    queued = bulk.queue_bulk_account_creation_for_members(
        frappe_host(), frappe.session.user, member_names, roles, role_profile, batch_size, priority, source_import
    )
    frappe.db.commit()  # the batch jobs are enqueued after commit
    return queued.as_dict()


def process_bulk_account_creation_batch(tracker: str, batch_number: int, generation: int = 0) -> dict:
    return vars(bulk.process_bulk_account_creation_batch(frappe_host(), tracker, batch_number, generation))


@frappe.whitelist(methods=["POST"])
def queue_account_creation_for_member(member: str) -> str | None:
    """The request queued for one approved member, or None when an existing user was linked."""
    request = individual.queue_account_creation_for_member(frappe_host(), frappe.session.user, member)
    frappe.db.commit()
    return request
