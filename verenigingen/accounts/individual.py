"""The individual path: one member approved, one request, one job on the queue served first."""

from verenigingen.accounts.eligibility import check_members
from verenigingen.accounts.errors import ValidationFailed
from verenigingen.accounts.manager import REQUEST, AccountCreationManager
from verenigingen.accounts.permissions import INDIVIDUAL_ROLES, require_any_role
from verenigingen.accounts.ports import AuditEntry, Host, NewRequest
from verenigingen.accounts.states import RequestStatus


def queue_account_creation_for_member(
    host: Host,
    actor: str,
    member: str,
    roles: list[str] | None = None,
    role_profile: str | None = None,
    priority: str = "Normal",
) -> str | None:
    """Queue one member's account; returns the request, or None when an existing user was linked."""
    store, settings = host.store, host.settings
    with store.transaction():
        require_any_role(actor, store.roles_of(actor), INDIVIDUAL_ROLES, "create accounts")
        checked = check_members(store, [member], settings.eligible_statuses)
        if checked.refused:
            raise ValidationFailed(f"member {member} {checked.refused[0].message}")
        if checked.link:
            ((linked, user),) = checked.link
            store.link_member(linked.name, user.name)
            store.add_audit(
                [AuditEntry("Member", member, None, "Linked", actor, "existing user of the same e-mail")],
                host.clock(),
            )
            return None
        (eligible,) = checked.eligible
        request = NewRequest(
            "Member",
            member,
            eligible.email,
            eligible.full_name,
            tuple(roles or (settings.default_role,)),
            role_profile,
            priority,
            actor,
        )
        (name,) = store.insert_requests([request], host.clock())
        store.add_audit([AuditEntry(REQUEST, name, None, RequestStatus.QUEUED, actor, "member approved")], host.clock())
    host.jobs.enqueue_individual(name)
    return name


def process_individual_request(host: Host, request: str) -> str:
    return AccountCreationManager(host).process(request)
