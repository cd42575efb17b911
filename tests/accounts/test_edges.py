"""Edges a review found: a slot freed while a batch found none, a job RQ 1.15 lost between queue and
start, waiting that is not being stuck, a role revoked mid-batch, and set-up mistakes told in one line."""

import csv
import sqlite3
import subprocess
import sys
from dataclasses import replace
from datetime import timedelta

import pytest
from rq.job import Job
from sqlalchemy import select, update

from tests.accounts.conftest import ADMIN
from tests.conftest import member_row, write_export
from verenigingen.accounts.bulk import process_bulk_account_creation_batch, queue_bulk_account_creation_for_members
from verenigingen.accounts.dispatch import dispatch_due_batches
from verenigingen.accounts.errors import IntegrityConflict
from verenigingen.accounts.manager import AccountCreationManager
from verenigingen.accounts.ports import DEAD, ENQUEUED, LIVE, batch_job_id
from verenigingen.accounts.slots import take_slot
from verenigingen.accounts.states import Roles
from verenigingen.accounts.trackers import progress
from verenigingen.standalone.host import utc_now
from verenigingen.standalone.importer import Importer
from verenigingen.standalone.schema import account_creation_requests as requests_t
from verenigingen.standalone.schema import bulk_operation_trackers, members, user_roles, users


class StoreHook:
    """The real store, with someone else's step slipped in right before the nth call of one method."""

    def __init__(self, store, method: str, step, nth: int = 1):
        self._store, self._method, self._step, self._calls_left = store, method, step, nth

    def __getattr__(self, name):
        attribute = getattr(self._store, name)
        if name != self._method:
            return attribute

        def hooked(*args, **kwargs):
            self._calls_left -= 1
            if self._calls_left == 0:
                self._step()
            return attribute(*args, **kwargs)

        return hooked


def generations(world, tracker: str, batch: int) -> set[int]:
    with world.store.transaction(readonly=True):
        rows = world.store.db.scalars(
            select(requests_t.c.job_generation).where(
                requests_t.c.bulk_operation_tracker == tracker, requests_t.c.batch_number == batch
            )
        )
        return set(rows)


def test_a_slot_freed_while_a_batch_found_none_is_handed_to_that_batch(make_world):
    """The freeing batch hands its slot on while the no-slot job still looks alive, so it enqueues nothing;
    the no-slot job must then enqueue its batch itself, under a new generation, not leave it jobless."""
    world = make_world(VERENIGINGEN_MAX_CONCURRENT_BATCHES="1")
    queued = queue_bulk_account_creation_for_members(world.host, ADMIN, world.add_members(4), batch_size=2)
    other = take_slot(world.host, "batch 1, on its last member")  # nothing of batch 1 is due any more
    with world.store.transaction():
        world.store.db.execute(
            update(requests_t).where(requests_t.c.batch_number == 1).values(status="Completed", open_for_member=None)
        )
    assert world.host.jobs.enqueue_batch(queued.tracker, 2) == ENQUEUED  # this job, as if running now

    def the_other_batch_finishes():
        other.release()
        assert dispatch_due_batches(world.host) == 0  # both batches look alive: nothing to enqueue

    # transactions: 1 reads the batch, 2 fails to take a slot, 3 moves it to a new generation
    store = StoreHook(world.store, "transaction", the_other_batch_finishes, nth=3)
    host = replace(world.host, store=store)
    assert process_bulk_account_creation_batch(host, queued.tracker, 2).no_slot
    assert generations(world, queued.tracker, 2) == {1}
    assert world.host.jobs.state_of(batch_job_id(queued.tracker, 2, 1)) == LIVE  # enqueued by the no-slot job


def test_a_batch_that_found_no_slot_waits_for_the_one_that_frees_it(make_world):
    world = make_world(VERENIGINGEN_MAX_CONCURRENT_BATCHES="1")
    queued = queue_bulk_account_creation_for_members(world.host, ADMIN, world.add_members(4), batch_size=2)
    other = take_slot(world.host, "another batch")
    assert process_bulk_account_creation_batch(world.host, queued.tracker, 2).no_slot
    assert generations(world, queued.tracker, 2) == {1}
    assert world.host.jobs.enqueue_batch(queued.tracker, 2, 1) == ENQUEUED  # nobody enqueued it: no slot was free
    other.release()


def test_a_job_left_queued_in_no_queue_counts_as_dead(make_world):
    """RQ 1.15: a worker killed between taking a job and starting it leaves it 'queued' in no queue."""
    world = make_world(VERENIGINGEN_JOB_MONITORING_INTERVAL="1")
    queued = queue_bulk_account_creation_for_members(world.host, ADMIN, world.add_members(2))
    job_id = batch_job_id(queued.tracker, 1)
    assert world.host.jobs.state_of(job_id) == LIVE
    world.redis.lrem(f"rq:queue:{world.shost.settings.bulk_queue}", 0, job_id)  # taken, never started
    assert world.host.jobs.state_of(job_id) == LIVE  # a moment ago: a worker may be starting it right now
    job = Job.fetch(job_id, connection=world.redis)
    job.enqueued_at = utc_now() - timedelta(seconds=60)
    job.save()
    assert world.host.jobs.state_of(job_id) == DEAD
    assert dispatch_due_batches(world.host) == 1
    assert Job.fetch(batch_job_id(queued.tracker, 1, 1), connection=world.redis) is not None


