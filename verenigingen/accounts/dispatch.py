"""Turning what the database says is due into jobs: never more live bulk jobs than there are batch
slots (the rest wait their turn in the database, not in Redis), every due individual request at once."""

import logging

from verenigingen.accounts.errors import classify, ends_job
from verenigingen.accounts.ports import DEAD, ENQUEUED, LIVE, Host
from verenigingen.accounts.states import ErrorCategory

log = logging.getLogger(__name__)


def _dispatch(host: Host, enqueue, tracker: str | None, key: int | str, generation: int) -> str:
    """Enqueue due work; when its job's worker died, move it to the next generation (one caller wins)."""
    args = (tracker, key) if tracker else (key,)
    outcome = enqueue(*args, generation)
    if outcome == DEAD:
        with host.store.transaction():
            won = host.store.next_generation(tracker, key, generation)
        outcome = enqueue(*args, generation + 1) if won else LIVE
    return outcome


def dispatch_due_batches(host: Host) -> int:
    """Keep up to ``max_concurrent_batches`` bulk jobs alive, oldest due batches first; how many were
    enqueued. A finishing batch calls this to hand its slot on, so work never waits for the sweeper."""
    cap = host.settings.max_concurrent_batches
    with host.store.transaction(readonly=True):
        batches = host.store.due_batches(host.clock(), limit=4 * cap)
    live = enqueued = 0
    for tracker, batch, generation in batches:
        if live >= cap:
            break
        outcome = _dispatch(host, host.jobs.enqueue_batch, tracker, batch, generation)
        live += outcome in (ENQUEUED, LIVE)
        enqueued += outcome == ENQUEUED
    return enqueued


def dispatch_due_requests(host: Host) -> int:
    """Enqueue every due individual request whose job is not alive; how many were enqueued."""
    with host.store.transaction(readonly=True):
        singles = host.store.due_individual_requests(host.clock())
    return sum(_dispatch(host, host.jobs.enqueue_individual, None, r, g) == ENQUEUED for r, g in singles)


def dispatch_due_work(host: Host) -> tuple[int, int]:
    """(batches, requests) enqueued."""
    return dispatch_due_batches(host), dispatch_due_requests(host)


def dispatch_after_commit(host: Host, dispatch=dispatch_due_batches) -> int:
    """Dispatch once the work is committed; a transport that is down only delays it (the sweeper
    enqueues what is due), so it is logged, not raised. Returns how many were enqueued."""
    try:
        outcome = dispatch(host)
    except Exception as exc:
        if ends_job(exc) or classify(exc) != ErrorCategory.RETRYABLE:
            raise
        log.warning("could not enqueue (%s); the sweeper will", type(exc).__name__)
        return 0
    return sum(outcome) if isinstance(outcome, tuple) else outcome
