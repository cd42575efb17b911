"""The bulk path end to end: queue, real RQ workers in subprocesses, exact results on SQLite and MariaDB."""

import math
from collections import Counter

import pytest
from sqlalchemy import select

from tests.accounts.conftest import ADMIN
from verenigingen.accounts.bulk import (
    process_bulk_account_creation_batch,
    queue_bulk_account_creation_for_members,
)
from verenigingen.accounts.errors import PermissionDenied
from verenigingen.accounts.ports import LIVE, batch_job_id
from verenigingen.accounts.states import RequestStatus, Roles, TrackerStatus
from verenigingen.standalone.schema import account_creation_requests, audit_log, members, user_roles, users


def assert_every_member_has_exactly_one_user(world, names):
    with world.store.transaction():
        db = world.store.db
        linked = dict(db.execute(select(members.c.name, members.c.user).where(members.c.name.in_(names))).all())
        owners = dict(db.execute(select(users.c.name, users.c.member).where(users.c.member.is_not(None))).all())
        roles = Counter(db.scalars(select(user_roles.c.role).where(user_roles.c.user.in_(list(linked.values())))))
    assert all(linked[name] for name in names), "a member has no user"
    assert len(set(linked.values())) == len(names), "two members share a user"
    assert {owners[user] for user in linked.values()} == set(names)
    assert roles == {Roles.MEMBER: len(names)}


def assert_audit_trail_complete(world, tracker):
    with world.store.transaction():
        db = world.store.db
        names = list(
            db.scalars(
                select(account_creation_requests.c.name).where(
                    account_creation_requests.c.bulk_operation_tracker == tracker
                )
            )
        )
        trail = db.execute(
            select(audit_log.c.reference_name, audit_log.c.from_status, audit_log.c.to_status, audit_log.c.changed_by)
            .where(audit_log.c.reference_name.in_([*names, tracker]))
            .order_by(audit_log.c.id)
        ).all()
    steps: dict[str, list] = {}
    for name, before, after, by in trail:
        steps.setdefault(name, []).append((before, after))
        assert by == ADMIN  # every change is attributed to the requesting user
    expected = [(None, "Requested"), ("Requested", "Queued"), ("Queued", "Processing"), ("Processing", "Completed")]
    assert all(steps[name] == expected for name in names), "a request's audit trail is incomplete"
    assert steps[tracker] == [(None, "Preparing"), ("Preparing", "Queued"), *expected[2:]]


@pytest.mark.parametrize("count", [1, 49, 50, 51, 99, 101, 500, pytest.param(4700, marks=pytest.mark.slow)])
def test_every_eligible_member_gets_exactly_one_user(make_world, count):
    # Burst workers run no sweeper: a lease that SQLite's lock queue could outlast would strand a claim.
    world = make_world(VERENIGINGEN_LEASE_SECONDS="60")
    names = world.add_members(count)
    queued = queue_bulk_account_creation_for_members(world.host, ADMIN, names)
    batches = math.ceil(count / 50)
    # Never more live bulk jobs than batch slots: the rest wait in the database for a slot to be handed on.
    assert (queued.requested, queued.total_batches, queued.enqueued_batches) == (count, batches, min(batches, 5))
    world.run_burst(5 if count >= 500 else 2, timeout=300)
    tracker = world.tracker(queued.tracker)
    assert tracker.status == TrackerStatus.COMPLETED
    assert (tracker.total_records, tracker.processed_records, tracker.successful_records, tracker.failed_records) == (
        count,
        count,
        count,
        0,
    )
    assert (tracker.total_batches, tracker.current_batch, tracker.batch_size) == (batches, batches, 50)
    assert_every_member_has_exactly_one_user(world, names)
    assert_audit_trail_complete(world, queued.tracker)


def test_requests_are_created_in_batches_of_the_requested_size(world):
    names = world.add_members(23)
    queued = queue_bulk_account_creation_for_members(world.host, ADMIN, names, batch_size=5)
    assert queued.total_batches == 5
    with world.store.transaction():
        sizes = Counter(world.store.db.scalars(select(account_creation_requests.c.batch_number)))
    assert sizes == {1: 5, 2: 5, 3: 5, 4: 5, 5: 3}


def test_only_eligible_members_are_requested_and_the_rest_are_explained(world):
    eligible = world.add_members(3)
    (cancelled,) = world.add_members(1, status="Cancelled", prefix="c")
    no_email, has_user, same_person, other_person = world.add_members(4, prefix="x")
    with world.store.transaction():
        world.store.db.execute(members.update().where(members.c.name == no_email).values(email=None))
    world.add_user("x1@vereniging.test", "Someone", Roles.MEMBER, member=has_user)
    with world.store.transaction():
        world.store.link_member(has_user, "x1@vereniging.test", ADMIN)
    world.add_user("x2@vereniging.test", "LID  nummer 2", Roles.MEMBER)  # the same person, by name
    world.add_user("x3@vereniging.test", "Iemand Anders", Roles.MEMBER)  # someone else
    first = queue_bulk_account_creation_for_members(world.host, ADMIN, eligible[:1])
    queued = queue_bulk_account_creation_for_members(
        world.host, ADMIN, [*eligible, cancelled, no_email, has_user, same_person, other_person, "MEM-nope"]
    )
    assert first.requested == 1
    assert (queued.requested, queued.linked) == (2, 1)
    refused = {r.member: r.code for r in queued.validation_errors}
    assert refused == {
        eligible[0]: "open_request",
        cancelled: "not_eligible",
        no_email: "no_email",
        has_user: "has_user",
        other_person: "email_taken",
        "MEM-nope": "not_found",
    }
    with world.store.transaction():
        assert world.store.get_members([same_person])[same_person].user == "x2@vereniging.test"


