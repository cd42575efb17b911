"""AccountCreationManager: one request, one member, one user, each in its own transaction."""

import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from verenigingen.accounts.errors import (
    DuplicateUserError,
    PermanentError,
    Throttled,
    ValidationFailed,
    classify,
    describe,
    ends_job,
    is_conflict,
)
from verenigingen.accounts.permissions import BULK_ROLES, INDIVIDUAL_ROLES, require_any_role, require_grantable
from verenigingen.accounts.ports import AuditEntry, Host, MemberView, RequestView, Store
from verenigingen.accounts.slots import BatchSlot
from verenigingen.accounts.states import ErrorCategory, RequestStatus
from verenigingen.accounts.trackers import REQUEST
from verenigingen.dutch.membership import STATUSES
from verenigingen.text import Text

UNKNOWN = Text("unknown")


class _ClaimLost(Exception):
    """The sweeper took the request back (its lease ran out); this worker's work is rolled back."""


def same_person(a: str, b: str) -> bool:
    """Names match when they are equal ignoring case and spacing."""
    return " ".join(a.casefold().split()) == " ".join(b.casefold().split())


def link_existing_user(store: Store, member: str, user: str, roles: tuple[str, ...], by: str) -> None:
    """A member linked to a user that already exists gets the roles a new account would get, and keeps its
    own: never a role profile, which on Frappe replaces every role the user holds with the profile's.

    Linked first: a host that lets administrators change members' users only (Frappe) then sees a
    member's user when the roles are granted, in the same transaction."""
    store.link_member(member, user, by)
    store.grant_roles(user, roles, None, by)


def with_conflict_retries(host: Host, work):
    """Run ``work()`` (one transaction); a deadlock or lock wait is tried again in place, after a short
    jittered pause, before it is allowed to count as a failure."""
    low, high = host.settings.conflict_pause
    for attempt in range(1, host.settings.conflict_attempts + 1):
        try:
            return work()
        except Exception as exc:
            if attempt == host.settings.conflict_attempts or ends_job(exc) or not is_conflict(exc):
                raise
            time.sleep(random.uniform(low, high) * attempt)


