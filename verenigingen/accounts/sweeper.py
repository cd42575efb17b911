"""The periodic sweep: what the database says must happen, made to happen again.

Jobs can be lost (Redis emptied), run late or never finish (a worker killed). The sweeper turns
requests whose worker vanished into retries, re-enqueues every due batch and request (a no-op while
its job is alive), and completes trackers whose last record finished without completing them.
"""

from dataclasses import dataclass

from verenigingen.accounts.bulk import complete_tracker_if_done
from verenigingen.accounts.errors import RetryableError
from verenigingen.accounts.manager import AccountCreationManager
from verenigingen.accounts.ports import DEAD, ENQUEUED, LIVE, Host


@dataclass
class SweepReport:
    recovered: int = 0
    enqueued_batches: int = 0
    enqueued_requests: int = 0
    completed_trackers: int = 0


def _dispatch(host: Host, enqueue, tracker: str | None, key: int | str, generation: int) -> bool:
    """Enqueue due work; when its job's worker died, move it to the next generation (one sweeper wins)."""
    args = (tracker, key) if tracker else (key,)
    outcome = enqueue(*args, generation)
    if outcome == DEAD:
        with host.store.transaction():
            won = host.store.next_generation(tracker, key, generation)
        outcome = enqueue(*args, generation + 1) if won else LIVE
    return outcome == ENQUEUED


def dispatch_due_work(host: Host) -> tuple[int, int]:
    """Enqueue every due batch and individual request whose job is not alive; (batches, requests) enqueued."""
    with host.store.transaction():
        batches = host.store.due_batches(host.clock())
        singles = host.store.due_individual_requests(host.clock())
    enqueued_batches = sum(_dispatch(host, host.jobs.enqueue_batch, t, b, g) for t, b, g in batches)
    enqueued_requests = sum(_dispatch(host, host.jobs.enqueue_individual, None, r, g) for r, g in singles)
    return enqueued_batches, enqueued_requests


def sweep(host: Host) -> SweepReport:
    store, report = host.store, SweepReport()
    manager = AccountCreationManager(host)
    with store.transaction():
        stale = store.stale_requests(host.clock())
    for request in stale:
        outcome = manager.record_failure(request, RetryableError("the worker processing it stopped"), owner=None)
        report.recovered += outcome != "skipped"
    host.jobs.clean_up()
    report.enqueued_batches, report.enqueued_requests = dispatch_due_work(host)
    with store.transaction():
        trackers = store.unfinished_trackers()
    report.completed_trackers = sum(complete_tracker_if_done(host, tracker) for tracker in trackers)
    return report