def test_enqueueing_a_batch_twice_is_a_no_op(world):
    queued = queue_bulk_account_creation_for_members(world.host, ADMIN, world.add_members(60))
    assert queued.enqueued_batches == 2
    assert world.host.jobs.enqueue_batch(queued.tracker, 1) == LIVE
    assert world.host.jobs.is_live(batch_job_id(queued.tracker, 2))


def test_a_batch_that_runs_twice_changes_nothing_the_second_time(world):
    names = world.add_members(50)
    queued = queue_bulk_account_creation_for_members(world.host, ADMIN, names)
    first = process_bulk_account_creation_batch(world.host, queued.tracker, 1)
    second = process_bulk_account_creation_batch(world.host, queued.tracker, 1)
    assert (first.completed, first.tracker_completed) == (50, True)
    assert (second.completed, second.skipped, second.tracker_completed) == (0, 0, False)
    tracker = world.tracker(queued.tracker)
    assert (tracker.processed_records, tracker.successful_records) == (50, 50)
    assert_every_member_has_exactly_one_user(world, names)


@pytest.mark.parametrize("roles", [(), (Roles.MANAGER,), (Roles.MEMBER, Roles.SYSTEM_MANAGER)])
def test_bulk_needs_the_administrator_role_and_queues_nothing_otherwise(world, roles):
    world.add_user("clerk@vereniging.test", "Clerk", *roles)
    names = world.add_members(10)
    with pytest.raises(PermissionDenied, match="Verenigingen Administrator"):
        queue_bulk_account_creation_for_members(world.host, "clerk@vereniging.test", names)
    with world.store.transaction():
        assert world.store.count(account_creation_requests) == 0
        assert world.store.latest_tracker() is None
    assert world.redis.keys("rq:queue:*") == []
    assert world.redis.keys("rq:job:*") == []


def test_a_requester_who_lost_the_role_gets_no_accounts_created(world):
    world.add_user("boss@vereniging.test", "Boss", Roles.ADMINISTRATOR)
    names = world.add_members(3)
    queued = queue_bulk_account_creation_for_members(world.host, "boss@vereniging.test", names)
    with world.store.transaction():
        world.store.db.execute(user_roles.delete().where(user_roles.c.user == "boss@vereniging.test"))
    outcome = process_bulk_account_creation_batch(world.host, queued.tracker, 1)
    assert (outcome.completed, outcome.failed) == (0, 3)
    assert world.tracker(queued.tracker).status == TrackerStatus.FAILED
    with world.store.transaction():
        assert (
            world.store.count(account_creation_requests, account_creation_requests.c.status == RequestStatus.FAILED)
            == 3
        )


def test_nobody_grants_a_role_they_do_not_hold(world):
    names = world.add_members(2)
    with pytest.raises(PermissionDenied, match="grant roles one does not hold: System Manager"):
        queue_bulk_account_creation_for_members(world.host, ADMIN, names, roles=[Roles.MEMBER, Roles.SYSTEM_MANAGER])
    with pytest.raises(PermissionDenied, match="role profile"):
        queue_bulk_account_creation_for_members(world.host, ADMIN, names, role_profile="Bestuur")
    with world.store.transaction(readonly=True):
        assert world.store.count(account_creation_requests) == 0


def test_a_member_changed_after_queueing_is_judged_as_it_is_now(world):
    stays, leaves, moves = world.add_members(3)
    queued = queue_bulk_account_creation_for_members(world.host, ADMIN, [stays, leaves, moves])
    with world.store.transaction():
        db = world.store.db
        db.execute(members.update().where(members.c.name == leaves).values(status="Cancelled"))
        db.execute(members.update().where(members.c.name == moves).values(email="nieuw@vereniging.test"))
    outcome = process_bulk_account_creation_batch(world.host, queued.tracker, 1)
    assert (outcome.completed, outcome.failed) == (2, 1)
    with world.store.transaction(readonly=True):
        users_by_member = dict(world.store.db.execute(select(members.c.name, members.c.user)).all())
        reason = world.store.db.scalar(
            select(account_creation_requests.c.failure_reason).where(
                account_creation_requests.c.source_record == leaves
            )
        )
    assert users_by_member == {stays: "m0@vereniging.test", leaves: None, moves: "nieuw@vereniging.test"}
    assert reason == "the member's status is now Cancelled"
