"""A host that allows only so many new users a minute (Frappe's throttle_user_limit): members wait for it,
and never lose a retry or fail over it. Real stores, in process, with a store that throttles like Frappe."""

import time
from collections import Counter
from dataclasses import replace
from datetime import timedelta

from sqlalchemy import select

from tests.accounts.conftest import ADMIN
from verenigingen.accounts.bulk import process_bulk_account_creation_batch, queue_bulk_account_creation_for_members
from verenigingen.accounts.errors import Throttled
from verenigingen.accounts.individual import process_individual_request, queue_account_creation_for_member
from verenigingen.accounts.states import RequestStatus, TrackerStatus
from verenigingen.standalone.schema import account_creation_requests as requests_t
from verenigingen.standalone.schema import audit_log

LIMIT, WINDOW = 4, 1.0  # at most 4 new users a second


class ThrottlingStore:
    """The store of the world, with a limit on users created per window, as Frappe's before_insert."""

    def __init__(self, store):
        self._store = store
        self.created: list[float] = []
        self.refused = 0

    def __getattr__(self, name):
        return getattr(self._store, name)

    def create_user(self, *args, **kwargs):
        now = time.monotonic()
        recent = [t for t in self.created if t > now - WINDOW]
        if len(recent) >= LIMIT:
            self.refused += 1
            raise Throttled(wait_seconds=recent[0] + WINDOW - now)
        user = self._store.create_user(*args, **kwargs)
        self.created.append(now)
        return user


def _requests(world):
    r = requests_t.c
    with world.store.transaction(readonly=True):
        return world.store.db.execute(select(r.name, r.status, r.retry_count, r.next_retry_at)).all()


def test_a_throttled_bulk_operation_waits_and_completes_without_using_retries(world):
    store = ThrottlingStore(world.store)
    host = replace(world.host, store=store)
    names = world.add_members(12)
    queued = queue_bulk_account_creation_for_members(host, ADMIN, names, batch_size=5)
    outcomes: Counter = Counter()
    deadline = time.monotonic() + 60
    while world.tracker(queued.tracker).status not in TrackerStatus.FINISHED:
        assert time.monotonic() < deadline, (world.describe(), outcomes)
        with store.transaction(readonly=True):
            due = store.due_batches(host.clock())
        if not due:
            # Deferred: every request waits for the limit, each no later than one window from now.
            waiting = [row for row in _requests(world) if row.status == RequestStatus.QUEUED]
            assert waiting and all(row.next_retry_at is not None for row in waiting)
            time.sleep(0.05)
            continue
        for tracker, batch, generation in due:
            outcome = process_bulk_account_creation_batch(host, tracker, batch, generation)
            outcomes.update({key: value for key, value in vars(outcome).items() if isinstance(value, int)})
    view = world.tracker(queued.tracker)
    assert (view.status, view.successful_records, view.failed_records) == (TrackerStatus.COMPLETED, 12, 0)
    assert store.refused >= 2 and outcomes["throttled"] == store.refused
    assert {(row.status, row.retry_count) for row in _requests(world)} == {(RequestStatus.COMPLETED, 0)}
    with world.store.transaction(readonly=True):
        reasons = world.store.db.scalars(select(audit_log.c.reason)).all()
    assert any("waits" in (reason or "") and "limit on new users" in reason for reason in reasons)


def test_a_throttled_approval_waits_for_the_limit_without_using_a_retry(world):
    store = ThrottlingStore(world.store)
    store.created = [time.monotonic()] * LIMIT  # the limit is reached
    host = replace(world.host, store=store)
    (member,) = world.add_members(1)
    request = queue_account_creation_for_member(host, ADMIN, member)
    before = host.clock()
    assert process_individual_request(host, request) == "throttled"
    (row,) = _requests(world)
    assert (row.status, row.retry_count) == (RequestStatus.QUEUED, 0)
    assert before < row.next_retry_at <= before + timedelta(seconds=WINDOW + 1)  # due once the limit allows
    assert process_individual_request(host, request) == "skipped"  # not due yet: nobody runs it early
    time.sleep(WINDOW)
    assert process_individual_request(host, request) == "completed"
    (row,) = _requests(world)
    assert (row.status, row.retry_count) == (RequestStatus.COMPLETED, 0)
