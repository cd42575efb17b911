"""The bulk path: validate, create requests in chunks, enqueue one job per batch, process batches."""

import math
from dataclasses import dataclass, field

from verenigingen.accounts.eligibility import Refusal, check_members
from verenigingen.accounts.manager import REQUEST, AccountCreationManager
from verenigingen.accounts.permissions import BULK_ROLES, require_any_role
from verenigingen.accounts.ports import ENQUEUED, AuditEntry, Host, NewRequest, NewTracker
from verenigingen.accounts.states import RequestStatus, TrackerStatus

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
    with store.transaction():
        require_any_role(actor, store.roles_of(actor), BULK_ROLES, "create accounts in bulk")
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

    role_tuple = tuple(roles or (settings.default_role,))
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
    chunk = settings.request_chunk_size
    for start in range(0, len(requests), chunk):
        with store.transaction():
            names = store.insert_requests(requests[start : start + chunk], host.clock())
            reason = f"bulk operation {result.tracker}"
            store.add_audit(
                [AuditEntry(REQUEST, n, None, RequestStatus.QUEUED, actor, reason) for n in names],
                host.clock(),
            )
    # Only now, with every row committed, do jobs exist that could read them.
    enqueued = [host.jobs.enqueue_batch(result.tracker, b) for b in range(1, result.total_batches + 1)]
    result.enqueued_batches = enqueued.count(ENQUEUED)
    return result


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