@dataclass
class AccountCreationManager:
    """Creates (or links) the user of one request. Running a request twice never makes a second user."""

    host: Host
    throttled_until: datetime | None = None  # when the last 'throttled' member is due again

    def process(self, name: str, slot: BatchSlot | None = None) -> str:
        """'completed', 'retry', 'failed', 'skipped' when the request is not ours to run now, or 'throttled'
        when the host allows no new user yet (the member is back in the queue with its retries untouched,
        due again at :attr:`throttled_until`).

        A batch passes its ``slot``: renewed in the claim's transaction, with the same lease, so that a
        claim never outlives the slot it runs under (``SlotLost`` when it is gone). A job whose time is
        up puts the member back in the queue and ends."""
        store, worker = self.host.store, self.host.worker

        def claim() -> RequestView | None:
            now = self.host.clock()
            with store.transaction():
                until = slot.renew(now) if slot else now + timedelta(seconds=self.host.settings.lease_seconds)
                claimed = store.claim_request(name, worker, now, until)
                if claimed is not None:
                    self._audit(claimed, RequestStatus.QUEUED, RequestStatus.PROCESSING, Text("picked up"))
            return claimed

        def create(request: RequestView) -> None:
            with store.transaction():
                self._check_requester(request)
                user = self._create_or_link(request)
                if not store.finish_request(
                    name, worker, RequestStatus.COMPLETED, self.host.clock(), created_user=user
                ):
                    raise _ClaimLost
                self._audit(request, RequestStatus.PROCESSING, RequestStatus.COMPLETED, Text("account ready"))
                if request.tracker:
                    store.add_to_tracker(request.tracker, 1, 1, 0, self.host.clock())

        request = with_conflict_retries(self.host, claim)
        if request is None:
            return "skipped"
        try:
            with_conflict_retries(self.host, lambda: create(request))
            return "completed"
        except _ClaimLost:
            return "skipped"
        except Throttled as exc:
            self.throttled_until = self.host.clock() + timedelta(seconds=exc.wait_seconds)
            reason = Text("waits {seconds} s for {reason}", seconds=round(exc.wait_seconds), reason=exc.args[0])
            self.put_back(request, reason, due=self.throttled_until)
            return "throttled"
        except BaseException as exc:  # every failure is classified and recorded, never lost
            if ends_job(exc):
                self.put_back(request, Text("the job ran out of time"))
                raise
            return self.record_failure(request, exc, owner=worker)

    def put_back(self, request: RequestView, reason: str, due: datetime | None = None) -> bool:
        """Processing -> Queued, due at once (or at ``due``) and without costing a retry: the job ends, or
        the host cannot take the member yet; the member itself did nothing wrong."""
        with self.host.store.transaction():
            back = self.host.store.requeue_request(
                request.name,
                RequestStatus.PROCESSING,
                self.host.worker,
                request.retry_count,
                request.job_generation,
                due,
                request.error_category,
                request.failure_reason,
            )
            if back:
                self._audit(request, RequestStatus.PROCESSING, RequestStatus.QUEUED, reason)
        return back

    def record_failure(
        self, request: RequestView, exc: BaseException, owner: str | None, expired_before: datetime | None = None
    ) -> str:
        """Schedule a retry for a passing fault with attempts left; otherwise fail for good.

        ``owner`` is the worker holding the claim. The sweeper, recovering an expired lease, passes the
        owner it saw and ``expired_before``: a claim renewed or taken afresh meanwhile is left alone.
        """
        store, settings, now = self.host.store, self.host.settings, self.host.clock()
        category, reason = classify(exc), describe(exc)
        with store.transaction():
            if category == ErrorCategory.RETRYABLE and request.retry_count < settings.max_retries:
                retry = request.retry_count + 1
                due = now + timedelta(seconds=settings.backoff(retry))
                # A new job generation: the job that will run the retry never reuses a lingering id.
                if not store.requeue_request(
                    request.name,
                    RequestStatus.PROCESSING,
                    owner,
                    retry,
                    request.job_generation + 1,
                    due,
                    category,
                    reason,
                    lease_expired_before=expired_before,
                ):
                    return "skipped"
                note = Text(
                    "retry {retry} of {retries}: {reason}", retry=retry, retries=settings.max_retries, reason=reason
                )
                self._audit(request, RequestStatus.PROCESSING, RequestStatus.QUEUED, note)
                return "retry"
            if category == ErrorCategory.RETRYABLE:
                reason = Text("gave up after {retries} retries: {reason}", retries=settings.max_retries, reason=reason)
            if not store.finish_request(
                request.name,
                owner,
                RequestStatus.FAILED,
                now,
                error_category=category,
                failure_reason=reason,
                lease_expired_before=expired_before,
            ):
                return "skipped"
            self._audit(request, RequestStatus.PROCESSING, RequestStatus.FAILED, reason)
            if request.tracker:
                store.add_to_tracker(request.tracker, 1, 0, 1, now)
        return "failed"

    def _check_requester(self, request: RequestView) -> None:
        """The requester must still hold the role that allowed the request: read in each member's own
        transaction, so that a role revoked during a batch stops its remaining members."""
        roles = self.host.store.roles_of(request.requested_by)
        allowed = BULK_ROLES if request.tracker else INDIVIDUAL_ROLES
        require_any_role(request.requested_by, roles, allowed, Text("create accounts"))
        require_grantable(roles, request.roles, request.role_profile, self.host.settings.default_role)

    def _create_or_link(self, request: RequestView) -> str:
        store = self.host.store
        # Locked until this transaction ends: an import changing the e-mail waits instead of slipping in.
        member = store.lock_member(request.source_record)
        if member is None:
            raise PermanentError(Text("the member no longer exists"))
        if member.user:
            return member.user  # done before (a job that ran twice): nothing more to do
        # The member as it is now, not as it was when queued: an import may have changed it since.
        if not member.email:
            raise ValidationFailed(Text("the member no longer has an e-mail address"))
        if member.status not in self.host.settings.eligible_statuses:
            # One of the known statuses is a word to translate itself; anything else is shown as it is.
            status = Text(member.status) if member.status in STATUSES else member.status or UNKNOWN
            raise ValidationFailed(Text("the member's status is now {status}", status=status))
        existing = store.find_user(member.email)
        if existing is not None:
            return self._link_existing(request, member, existing.name, existing.member, existing.full_name)
        user = store.create_user(
            member.email,
            member.full_name,
            request.roles,
            request.role_profile,
            member.name,
            request.requested_by,
        )
        store.link_member(member.name, user, request.requested_by)
        return user

    def _link_existing(
        self, request: RequestView, member: MemberView, user: str, user_member: str | None, full_name: str
    ) -> str:
        if user_member not in (None, member.name) or not same_person(full_name, member.full_name):
            raise DuplicateUserError(Text("a user with this e-mail address already exists for someone else"))
        link_existing_user(self.host.store, member.name, user, request.roles, request.requested_by)
        return user

    def _audit(self, request: RequestView, from_status: str | None, to_status: str, reason: str) -> None:
        entry = AuditEntry(
            REQUEST, request.name, from_status, to_status, request.requested_by, reason, self.host.worker
        )
        self.host.store.add_audit([entry], self.host.clock())
