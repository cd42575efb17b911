"""AccountCreationManager: one request, one member, one user, each in its own transaction."""

from dataclasses import dataclass, field
from datetime import timedelta

from verenigingen.accounts.errors import DuplicateUserError, PermanentError, ValidationFailed, classify, describe
from verenigingen.accounts.permissions import BULK_ROLES, INDIVIDUAL_ROLES, require_any_role, require_grantable
from verenigingen.accounts.ports import AuditEntry, Host, MemberView, RequestView
from verenigingen.accounts.states import ErrorCategory, RequestStatus

REQUEST = "Account Creation Request"


class _ClaimLost(Exception):
    """The sweeper took the request back (its lease ran out); this worker's work is rolled back."""


def same_person(a: str, b: str) -> bool:
    """Names match when they are equal ignoring case and spacing."""
    return " ".join(a.casefold().split()) == " ".join(b.casefold().split())


@dataclass
class AccountCreationManager:
    """Creates (or links) the user of one request. Running a request twice never makes a second user."""

    host: Host
    _roles: dict[str, set[str]] = field(default_factory=dict)

    def process(self, name: str) -> str:
        """'completed', 'retry', 'failed', or 'skipped' when the request is not ours to run now."""
        store, now = self.host.store, self.host.clock()
        with store.transaction():
            request = store.claim_request(
                name, self.host.worker, now, now + timedelta(seconds=self.host.settings.lease_seconds)
            )
            if request is not None:
                self._audit(request, RequestStatus.QUEUED, RequestStatus.PROCESSING, "picked up")
        if request is None:
            return "skipped"
        worker = self.host.worker
        try:
            with store.transaction():
                self._check_requester(request)
                user = self._create_or_link(request)
                if not store.finish_request(
                    name, worker, RequestStatus.COMPLETED, self.host.clock(), created_user=user
                ):
                    raise _ClaimLost
                self._audit(request, RequestStatus.PROCESSING, RequestStatus.COMPLETED, "account ready")
                if request.tracker:
                    store.add_to_tracker(request.tracker, processed=1, successful=1, failed=0)
            return "completed"
        except _ClaimLost:
            return "skipped"
        except Exception as exc:  # every failure is classified and recorded, never lost
            return self.record_failure(request, exc, owner=worker)

    def record_failure(self, request: RequestView, exc: BaseException, owner: str | None) -> str:
        """Schedule a retry for a passing fault with attempts left; otherwise fail for good.

        ``owner`` is the worker holding the claim, or None for the sweeper recovering an expired lease.
        """
        store, settings, now = self.host.store, self.host.settings, self.host.clock()
        category, reason = classify(exc), describe(exc)
        with store.transaction():
            if category == ErrorCategory.RETRYABLE and request.retry_count < settings.max_retries:
                retry = request.retry_count + 1
                due = now + timedelta(seconds=settings.backoff(retry))
                if not store.requeue_request(
                    request.name, RequestStatus.PROCESSING, owner, retry, due, category, reason
                ):
                    return "skipped"
                note = f"retry {retry} of {settings.max_retries}: {reason}"
                self._audit(request, RequestStatus.PROCESSING, RequestStatus.QUEUED, note)
                return "retry"
            if category == ErrorCategory.RETRYABLE:
                reason = f"gave up after {settings.max_retries} retries: {reason}"
            if not store.finish_request(
                request.name, owner, RequestStatus.FAILED, now, error_category=category, failure_reason=reason
            ):
                return "skipped"
            self._audit(request, RequestStatus.PROCESSING, RequestStatus.FAILED, reason)
            if request.tracker:
                store.add_to_tracker(request.tracker, processed=1, successful=0, failed=1)
        return "failed"

    def _check_requester(self, request: RequestView) -> None:
        """The requester must still hold the role that allowed the request (roles can be revoked)."""
        roles = self._roles.get(request.requested_by)
        if roles is None:
            roles = self._roles[request.requested_by] = self.host.store.roles_of(request.requested_by)
        allowed = BULK_ROLES if request.tracker else INDIVIDUAL_ROLES
        require_any_role(request.requested_by, roles, allowed, "create accounts")
        require_grantable(roles, request.roles, request.role_profile, self.host.settings.default_role)

    def _create_or_link(self, request: RequestView) -> str:
        store = self.host.store
        member = store.get_members([request.source_record]).get(request.source_record)
        if member is None:
            raise PermanentError("the member no longer exists")
        if member.user:
            return member.user  # done before (a job that ran twice): nothing more to do
        # The member as it is now, not as it was when queued: an import may have changed it since.
        if not member.email:
            raise ValidationFailed("the member no longer has an e-mail address")
        if member.status not in self.host.settings.eligible_statuses:
            raise ValidationFailed(f"the member's status is now {member.status or 'unknown'}")
        existing = store.find_user(member.email)
        if existing is not None:
            return self._link_existing(member, existing.name, existing.member, existing.full_name)
        user = store.create_user(
            member.email,
            member.full_name,
            request.roles,
            request.role_profile,
            member.name,
            request.requested_by,
        )
        store.link_member(member.name, user)
        return user

    def _link_existing(self, member: MemberView, user: str, user_member: str | None, full_name: str) -> str:
        if user_member not in (None, member.name) or not same_person(full_name, member.full_name):
            raise DuplicateUserError("a user with this e-mail address already exists for someone else")
        self.host.store.link_member(member.name, user)
        return user

    def _audit(self, request: RequestView, from_status: str | None, to_status: str, reason: str) -> None:
        entry = AuditEntry(
            REQUEST, request.name, from_status, to_status, request.requested_by, reason, self.host.worker
        )
        self.host.store.add_audit([entry], self.host.clock())
