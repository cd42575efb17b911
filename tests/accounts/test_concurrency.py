"""Concurrency with real workers: the cap on bulk batches, exact counters, individual requests first."""

import pytest
from rq.job import Job
from sqlalchemy import func, select

from tests.accounts.conftest import ADMIN
from verenigingen.accounts.bulk import queue_bulk_account_creation_for_members
from verenigingen.accounts.individual import queue_account_creation_for_member
from verenigingen.accounts.ports import batch_job_id
from verenigingen.accounts.states import RequestStatus, Roles, TrackerStatus
from verenigingen.standalone.queue import HAS_RATE_LIMIT
from verenigingen.standalone.schema import account_creation_requests as requests_t

FAULTY = {"VERENIGINGEN_HOST_FACTORY": "tests.accounts.faults:make_host"}


def done(world, tracker):
    return lambda: world.tracker(tracker).status == TrackerStatus.COMPLETED


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = peak = 0
    for _, change in events:
        running += change
        peak = max(peak, running)
    return peak


@pytest.mark.skipif(not HAS_RATE_LIMIT, reason="RQ < 3.0 has no RateLimit: there the bulk worker count is the cap")
def test_eight_workers_never_run_more_than_five_batches_at_once(make_world):
    world = make_world(**FAULTY, VERENIGINGEN_FAULTS="delay:0.1")
    queued = queue_bulk_account_creation_for_members(world.host, ADMIN, world.add_members(80), batch_size=5)
    world.start_workers(8, queues="bulk")
    world.wait_until(done(world, queued.tracker), timeout=120)
    jobs = [Job.fetch(batch_job_id(queued.tracker, b), connection=world.redis) for b in range(1, 17)]
    intervals = [(job.started_at.timestamp(), job.ended_at.timestamp()) for job in jobs]
    peak = most_at_once(intervals)
    assert 3 <= peak <= 5, peak  # parallel, and capped


def test_five_workers_on_one_tracker_lose_no_increment(make_world):
    world = make_world()
    queued = queue_bulk_account_creation_for_members(world.host, ADMIN, world.add_members(500), batch_size=10)
    world.start_workers(5, queues="bulk")
    world.wait_until(done(world, queued.tracker), timeout=120)
    tracker = world.tracker(queued.tracker)
    with world.store.transaction(readonly=True):
        completed = world.store.count(requests_t, requests_t.c.status == RequestStatus.COMPLETED)
    assert (tracker.processed_records, tracker.successful_records, completed) == (500, 500, 500)


@pytest.mark.slow
def test_an_individual_request_overtakes_94_bulk_batches(make_world):
    world = make_world(**FAULTY, VERENIGINGEN_FAULTS="delay:0.01")
    world.add_user("manager@vereniging.test", "Manager", Roles.MANAGER)
    bulk = world.add_members(188)
    (single,) = world.add_members(1, prefix="approved")
    queued = queue_bulk_account_creation_for_members(world.host, ADMIN, bulk, batch_size=2)
    assert queued.total_batches == 94
    world.start_workers(2)
    world.wait_until(lambda: world.tracker(queued.tracker).processed_records >= 2, timeout=60)
    request = queue_account_creation_for_member(world.host, "manager@vereniging.test", single)
    world.wait_until(done(world, queued.tracker), timeout=180)
    with world.store.transaction(readonly=True):
        db = world.store.db
        asked_at, answered_at = db.execute(
            select(requests_t.c.creation, requests_t.c.completed_at).where(requests_t.c.name == request)
        ).one()
        bulk = requests_t.c.bulk_operation_tracker == queued.tracker
        waiting = db.scalar(select(func.count()).where(bulk, requests_t.c.started_at > asked_at))
        jumped_ahead = db.scalar(
            select(func.count()).where(
                bulk, requests_t.c.started_at > asked_at, requests_t.c.completed_at < answered_at
            )
        )
    # Only the batches the two workers were in the middle of may finish first (2 workers x 2 members, twice).
    assert waiting > 100 and jumped_ahead <= 8, (waiting, jumped_ahead)
