"""The periodic sweep: what the database says must happen, made to happen again.

Jobs can be lost (Redis emptied), run late or never finish (a worker killed). The sweeper turns
requests whose worker vanished into retries, seals bulk operations whose queueing stopped half-way,
re-enqueues due batches (within the batch-slot cap) and due requests (a no-op while their job is
alive), and completes trackers whose last record finished without completing them.
"""

from dataclasses import dataclass

from verenigingen.accounts.dispatch import dispatch_due_work
from verenigingen.accounts.errors import RetryableError
from verenigingen.accounts.manager import AccountCreationManager
from verenigingen.accounts.ports import Host
from verenigingen.accounts.trackers import complete_tracker_if_done, seal_interrupted_preparations


@dataclass
class SweepReport:
    recovered: int = 0
    sealed_trackers: int = 0
    enqueued_batches: int = 0
    enqueued_requests: int = 0
    completed_trackers: int = 0


def sweep(host: Host) -> SweepReport:
    store, report = host.store, SweepReport()
    manager = AccountCreationManager(host)
    now = host.clock()
    with store.transaction(readonly=True):
        stale = store.stale_requests(now)
    for request in stale:
        # Only if the worker seen here still holds it and its lease is still run out: one conditional update.
        lost = RetryableError("the worker processing it stopped")
        report.recovered += manager.record_failure(request, lost, request.processed_by, expired_before=now) != "skipped"
    report.sealed_trackers = seal_interrupted_preparations(host)
    host.jobs.clean_up()
    report.enqueued_batches, report.enqueued_requests = dispatch_due_work(host)
    with store.transaction(readonly=True):
        trackers = store.unfinished_trackers()
    report.completed_trackers = sum(complete_tracker_if_done(host, tracker) for tracker in trackers)
    return report