def test_a_retry_that_just_fell_due_or_slots_held_elsewhere_are_not_stuck(make_world):
    world = make_world(VERENIGINGEN_STALL_SECONDS="60")
    queued = queue_bulk_account_creation_for_members(world.host, ADMIN, world.add_members(3))
    now, long_ago = utc_now(), utc_now() - timedelta(hours=1)
    with world.store.transaction():
        db = world.store.db
        db.execute(update(bulk_operation_trackers).values(modified=long_ago))
        db.execute(update(requests_t).values(next_retry_at=now - timedelta(seconds=5), retry_count=1))
    assert progress(world.host, queued.tracker, long_ago).stuck is None  # the retry fell due 5 s ago
    with world.store.transaction():
        world.store.db.execute(update(requests_t).values(next_retry_at=long_ago))
    stuck = progress(world.host, queued.tracker, long_ago).stuck
    assert stuck is not None and "3 requests are due but no worker takes them" in stuck
    held = [take_slot(world.host, f"elsewhere {n}") for n in range(5)]  # another operation's batches run
    assert progress(world.host, queued.tracker, long_ago).stuck is None
    for slot in held:
        slot.release()


def test_a_role_revoked_during_a_batch_stops_its_remaining_members(world):
    """Roles are read in each member's own transaction, never cached for the length of a batch."""
    world.add_user("boss@vereniging.test", "Boss", Roles.ADMINISTRATOR)
    queued = queue_bulk_account_creation_for_members(world.host, "boss@vereniging.test", world.add_members(2))
    with world.store.transaction(readonly=True):
        first, second = world.store.batch_requests(queued.tracker, 1)
    manager = AccountCreationManager(world.host)
    assert manager.process(first) == "completed"
    with world.store.transaction():
        world.store.db.execute(user_roles.delete().where(user_roles.c.user == "boss@vereniging.test"))
    assert manager.process(second) == "failed"
    with world.store.transaction(readonly=True):
        assert world.store.get_request(second).failure_reason.startswith("not allowed to create accounts")


def test_an_integrity_error_is_told_without_the_value_it_quotes(world):
    with pytest.raises(IntegrityConflict) as raised, world.store.transaction():
        world.store.db.execute(users.insert().values(name="dubbel@example.nl", email=ADMIN, full_name="X", enabled=1))
    assert ADMIN not in str(raised.value) and "dubbel" not in str(raised.value)
    assert raised.value.__suppress_context__  # a printed traceback does not show the driver's message


def _cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "verenigingen.standalone.cli", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_set_up_mistakes_get_one_line(world, tmp_path):
    bad = _cli({**world.env, "VERENIGINGEN_LEASE_SECONDS": "soon"}, "status")
    assert (bad.returncode, bad.stderr.strip().splitlines()) == (
        2,
        ["verenigingen: VERENIGINGEN_LEASE_SECONDS must be a whole number of at least 1, not 'soon'"],
    )
    old = tmp_path / "old.sqlite3"
    with sqlite3.connect(old) as connection:  # a table as an older version made it
        connection.execute("CREATE TABLE bulk_operation_trackers (name VARCHAR(40) PRIMARY KEY)")
    outdated = _cli({**world.env, "VERENIGINGEN_DB": f"sqlite:///{old}"}, "status")
    assert outdated.returncode == 2
    assert len(outdated.stderr.strip().splitlines()) == 1
    assert "created by an older version" in outdated.stderr and "bulk_operation_trackers.operation_type" in (
        outdated.stderr
    )


def test_the_importer_rejects_a_row_whose_email_belongs_to_another_member(world, tmp_path):
    """The importer's conflict row: the e-mail is another member's, so the row is rejected with the Lidnr.
    it belongs to, and neither member changes."""
    first = write_export(tmp_path / "first.csv", [member_row(**{"Lidnr.": "1001", "E-mailadres": "anna@example.nl"})])
    assert Importer(world.shost, ADMIN).run(first, create_accounts=False).members_created == 1
    clash = member_row(**{"Lidnr.": "1002", "Voornaam": "Bert", "E-mailadres": "Anna@Example.nl"})
    second = write_export(tmp_path / "second.csv", [clash])
    result = Importer(world.shost, ADMIN).run(second, create_accounts=False)
    assert (result.members_created, result.members_updated, result.invalid_rows) == (0, 0, 1)
    with open(result.rejected_rows_file, encoding="utf-8-sig", newline="") as stream:
        rows = list(csv.reader(stream, delimiter=";"))
    assert rows[1][:3] == ["2", "E-mailadres: the e-mail address belongs to another member (Lidnr. 1001)", "1002"]
    with world.store.transaction(readonly=True):
        assert world.store.db.execute(select(members.c.member_id, members.c.first_name)).all() == [("1001", "Anna")]
