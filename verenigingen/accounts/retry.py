"""An administrator's retry of failed requests, after fixing what made them fail."""

from verenigingen.accounts.bulk import TRACKER
from verenigingen.accounts.manager import REQUEST
from verenigingen.accounts.permissions import BULK_ROLES, require_any_role
from verenigingen.accounts.ports import AuditEntry, Host
from verenigingen.accounts.states import RequestStatus, TrackerStatus
from verenigingen.accounts.sweeper import dispatch_due_work


def retry_failed_requests(host: Host, actor: str, tracker: str | None = None) -> int:
    """An administrator retries failed requests (of one tracker, or all): Queued again, counters reopened."""
    store, now = host.store, host.clock()
    with store.transaction():
        require_any_role(actor, store.roles_of(actor), BULK_ROLES, "retry failed account requests")
        failed = store.failed_requests(tracker)
        per_tracker: dict[str, int] = {}
        for request in failed:
            store.requeue_request(request.name, RequestStatus.FAILED, None, 0, now, None, f"retried by {actor}")
            if request.tracker:
                per_tracker[request.tracker] = per_tracker.get(request.tracker, 0) + 1
        for name, count in per_tracker.items():
            store.reopen_tracker(name, count)
        entries = [
            AuditEntry(REQUEST, r.name, RequestStatus.FAILED, RequestStatus.QUEUED, actor, "retried") for r in failed
        ]
        entries += [
            AuditEntry(TRACKER, t, TrackerStatus.COMPLETED, TrackerStatus.PROCESSING, actor, f"{n} retried")
            for t, n in per_tracker.items()
        ]
        store.add_audit(entries, now)
    dispatch_due_work(host)
    return len(failed)
