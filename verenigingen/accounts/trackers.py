"""A bulk operation's tracker: sealed once its requests are written, finished exactly once, reopened by a
retry, and able to say whether it is moving, waiting for a retry, or stuck (and why)."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from verenigingen.accounts.ports import AuditEntry, Host, TrackerView
from verenigingen.accounts.states import RequestStatus, TrackerStatus, finished_status
from verenigingen.text import Text, in_a_row

TRACKER = "Bulk Operation Tracker"
REQUEST = "Account Creation Request"
MEMBER = "Member"
# What a report shows of a tracker (`status --json`, `bulk_status`, `import --json`), on every host.
TRACKER_FIELDS = (
    "name",
    "status",
    "total_records",
    "processed_records",
    "successful_records",
    "failed_records",
    "total_batches",
    "batch_size",
)


def member_linked(member: str, actor: str) -> AuditEntry:
    """The audit entry of a member given the existing user of its e-mail address instead of a new one."""
    return AuditEntry(MEMBER, member, None, Text("Linked"), actor, Text("existing user of the same e-mail"))


def seal_tracker(host: Host, tracker: str, by: str, expired_before: datetime | None = None) -> str | None:
    """Preparing -> Queued with the real total, and its requests visible to workers, in one transaction.
    With ``expired_before`` this is the sweeper closing a preparation that stopped (its writer died).
    Returns the new status, or None when the tracker was no longer Preparing."""
    store, now = host.store, host.clock()
    try:
        with store.transaction():
            return _seal(host, tracker, by, now, expired_before)
    except _NotSealed:  # rolled back: the requests stay Requested, the tracker stays as it was
        return None


class _NotSealed(Exception):
    pass


def _seal(host: Host, tracker: str, by: str, now: datetime, expired_before: datetime | None) -> str:
    store = host.store
    view = store.get_tracker(tracker)
    if view is None or view.status != TrackerStatus.PREPARING:
        raise _NotSealed
    queued = store.queue_requested(tracker)
    total = len(queued)
    status = TrackerStatus.QUEUED if total else TrackerStatus.CANCELLED
    if expired_before is None:
        reason, summary = (
            Text("{total} requests queued", total=total),
            None if total else Text("no member could be requested"),
        )
    elif total < view.total_records:
        summary = Text(
            "queueing stopped after {total} of {members} members; the others got no request: queue them again",
            total=total,
            members=view.total_records,
        )
        reason = Text("sealed by the sweeper: {summary}", summary=summary)
    else:  # every request was written; only the sealing itself was missed
        reason, summary = Text("sealed by the sweeper: {total} requests queued", total=total), None
    if not store.seal_tracker(tracker, status, total, now, summary, lease_expired_before=expired_before):
        raise _NotSealed  # the writer renewed its lease meanwhile: undo the requests' move too
    entries = [AuditEntry(TRACKER, tracker, TrackerStatus.PREPARING, status, by, reason, host.worker)]
    step = (
        RequestStatus.REQUESTED,
        RequestStatus.QUEUED,
        by,
        Text("bulk operation {tracker} sealed", tracker=tracker),
        host.worker,
    )
    store.add_audit(entries + [AuditEntry(REQUEST, name, *step) for name in queued], now)
    return status


def seal_interrupted_preparations(host: Host) -> int:
    """The sweeper's part: preparations whose writer stopped renewing them are sealed with what was written."""
    with host.store.transaction(readonly=True):
        stalled = host.store.preparing_trackers(host.clock())
    sealed = 0
    for tracker in stalled:
        with host.store.transaction(readonly=True):
            view = host.store.get_tracker(tracker)
        sealed += view is not None and seal_tracker(host, tracker, view.requested_by, host.clock()) is not None
    return sealed


def error_summary(host: Host, tracker: str) -> str | None:
    """Failure reasons with their counts; reasons never hold personal data (see errors.describe)."""
    counts: dict[str, int] = {}
    for request in host.store.failed_requests(tracker):
        reason = request.failure_reason or "unknown"
        counts[reason] = counts.get(reason, 0) + 1
    return in_a_row(
        [Text("{count} x {reason}", count=count, reason=reason) for reason, count in sorted(counts.items())]
    )


