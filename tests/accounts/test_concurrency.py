"""Concurrency with real workers, on every RQ version: the engine's cap on bulk batches (sampled from the
database), slots of killed workers coming back, exact counters, individual requests never waiting."""

import os
import signal
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.accounts.conftest import ADMIN
from tests.accounts.test_bulk import assert_every_member_has_exactly_one_user
from tests.accounts.test_faults import _children_of
from verenigingen.accounts.bulk import queue_bulk_account_creation_for_members
from verenigingen.accounts.individual import queue_account_creation_for_member
from verenigingen.accounts.states import RequestStatus, Roles, TrackerStatus
from verenigingen.standalone.host import utc_now
from verenigingen.standalone.schema import account_creation_requests as requests_t
from verenigingen.standalone.schema import batch_slots

FAULTY = {"VERENIGINGEN_HOST_FACTORY": "tests.accounts.faults:make_host"}


def done(world, tracker):
    return lambda: world.tracker(tracker).status == TrackerStatus.COMPLETED


def in_progress(world) -> tuple[int, int]:
    """(slots held, batches with a member being processed), as the database says right now."""
    now = utc_now()
    pool = world.shost.settings.bulk_queue
    r, s = requests_t.c, batch_slots.c
    with world.store.transaction(readonly=True):
        db = world.store.db
        held = db.scalar(select(func.count()).where(s.pool == pool, s.holder.is_not(None), s.lease_expires_at >= now))
        batches = db.execute(
            select(r.bulk_operation_tracker, r.batch_number)
            .where(r.status == RequestStatus.PROCESSING, r.lease_expires_at >= now)
            .distinct()
        ).all()
    return held, len(batches)


class Sampler(threading.Thread):
    """Samples in_progress() every few milliseconds while a run goes on; keeps the peaks."""

    def __init__(self, world):
        super().__init__(daemon=True)
        self.world, self.stop, self.peak_slots, self.peak_batches, self.samples = world, threading.Event(), 0, 0, 0

    def run(self):
        while not self.stop.is_set():
            held, batches = in_progress(self.world)
            self.peak_slots, self.peak_batches = max(self.peak_slots, held), max(self.peak_batches, batches)
            self.samples += 1
            time.sleep(0.01)


@pytest.mark.parametrize(("db_url", "workers"), [("sqlite", 8), ("mariadb", 12)], indirect=["db_url"])
def test_many_workers_never_run_more_than_five_batches_at_once(make_world, workers):
    world = make_world(**FAULTY, VERENIGINGEN_FAULTS="delay:0.03")
    names = world.add_members(120)
    # Every worker up before the work is queued: on a loaded machine the first one to start could otherwise
    # finish every batch before the others are listening, and the run would prove nothing about the cap.
    world.start_workers(workers, queues="bulk")
    world.wait_until(lambda: world.registered_workers() == workers, timeout=120)
    queued = queue_bulk_account_creation_for_members(world.host, ADMIN, names, batch_size=5)
    sampler = Sampler(world)
    sampler.start()
    try:
        world.wait_until(done(world, queued.tracker), timeout=180)
    finally:
        sampler.stop.set()
        sampler.join()
    assert sampler.samples > 50
    assert sampler.peak_slots <= 5 and sampler.peak_batches <= 5, (sampler.peak_slots, sampler.peak_batches)
    # Batches at work at once, by the slots they hold for their whole run (a member being processed is too
    # brief a moment to be caught twice at once on SQLite, whose writers take turns).
    assert sampler.peak_slots >= 2, "the batches did not run in parallel at all"
    assert_every_member_has_exactly_one_user(world, names)


