"""The periodic sweep: what the database says must happen, made to happen again.

Jobs can be lost (Redis emptied), run late or never finish (a worker killed). The sweeper turns
requests whose worker vanished into retries, re-enqueues every due batch and request (a no-op while
its job is alive), and completes trackers whose last record finished without completing them.
"""

from dataclasses import dataclass

from verenigingen.accounts.bulk import complete_tracker_if_done
from verenigingen.accounts.errors import RetryableError
from verenigingen.accounts.manager import AccountCreationManager
from verenigingen.accounts.ports import Host


@dataclass
class SweepReport:
    recovered: int = 0
    enqueued_batches: int = 0
    enqueued_requests: int = 0
    completed_trackers: int = 0


def sweep(host: Host) -> SweepReport:
    store, report = host.store, SweepReport()
    manager = AccountCreationManager(host)
    with store.transaction():
        stale = store.stale_requests(host.clock())
    for request in stale:
        outcome = manager.record_failure(request, RetryableError("the worker processing it stopped"), owner=None)
        report.recovered += outcome != "skipped"
    host.jobs.clean_up()
    with store.transaction():
        batches = store.due_batches(host.clock())
        singles = store.due_individual_requests(host.clock())
        trackers = store.unfinished_trackers()
    report.enqueued_batches = sum(host.jobs.enqueue_batch(*batch) for batch in batches)
    report.enqueued_requests = sum(host.jobs.enqueue_individual(*single) for single in singles)
    report.completed_trackers = sum(complete_tracker_if_done(host, tracker) for tracker in trackers)
    return report