def complete_tracker_if_done(host: Host, tracker: str) -> bool:
    """Exactly one caller wins the conditional update and writes the audit entry."""
    store = host.store
    with store.transaction():
        view = store.get_tracker(tracker)
        if view is None or view.status != TrackerStatus.PROCESSING or view.processed_records < view.total_records:
            return False
        status = finished_status(view.successful_records, view.failed_records)
        summary = in_a_row([view.error_summary, error_summary(host, tracker)])
        if not store.finish_tracker(
            tracker, status, view.successful_records, view.failed_records, host.clock(), summary
        ):
            return False
        note = Text("{created} created, {failed} failed", created=view.successful_records, failed=view.failed_records)
        entry = AuditEntry(TRACKER, tracker, TrackerStatus.PROCESSING, status, view.requested_by, note, host.worker)
        store.add_audit([entry], host.clock())
    return True


@dataclass(frozen=True)
class Progress:
    """A tracker as an operator needs to see it: moving, waiting, finished, or stuck with the reason."""

    status: str
    finished: bool
    stuck: str | None  # why nothing moves, and what to do; None while it moves or waits with a reason
    waiting_until: datetime | None  # the next retry, when that is all there is to wait for


def progress(host: Host, tracker: str, last_moved: datetime) -> Progress:
    """``last_moved``: when the caller last saw anything change. Stuck means: nothing moved for
    ``stall_seconds`` while something could happen now (waiting for a retry due later is not stuck)."""
    store, now = host.store, host.clock()
    with store.transaction(readonly=True):
        view = store.get_tracker(tracker)
        if view is None:
            return Progress("missing", True, f"no bulk operation {tracker}", None)
        counts = store.request_counts(tracker, now)
        slots_busy = store.held_slots(host.settings.bulk_queue, now) >= host.settings.max_concurrent_batches
    if view.status in TrackerStatus.FINISHED:
        return Progress(view.status, True, None, None)
    # Quiet since the last sign of life: progress seen, the tracker moving, or a retry falling due.
    quiet = now - max(last_moved, view.modified or last_moved, counts.due_since or last_moved)
    if counts.waiting and not (counts.due or counts.processing or counts.abandoned or counts.requested):
        return Progress(view.status, False, None, counts.next_retry_at)  # only retries, due later
    if counts.due and not counts.abandoned and slots_busy:
        return Progress(view.status, False, None, None)  # its turn comes when other batches hand a slot on
    if quiet < timedelta(seconds=host.settings.stall_seconds):
        return Progress(view.status, False, None, None)
    seconds = int(quiet.total_seconds())
    if view.status == TrackerStatus.PREPARING:
        why = "its requests are still being written, or the process writing them stopped; a sweep will seal it"
    elif counts.abandoned:
        why = f"{counts.abandoned} requests were claimed by workers that stopped; is a sweeper running?"
    elif counts.processing:
        why = f"{counts.processing} requests are being processed but none finished; is a worker hanging?"
    elif counts.due:
        why = f"{counts.due} requests are due but no worker takes them: start workers, and check Redis"
    else:
        why = "every request is processed but the operation was not completed: run a sweep"
    return Progress(view.status, False, f"nothing moved for {seconds} s: {why}", None)


@dataclass(frozen=True)
class Speed:
    per_minute: float  # members processed a minute since the operation started
    eta_seconds: int | None  # at that rate, until every member is processed; None before there is a rate


def speed(view: TrackerView, now: datetime) -> Speed:
    """How fast an operation goes and when it ends at that pace, for a progress display."""
    if view.started_at is None or view.processed_records <= 0:
        return Speed(0.0, None)
    elapsed = max((now - view.started_at).total_seconds(), 1.0)
    per_second = view.processed_records / elapsed
    remaining = max(view.total_records - view.processed_records, 0)
    return Speed(round(per_second * 60, 1), round(remaining / per_second))
