"""The individual path: one member approved, one request, one job on the queue served first."""

from typing import cast

from verenigingen.accounts.dispatch import dispatch_after_commit
from verenigingen.accounts.eligibility import check_members
from verenigingen.accounts.errors import ValidationFailed
from verenigingen.accounts.manager import AccountCreationManager, link_existing_user
from verenigingen.accounts.permissions import INDIVIDUAL_ROLES, require_any_role, require_grantable
from verenigingen.accounts.ports import ENQUEUED, AuditEntry, Host, NewRequest
from verenigingen.accounts.states import RequestStatus
from verenigingen.accounts.trackers import REQUEST, member_linked
from verenigingen.text import Text


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
    granted = tuple(roles or (settings.default_role,))
    with store.transaction():
        actor_roles = store.roles_of(actor)
        require_any_role(actor, actor_roles, INDIVIDUAL_ROLES, Text("create accounts"))
        require_grantable(actor_roles, granted, role_profile, settings.default_role)
        checked = check_members(store, [member], settings.eligible_statuses)
        if checked.refused:
            raise ValidationFailed(f"member {member} {checked.refused[0].message}")
        if checked.link:
            ((linked, user),) = checked.link
            link_existing_user(store, linked.name, user.name, granted, actor)
            store.add_audit(
                [member_linked(member, actor)],
                host.clock(),
            )
            return None
        (eligible,) = checked.eligible
        request = NewRequest(
            "Member",
            member,
            cast(str, eligible.email),  # eligible members have one
            eligible.full_name,
            granted,
            role_profile,
            priority,
            actor,
        )
        (name,) = store.insert_requests([request], RequestStatus.QUEUED, host.clock())
        store.add_audit(
            [AuditEntry(REQUEST, name, None, RequestStatus.QUEUED, actor, Text("member approved"))], host.clock()
        )
    dispatch_after_commit(host, lambda h: int(h.jobs.enqueue_individual(name) == ENQUEUED))
    return name


def process_individual_request(host: Host, request: str) -> str:
    return AccountCreationManager(host).process(request)
