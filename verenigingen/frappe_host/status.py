"""A bulk operation as the CLI's ``status --json`` shows it, read from the Frappe site."""

import frappe

from verenigingen.accounts.ports import Host, batch_job_id
from verenigingen.accounts.states import TrackerStatus
from verenigingen.accounts.trackers import TRACKER, TRACKER_FIELDS, speed
from verenigingen.accounts.trackers import progress as tracker_progress
from verenigingen.frappe_host.checks import pace
from verenigingen.frappe_host.translate import translated


def latest_tracker() -> str | None:
    found = frappe.get_list(TRACKER, order_by="creation desc", limit_page_length=1, pluck="name")
    return found[0] if found else None


def tracker_dict(host: Host, name: str | None) -> dict | None:
    if name is None:
        return None
    with host.store.transaction(readonly=True):
        view = host.store.get_tracker(name)
    return {key: getattr(view, key) for key in TRACKER_FIELDS} if view else None


def unsent(host: Host, tracker: str) -> int:
    """Due requests of ``tracker`` that no live job brings to a worker before the next sweep. Batches
    beyond the batch-slot cap wait in the database legitimately: they count only when fewer batches
    have a live job than the cap allows (nothing will hand a slot on)."""
    with host.store.transaction(readonly=True):
        due = [(b, g) for t, b, g in host.store.due_batches(host.clock()) if t == tracker]
        counts = dict(
            frappe.db.sql(
                "SELECT batch_number, COUNT(*) FROM `tabAccount Creation Request` WHERE bulk_operation_tracker = %s "
                "AND status = 'Queued' AND (next_retry_at IS NULL OR next_retry_at <= %s) GROUP BY batch_number",
                (tracker, host.clock()),
            )
        )
    live = {batch for batch, generation in due if host.jobs.is_live(batch_job_id(tracker, batch, generation))}
    if len(live) >= min(host.settings.max_concurrent_batches, len(due)):
        return 0
    return sum(int(counts.get(batch, 0)) for batch, _ in due if batch not in live)


def bulk_status(host: Host, tracker: str) -> dict:
    store = host.store
    with store.transaction(readonly=True):
        view = store.get_tracker(tracker)
        if view is None:
            raise frappe.DoesNotExistError(f"no bulk operation {tracker}")
        counts = store.request_counts(tracker, host.clock())
        failed = [  # reasons in the reader's language
            {
                "request": f.name,
                "member": f.source_record,
                "category": f.error_category,
                "reason": translated(f.failure_reason),
            }
            for f in store.failed_requests(tracker)
        ]
    state = tracker_progress(host, tracker, view.modified or host.clock())
    running = view.status not in TrackerStatus.FINISHED
    pace_now = speed(view, view.completed_at if view.completed_at else host.clock())
    return {
        **{key: getattr(view, key) for key in TRACKER_FIELDS},
        "current_batch": view.current_batch,
        "retry_queue": counts.waiting,
        "next_retry_at": counts.next_retry_at.isoformat() if counts.next_retry_at else None,
        "error_summary": translated(view.error_summary),
        "stuck": state.stuck,
        "rate_per_minute": pace_now.per_minute,
        "eta_seconds": pace_now.eta_seconds if running else None,
        "failed": failed,
        "unsent": unsent(host, tracker) if running else 0,
        # Frappe's hourly limit on new users, when it sets the pace: how many hours the rest takes.
        "pace": pace(view.total_records - view.processed_records) if running else None,
    }