def test_a_killed_worker_gives_its_slot_back_within_its_lease(make_world):
    # A worker killed between two members leaves no claim to recover: its batch goes on once its job is seen
    # dead (its worker's process gone and a heartbeat missed), here within seconds rather than the default 35.
    world = make_world(
        **FAULTY,
        VERENIGINGEN_FAULTS="delay:0.2",
        VERENIGINGEN_MAX_CONCURRENT_BATCHES="1",
        VERENIGINGEN_JOB_MONITORING_INTERVAL="2",
    )
    names = world.add_members(20)
    queued = queue_bulk_account_creation_for_members(world.host, ADMIN, names, batch_size=10)
    victim = world.start_workers(1)
    world.wait_until(lambda: world.tracker(queued.tracker).processed_records >= 2, timeout=60)
    with world.store.transaction(readonly=True):
        (holder,) = world.store.db.scalars(select(batch_slots.c.holder).where(batch_slots.c.holder.is_not(None)))
    for pid in [*_children_of(victim), victim[0].pid]:
        os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    assert in_progress(world)[0] == 1  # still held by the dead worker

    # Free again once its lease runs out (measured from the database, not from a new worker's start-up) ...
    world.wait_until(lambda: in_progress(world)[0] == 0, timeout=30)
    assert time.monotonic() - killed <= world.shost.settings.lease_seconds + 2
    # ... and another worker takes it and finishes the work.
    world.start_workers(1)

    def taken_by_another():
        with world.store.transaction(readonly=True):
            holders = set(world.store.db.scalars(select(batch_slots.c.holder)))
        return bool(holders - {None, holder})

    world.wait_until(taken_by_another, timeout=60)
    world.wait_until(done(world, queued.tracker), timeout=120)
    assert_every_member_has_exactly_one_user(world, names)


def test_five_workers_on_one_tracker_lose_no_increment(make_world):
    world = make_world()
    queued = queue_bulk_account_creation_for_members(world.host, ADMIN, world.add_members(500), batch_size=10)
    world.start_workers(5, queues="bulk")
    world.wait_until(done(world, queued.tracker), timeout=120)
    tracker = world.tracker(queued.tracker)
    with world.store.transaction(readonly=True):
        completed = world.store.count(requests_t, requests_t.c.status == RequestStatus.COMPLETED)
    assert (tracker.processed_records, tracker.successful_records, completed) == (500, 500, 500)


def test_approvals_during_a_bulk_run_start_within_seconds_with_five_busy_workers(make_world):
    """Five workers, each serving both queues and each running a slow batch: an approval still starts at
    once, because the first batch to look serves it between two of its members."""
    # Slow batches that hold no lock while they wait, so that SQLite's writers interleave too.
    world = make_world(**FAULTY, VERENIGINGEN_FAULTS="pause:0.03")
    world.add_user("manager@vereniging.test", "Manager", Roles.MANAGER)
    bulk = world.add_members(600)
    approved = world.add_members(4, prefix="approved")
    queued = queue_bulk_account_creation_for_members(world.host, ADMIN, bulk)
    world.start_workers(5)
    world.wait_until(lambda: in_progress(world)[0] == 5, timeout=60)  # every worker is in a batch
    requests = []
    for member in approved:
        requests.append(queue_account_creation_for_member(world.host, "manager@vereniging.test", member))
        time.sleep(0.5)
    world.wait_until(done(world, queued.tracker), timeout=240)
    with world.store.transaction(readonly=True):
        rows = world.store.db.execute(
            select(requests_t.c.creation, requests_t.c.started_at, requests_t.c.status).where(
                requests_t.c.name.in_(requests)
            )
        ).all()
        bulk_finished = world.store.db.scalar(
            select(func.max(requests_t.c.completed_at)).where(requests_t.c.bulk_operation_tracker == queued.tracker)
        )
    waits = sorted((started - asked).total_seconds() for asked, started, _ in rows)
    assert [status for *_, status in rows] == [RequestStatus.COMPLETED] * 4
    # A 50-member batch takes at least 3 s here; the approvals waited for none of them.
    assert waits[-1] < 2.0, waits
    assert all(asked < bulk_finished - timedelta(seconds=1) for asked, _, _ in rows)  # made during the run
