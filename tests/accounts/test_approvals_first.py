"""A running approval goes before the batches' next members: every batch holds back (briefly) while an
individual request's account is being made. Real stores, in process."""

import time
from dataclasses import replace
from datetime import timedelta

from tests.accounts.conftest import ADMIN
from verenigingen.accounts.bulk import process_bulk_account_creation_batch, queue_bulk_account_creation_for_members
from verenigingen.accounts.individual import queue_account_creation_for_member
from verenigingen.accounts.states import RequestStatus

YIELD = 0.4


def test_a_batch_holds_back_its_members_while_an_approval_is_being_made_and_not_longer(world):
    host = replace(world.host, settings=replace(world.host.settings, approval_yield_seconds=YIELD))
    approval_member, *bulk_members = world.add_members(4)
    approval = queue_account_creation_for_member(host, ADMIN, approval_member)
    queued = queue_bulk_account_creation_for_members(host, ADMIN, bulk_members)
    now = host.clock()
    with host.store.transaction():  # another worker is making the approval's account right now
        assert host.store.claim_request(approval, "other-worker", now, now + timedelta(seconds=120)) is not None
    started = time.monotonic()
    assert process_bulk_account_creation_batch(host, queued.tracker, 1).completed == 3
    held_back = time.monotonic() - started
    assert held_back >= 3 * YIELD  # before each of its 3 members

    with host.store.transaction():  # the approval is done: nothing holds the next batch back
        assert host.store.finish_request(approval, "other-worker", RequestStatus.COMPLETED, host.clock())
    more = queue_bulk_account_creation_for_members(host, ADMIN, world.add_members(3, prefix="n"))
    started = time.monotonic()
    assert process_bulk_account_creation_batch(host, more.tracker, 1).completed == 3
    assert time.monotonic() - started < held_back - 2 * YIELD
