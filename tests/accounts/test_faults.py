"""Faults in real worker processes: retries that succeed, permanent errors, retries exhausted, a worker
killed mid-batch, Redis emptied mid-run. After each: nothing lost, nothing duplicated, counts exact."""

import os
import signal
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.accounts.conftest import ADMIN
from tests.accounts.test_bulk import assert_every_member_has_exactly_one_user
from verenigingen.accounts.bulk import queue_bulk_account_creation_for_members
from verenigingen.accounts.retry import retry_failed_requests
from verenigingen.accounts.states import ErrorCategory, RequestStatus, TrackerStatus
from verenigingen.standalone.schema import account_creation_requests as requests_t

FAULTY = {"VERENIGINGEN_HOST_FACTORY": "tests.accounts.faults:make_host"}


def requests_by_member(world) -> dict[str, tuple]:
    with world.store.transaction():
        rows = world.store.db.execute(
            select(
                requests_t.c.source_record,
                requests_t.c.status,
                requests_t.c.retry_count,
                requests_t.c.error_category,
                requests_t.c.failure_reason,
            )
        ).all()
    return {row[0]: tuple(row[1:]) for row in rows}


def finished(world, tracker):
    return lambda: world.tracker(tracker).status in TrackerStatus.FINISHED


def test_passing_faults_are_retried_and_succeed(make_world):
    world = make_world(**FAULTY, VERENIGINGEN_FAULTS="retry_once:^m[0-4]@")
    names = world.add_members(60)
    queued = queue_bulk_account_creation_for_members(world.host, ADMIN, names)
    world.start_workers(2)
    world.wait_until(finished(world, queued.tracker), timeout=90)
    tracker = world.tracker(queued.tracker)
    assert (tracker.status, tracker.successful_records, tracker.failed_records) == (TrackerStatus.COMPLETED, 60, 0)
    retried = {member: row[1] for member, row in requests_by_member(world).items() if row[1]}
    assert retried == {f"MEM-m{i:05d}": 1 for i in range(5)}
    assert_every_member_has_exactly_one_user(world, names)


def test_permanent_errors_fail_once_are_reported_and_can_be_retried(make_world):
    faulty = make_world(**FAULTY, VERENIGINGEN_FAULTS="permanent:^m[0-2]@")
    names = faulty.add_members(20)
    queued = queue_bulk_account_creation_for_members(faulty.host, ADMIN, names)
    faulty.run_burst(2)
    tracker = faulty.tracker(queued.tracker)
    assert (tracker.status, tracker.processed_records, tracker.successful_records, tracker.failed_records) == (
        TrackerStatus.COMPLETED_WITH_ERRORS,
        20,
        17,
        3,
    )
    assert tracker.error_summary == "3 x injected: the e-mail domain does not accept accounts"
    failed = {m: row for m, row in requests_by_member(faulty).items() if row[0] == RequestStatus.FAILED}
    assert {m: (row[1], row[2]) for m, row in failed.items()} == {
        f"MEM-m{i:05d}": (0, ErrorCategory.PERMANENT) for i in range(3)
    }
    # The administrator fixes the cause (here: workers without the fault) and retries.
    assert retry_failed_requests(faulty.host, ADMIN, queued.tracker).retried == 3
    faulty.env.pop("VERENIGINGEN_HOST_FACTORY")
    faulty.run_burst(1)
    tracker = faulty.tracker(queued.tracker)
    assert (tracker.status, tracker.processed_records, tracker.successful_records, tracker.failed_records) == (
        TrackerStatus.COMPLETED,
        20,
        20,
        0,
    )
    assert_every_member_has_exactly_one_user(faulty, names)


def test_exhausted_retries_fail_for_good(make_world):
    world = make_world(**FAULTY, VERENIGINGEN_FAULTS="always_retry:^m0@")
    names = world.add_members(10)
    queued = queue_bulk_account_creation_for_members(world.host, ADMIN, names)
    world.start_workers(1)
    world.wait_until(finished(world, queued.tracker), timeout=90)
    tracker = world.tracker(queued.tracker)
    assert (tracker.successful_records, tracker.failed_records) == (9, 1)
    status, retries, category, reason = requests_by_member(world)["MEM-m00000"]
    assert (status, retries, category) == (RequestStatus.FAILED, 3, ErrorCategory.RETRYABLE)
    assert reason == "gave up after 3 retries: TimeoutError"
    assert tracker.error_summary == "1 x gave up after 3 retries: TimeoutError"


@pytest.mark.slow
def test_a_worker_killed_mid_batch_loses_and_duplicates_nothing(make_world):
    world = make_world(**FAULTY, VERENIGINGEN_FAULTS="delay:0.05")
    names = world.add_members(150)
    queued = queue_bulk_account_creation_for_members(world.host, ADMIN, names)
    victims = world.start_workers(2)

    def some_done():
        return world.tracker(queued.tracker).processed_records >= 20

    world.wait_until(some_done, timeout=60)
    horses = _children_of(victims)
    assert horses, "no work horse was running"
    for pid in [*horses, *(process.pid for process in victims)]:  # worker and work horse, mid-member
        os.kill(pid, signal.SIGKILL)
    before = world.tracker(queued.tracker)
    assert before.processed_records < 150
    world.start_workers(2)
    world.wait_until(finished(world, queued.tracker), timeout=120)
    tracker = world.tracker(queued.tracker)
    assert (tracker.status, tracker.processed_records, tracker.successful_records, tracker.failed_records) == (
        TrackerStatus.COMPLETED,
        150,
        150,
        0,
    )
    assert_every_member_has_exactly_one_user(world, names)


def test_redis_emptied_mid_run_loses_nothing(make_world):
    world = make_world(**FAULTY, VERENIGINGEN_FAULTS="delay:0.02")
    names = world.add_members(300)
    queued = queue_bulk_account_creation_for_members(world.host, ADMIN, names)
    world.start_workers(2)
    world.wait_until(lambda: world.tracker(queued.tracker).processed_records >= 30, timeout=60)
    world.redis.flushdb()  # every queued job is gone; the database still knows what is to be done
    world.wait_until(finished(world, queued.tracker), timeout=120)
    tracker = world.tracker(queued.tracker)
    assert (tracker.status, tracker.processed_records, tracker.successful_records) == (
        TrackerStatus.COMPLETED,
        300,
        300,
    )
    assert_every_member_has_exactly_one_user(world, names)


def _children_of(processes) -> list[int]:
    children = []
    for process in processes:
        path = f"/proc/{process.pid}/task/{process.pid}/children"
        if os.path.exists(path):
            children += [int(pid) for pid in Path(path).read_text().split()]
    return children
