"""An administrator's retry of failed requests, after fixing what made them fail."""

from collections import Counter

from verenigingen.accounts.bulk import TRACKER
from verenigingen.accounts.manager import REQUEST
from verenigingen.accounts.permissions import BULK_ROLES, require_any_role
from verenigingen.accounts.ports import AuditEntry, Host
from verenigingen.accounts.states import RequestStatus, TrackerStatus
from verenigingen.accounts.sweeper import dispatch_due_work


def retry_failed_requests(host: Host, actor: str, tracker: str | None = None) -> int:
    """An administrator retries failed requests (of one tracker, or all): Queued again, counters reopened.

    A request whose member has a user or another open request by now stays as it is.
    """
    store, now = host.store, host.clock()
    with store.transaction():
        require_any_role(actor, store.roles_of(actor), BULK_ROLES, "retry failed account requests")
        failed = store.failed_requests(tracker)
        members = store.get_members([r.source_record for r in failed])
        busy = store.members_with_open_request([r.source_record for r in failed])
        retried = [
            r
            for r in failed
            if r.source_record in members
            and not members[r.source_record].user
            and r.source_record not in busy
            and store.requeue_request(r.name, RequestStatus.FAILED, None, 0, now, None, None)
        ]
        per_tracker = Counter(r.tracker for r in retried if r.tracker)
        for name, count in per_tracker.items():
            store.reopen_tracker(name, count)
        entries = [
            AuditEntry(REQUEST, r.name, RequestStatus.FAILED, RequestStatus.QUEUED, actor, "retried") for r in retried
        ]
        entries += [
            AuditEntry(TRACKER, t, TrackerStatus.COMPLETED, TrackerStatus.PROCESSING, actor, f"{n} retried")
            for t, n in per_tracker.items()
        ]
        store.add_audit(entries, now)
    dispatch_due_work(host)
    return len(retried)
