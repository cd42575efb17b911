"""A member's account as the Member form shows it: the user, the latest requests, and whether one can be
requested now (the engine's own eligibility rules, so the button and the engine never disagree)."""

import frappe
from frappe import _

from verenigingen.accounts.eligibility import check_members
from verenigingen.accounts.ports import Host
from verenigingen.frappe_host.translate import stored_reason

LATEST_REQUESTS = 5


def account_of_member(host: Host, member: str) -> dict:
    with host.store.transaction(readonly=True):
        checked = check_members(host.store, [member], host.settings.eligible_statuses)
    refused = checked.refused[0] if checked.refused else None
    reasons = {
        "not_found": _("there is no such member"),
        "has_user": _("the member has a user account already"),
        "no_email": _("the member has no e-mail address"),
        "open_request": _("the member has an open account request"),
        "email_taken": _("the member's e-mail address belongs to another user"),
    }
    if refused and refused.code == "not_eligible":
        status = frappe.db.get_value("Member", member, "status")
        reasons["not_eligible"] = _("the membership status is {0}").format(_(status) if status else _("unknown"))
    requests = frappe.get_list(
        "Account Creation Request",
        filters={"source_record": member},
        fields=["name", "status", "failure_reason", "failure_text", "creation"],
        order_by="creation desc",
        limit_page_length=LATEST_REQUESTS,
    )
    for request in requests:  # in the reader's language
        request["failure_reason"] = stored_reason(request.failure_reason, request.pop("failure_text"))
    return {
        "user": frappe.db.get_value("Member", member, "user"),
        "requests": requests,
        "refused": {"code": refused.code, "message": reasons.get(refused.code, refused.message)} if refused else None,
        "links_existing_user": bool(checked.link),
    }
