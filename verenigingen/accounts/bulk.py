"""The bulk path: validate, create requests in chunks, enqueue one job per batch, process batches."""

import logging
import math
from dataclasses import dataclass, field

from verenigingen.accounts.eligibility import Refusal, check_members
from verenigingen.accounts.errors import ValidationFailed, classify
from verenigingen.accounts.manager import REQUEST, AccountCreationManager
from verenigingen.accounts.permissions import BULK_ROLES, require_any_role, require_grantable
from verenigingen.accounts.ports import ENQUEUED, AuditEntry, Host, NewRequest, NewTracker
from verenigingen.accounts.states import ErrorCategory, RequestStatus, TrackerStatus

log = logging.getLogger(__name__)
TRACKER = "Bulk Operation Tracker"
MEMBER = "Member"


@dataclass
class BulkQueued:
    """What queue_bulk_account_creation_for_members did: the tracking information for the caller."""

    tracker: str | None
    requested: int
    linked: int
    total_batches: int
    batch_size: int
    enqueued_batches: int
    validation_errors: list[Refusal] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "tracker": self.tracker,
            "requested": self.requested,
            "linked": self.linked,
            "total_batches": self.total_batches,
            "batch_size": self.batch_size,
            "enqueued_batches": self.enqueued_batches,
            "validation_errors": [refusal.as_dict() for refusal in self.validation_errors],
        }


def queue_bulk_account_creation_for_members(
    host: Host,
    actor: str,
    member_names: list[str],
    roles: list[str] | None = None,
    role_profile: str | None = None,
    batch_size: int | None = None,
    priority: str | None = None,
    source_import: str | None = None,
) -> BulkQueued:
    store, settings = host.store, host.settings
    batch_size = batch_size or settings.batch_size
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    role_tuple = tuple(roles or (settings.default_role,))
    with store.transaction():
        actor_roles = store.roles_of(actor)
        require_any_role(actor, actor_roles, BULK_ROLES, "create accounts in bulk")
        require_grantable(actor_roles, role_tuple, role_profile, settings.default_role)
        checked = check_members(store, list(dict.fromkeys(member_names)), settings.eligible_statuses)
    if checked.link:
        with store.transaction():
            for member, user in checked.link:
                store.link_member(member.name, user.name)
            store.add_audit(
                [
                    AuditEntry(MEMBER, m.name, None, "Linked", actor, "existing user of the same e-mail")
                    for m, _ in checked.link
                ],
                host.clock(),
            )
    eligible = checked.eligible
    result = BulkQueued(
        None,
        len(eligible),
        len(checked.link),
        math.ceil(len(eligible) / batch_size),
        batch_size,
        0,
        checked.refused,
    )
    if not eligible:
        return result

    with store.transaction():
        tracker = NewTracker(
            "Account Creation",
            source_import,
            len(eligible),
            result.total_batches,
            batch_size,
            priority or settings.bulk_priority,
            actor,
        )
        result.tracker = store.insert_tracker(tracker, host.clock())
        store.add_audit(
            [AuditEntry(TRACKER, result.tracker, None, TrackerStatus.QUEUED, actor, "created")], host.clock()
        )
    requests = [
        NewRequest(
            "Member",
            m.name,
            m.email,
            m.full_name,
            role_tuple,
            role_profile,
            priority or settings.bulk_priority,
            actor,
            result.tracker,
            index // batch_size + 1,
        )
        for index, m in enumerate(eligible)
    ]
    refused = _insert_in_chunks(host, actor, result, requests)
    if refused:
        with store.transaction():
            store.shrink_tracker(result.tracker, refused)
        result.requested -= refused
    # Only now, with every row committed, do jobs exist that could read them.
    result.enqueued_batches = dispatch_batches(host, result.tracker, result.total_batches)
    return result


def _insert_in_chunks(host: Host, actor: str, result: BulkQueued, requests: list[NewRequest]) -> int:
    """Requests in chunks of 100, one transaction each. A chunk that collides with an open request made
    meanwhile (an approval, another import) goes in one by one; returns how many were refused."""
    refused = 0

    def insert(chunk: list[NewRequest]) -> None:
        with host.store.transaction():
            names = host.store.insert_requests(chunk, host.clock())
            reason = f"bulk operation {result.tracker}"
            entries = [AuditEntry(REQUEST, n, None, RequestStatus.QUEUED, actor, reason) for n in names]
            host.store.add_audit(entries, host.clock())

    size = host.settings.request_chunk_size
    for start in range(0, len(requests), size):
        try:
            insert(requests[start : start + size])
        except ValidationFailed:
            for request in requests[start : start + size]:
                try:
                    insert([request])
                except ValidationFailed:
                    result.validation_errors.append(
                        Refusal(request.source_record, "open_request", "already has an open account request")
                    )
                    refused += 1
    return refused


def dispatch_batches(host: Host, tracker: str, total_batches: int) -> int:
    """Enqueue every batch; if the transport fails, the committed requests wait for the sweeper."""
    try:
        return [host.jobs.enqueue_batch(tracker, b) for b in range(1, total_batches + 1)].count(ENQUEUED)
    except Exception as exc:
        if classify(exc) != ErrorCategory.RETRYABLE:
            raise
        log.warning("could not enqueue (%s); the sweeper will enqueue the batches", type(exc).__name__)
        return 0


@dataclass
class BatchOutcome:
    completed: int = 0
    failed: int = 0
    retry: int = 0
    skipped: int = 0
    tracker_completed: bool = False


def process_bulk_account_creation_batch(host: Host, tracker: str, batch_number: int) -> BatchOutcome:
    """Run every due request of one batch, one member per transaction; then try to complete the tracker."""
    store = host.store
    with store.transaction():
        names = store.batch_requests(tracker, batch_number)
        if store.start_tracker(tracker, batch_number, host.clock()):
            requested_by = store.get_tracker(tracker).requested_by
            store.add_audit(
                [
                    AuditEntry(
                        TRACKER,
                        tracker,
                        TrackerStatus.QUEUED,
                        TrackerStatus.PROCESSING,
                        requested_by,
                        f"batch {batch_number} started",
                        host.worker,
                    )
                ],
                host.clock(),
            )
    manager = AccountCreationManager(host)
    outcome = BatchOutcome()
    for name in names:
        result = manager.process(name)
        setattr(outcome, result, getattr(outcome, result) + 1)
    outcome.tracker_completed = complete_tracker_if_done(host, tracker)
    return outcome


def complete_tracker_if_done(host: Host, tracker: str) -> bool:
    """Exactly one caller wins the conditional update and writes the audit entry."""
    store = host.store
    with store.transaction():
        view = store.get_tracker(tracker)
        if view.status != TrackerStatus.PROCESSING or view.processed_records < view.total_records:
            return False
        if not store.complete_tracker_if_done(tracker, host.clock(), error_summary(host, tracker)):
            return False
        view = store.get_tracker(tracker)
        store.add_audit(
            [
                AuditEntry(
                    TRACKER,
                    tracker,
                    TrackerStatus.PROCESSING,
                    view.status,
                    view.requested_by,
                    f"{view.successful_records} created, {view.failed_records} failed",
                    host.worker,
                )
            ],
            host.clock(),
        )
    return True


def error_summary(host: Host, tracker: str) -> str | None:
    """Failure reasons with their counts; reasons never hold personal data (see errors.describe)."""
    counts: dict[str, int] = {}
    for request in host.store.failed_requests(tracker):
        counts[request.failure_reason] = counts.get(request.failure_reason, 0) + 1
    return "; ".join(f"{count} x {reason}" for reason, count in sorted(counts.items())) or None
