"""The Store port, method by method, exactly as ``verenigingen/accounts/ports.py`` words it, on every store.

Times come from the test (``START`` plus offsets, to the microsecond): a store that read its own clock or
rounded a time would fail here.
"""

from datetime import datetime, timedelta

import pytest

from tests.contract.conftest import ADMIN, START, email_of, fields, full_name_of, new_request
from verenigingen.accounts.errors import DuplicateUserError, ValidationFailed
from verenigingen.accounts.ports import AuditEntry, NewTracker, RequestCounts, RequestView, TrackerView
from verenigingen.accounts.states import RequestStatus as RS
from verenigingen.accounts.states import Roles
from verenigingen.accounts.states import TrackerStatus as TS

LEASE = timedelta(seconds=120)
TICK = timedelta(microseconds=1)


def at(seconds: float) -> datetime:
    return START + timedelta(seconds=seconds)


def insert(backend, members, status=RS.QUEUED, now=START, tracker=None, batch=None) -> list[str]:
    with backend.store.transaction():
        return backend.store.insert_requests([new_request(m, tracker, batch) for m in members], status, now)


def claim(backend, name, worker="w1", now=START, lease=LEASE) -> RequestView | None:
    with backend.store.transaction():
        return backend.store.claim_request(name, worker, now, now + lease)


def finish(backend, name, status=RS.COMPLETED, worker="w1", now=START, **outcome) -> bool:
    with backend.store.transaction():
        return backend.store.finish_request(name, worker, status, now, **outcome)


def requeue(backend, name, from_status=RS.PROCESSING, owner="w1", due=None, expired_before=None, **changes):
    values = {"retry_count": 1, "generation": 1, "category": "retryable", "reason": "lost", **changes}
    with backend.store.transaction():
        return backend.store.requeue_request(
            name,
            from_status,
            owner,
            values["retry_count"],
            values["generation"],
            due,
            values["category"],
            values["reason"],
            lease_expired_before=expired_before,
        )


def new_tracker(backend, status=TS.QUEUED, total=4, now=START, lease_until=None) -> str:
    spec = NewTracker("Account Creation", "IMP-1", total, 2, 2, "Low", ADMIN)
    with backend.store.transaction():
        return backend.store.insert_tracker(spec, status, now, lease_until or now + LEASE)


def open_members(backend, names) -> set[str]:
    with backend.store.transaction(readonly=True):
        return backend.store.members_with_open_request(names)


# --- transactions -------------------------------------------------------------------------------------------
def test_writes_are_seen_inside_their_transaction_and_by_others_only_after_commit(backend):
    (member,) = backend.add_members(1)
    other = backend.second_store()
    with backend.store.transaction():
        (name,) = backend.store.insert_requests([new_request(member)], RS.QUEUED, START)
        assert backend.store.get_request(name).status == RS.QUEUED
        with other.transaction(readonly=True):
            assert other.get_request(name) is None
    with other.transaction(readonly=True):
        assert other.get_request(name).status == RS.QUEUED


def test_a_block_that_raises_is_rolled_back_and_the_error_reaches_the_caller(backend):
    (member,) = backend.add_members(1)

    class Stop(Exception):
        pass

    with pytest.raises(Stop), backend.store.transaction():
        (name,) = backend.store.insert_requests([new_request(member)], RS.QUEUED, START)
        raise Stop
    assert backend.request(name) is None
    assert open_members(backend, [member]) == set()


def test_transactions_do_not_nest(backend):
    """A nested transaction would commit (or roll back) the outer one's work behind its back: refused."""
    (member,) = backend.add_members(1)
    with pytest.raises(RuntimeError), backend.store.transaction():
        (name,) = backend.store.insert_requests([new_request(member)], RS.QUEUED, START)
        with backend.store.transaction(readonly=True):
            pass
    assert backend.request(name) is None
    assert len(insert(backend, [member])) == 1  # the store is usable again


def test_store_methods_refuse_to_run_outside_a_transaction(backend):
    with pytest.raises(RuntimeError):
        backend.store.get_request("ACR-none")


def test_a_readonly_transaction_never_holds_up_a_writer(backend):
    """Polling (a status command) must not make workers wait: a writer commits while a reader is open."""
    (member,) = backend.add_members(1)
    reader = backend.second_store()
    with reader.transaction(readonly=True):
        assert reader.get_members([member])[member].user is None
        (name,) = insert(backend, [member])
    assert backend.request(name).status == RS.QUEUED


# --- people ------------------------------------------------------------------------------------------------
def test_roles_of_a_user_and_of_an_unknown_one(backend):
    backend.add_user("board@vereniging.test", "Board", (Roles.MANAGER, Roles.MEMBER))
    assert backend.roles("board@vereniging.test") == {Roles.MANAGER, Roles.MEMBER}
    assert backend.roles("nobody@vereniging.test") == set()


# An import asks about thousands of members at once: stores that split the question must ask every part.
MANY_MISSING = [f"MEM-missing{i:04d}" for i in range(1200)]


def test_get_members_returns_the_existing_ones_by_name(backend):
    first, second = backend.add_members(2)
    backend.change_member(second, status="Suspended")
    with backend.store.transaction(readonly=True):
        found = backend.store.get_members([first, *MANY_MISSING, second])
        assert backend.store.get_members([]) == {}
    assert sorted(found) == [first, second]
    view = found[second]
    assert fields(view, "name", "email", "full_name", "status", "user") == (
        second,
        email_of(second),
        full_name_of(second),
        "Suspended",
        None,
    )


def test_lock_member_reads_the_member_and_returns_none_for_a_missing_one(backend):
    (member,) = backend.add_members(1)
    with backend.store.transaction():
        locked = backend.store.lock_member(member)
        assert backend.store.lock_member("MEM-missing") is None
    assert fields(locked, "name", "email", "full_name", "status") == (
        member,
        email_of(member),
        full_name_of(member),
        "Active",
    )


def test_create_user_writes_roles_profile_and_member_in_one_call(backend):
    (member,) = backend.add_members(1)
    with backend.store.transaction():
        name = backend.store.create_user(
            email_of(member), full_name_of(member), (Roles.MEMBER, Roles.MANAGER), "Board", member, ADMIN
        )
        assert backend.store.find_user("missing@vereniging.test") is None
    user = backend.user(email_of(member))
    assert fields(user, "name", "email", "full_name", "member") == (
        name,
        email_of(member),
        full_name_of(member),
        member,
    )
    assert backend.roles(name) == {Roles.MEMBER, Roles.MANAGER}
    assert backend.role_profile(name) == "Board"


def test_create_user_with_a_taken_email_raises_and_writes_nothing(backend):
    """The caller's transaction goes on: what it wrote before and after the refused call is kept."""
    first, second, third = backend.add_members(3)
    backend.add_user(email_of(first), "Eerste", (Roles.MEMBER,))
    with backend.store.transaction():
        kept = backend.store.create_user(email_of(second), "Tweede", (Roles.MEMBER,), None, second, ADMIN)
        with pytest.raises(DuplicateUserError) as refused:
            backend.store.create_user(email_of(first), "Ander", (Roles.MANAGER,), "Board", third, ADMIN)
        later = backend.store.create_user(email_of(third), "Derde", (Roles.MEMBER,), None, third, ADMIN)
    assert email_of(first) not in str(refused.value)  # messages never carry row values
    user = backend.user(email_of(first))
    assert fields(user, "full_name", "member") == ("Eerste", None)
    assert backend.roles(email_of(first)) == {Roles.MEMBER}
    assert backend.role_profile(email_of(first)) is None
    assert backend.user(kept).member == second
    assert backend.user(later).member == third


def test_create_user_for_a_member_that_has_a_user_raises_and_writes_nothing(backend):
    (member,) = backend.add_members(1)
    backend.add_user(email_of(member), full_name_of(member), (Roles.MEMBER,), member=member)
    with backend.store.transaction(), pytest.raises(DuplicateUserError):
        backend.store.create_user("second@vereniging.test", "Tweede", (Roles.MEMBER,), None, member, ADMIN)
    assert backend.user("second@vereniging.test") is None
    assert backend.roles("second@vereniging.test") == set()


def test_grant_roles_adds_the_missing_roles_and_keeps_the_others(backend):
    # A member's user: the only kind the engine grants roles to (Frappe lets no one else's change).
    (member,) = backend.add_members(1)
    backend.add_user("u@vereniging.test", "U", (Roles.MANAGER,), member=member)
    with backend.store.transaction():
        backend.store.grant_roles("u@vereniging.test", (Roles.MEMBER, Roles.MANAGER), "Board", ADMIN)
    assert backend.roles("u@vereniging.test") == {Roles.MANAGER, Roles.MEMBER}
    assert backend.role_profile("u@vereniging.test") == "Board"
    with backend.store.transaction():  # everything held already, no profile given: nothing changes
        backend.store.grant_roles("u@vereniging.test", (Roles.MEMBER,), None, ADMIN)
    assert backend.roles("u@vereniging.test") == {Roles.MANAGER, Roles.MEMBER}
    assert backend.role_profile("u@vereniging.test") == "Board"


def test_link_member_points_both_ways_but_never_moves_a_users_member(backend):
    first, second, third = backend.add_members(3)
    backend.add_user("u@vereniging.test", "U", (Roles.MEMBER,))
    with backend.store.transaction():
        backend.store.link_member(first, "u@vereniging.test", ADMIN)
    assert (backend.member(first).user, backend.user("u@vereniging.test").member) == ("u@vereniging.test", first)
    backend.add_user("v@vereniging.test", "V", (Roles.MEMBER,), member=third)
    with backend.store.transaction():
        backend.store.link_member(second, "v@vereniging.test", ADMIN)
    assert (backend.member(second).user, backend.user("v@vereniging.test").member) == ("v@vereniging.test", third)


# --- requests ----------------------------------------------------------------------------------------------
def test_inserted_requests_read_back_exactly(backend):
    members = backend.add_members(3)
    tracker = new_tracker(backend, TS.PREPARING)
    roles = (Roles.MEMBER, Roles.MANAGER)
    requests = [new_request(m, tracker, 7, roles=roles, role_profile="Board") for m in members]
    with backend.store.transaction():
        names = backend.store.insert_requests(requests, RS.REQUESTED, at(1))
    assert len(set(names)) == 3
    for name, member in zip(names, members, strict=True):
        view = backend.request(name)
        assert sorted(view.roles) == sorted(roles)
        assert view == RequestView(
            name, "Member", member, email_of(member), full_name_of(member), RS.REQUESTED, view.roles, "Board",
            tracker, 7, 0, ADMIN, creation=at(1),
        )  # fmt: skip
    assert backend.request("ACR-missing") is None


def test_open_means_requested_queued_or_processing(backend):
    requested, queued, processing, completed, failed, without = backend.add_members(6)
    insert(backend, [requested], RS.REQUESTED, tracker=new_tracker(backend, TS.PREPARING), batch=1)
    insert(backend, [queued])
    names = insert(backend, [processing, completed, failed])
    for name in names:
        claim(backend, name)
    finish(backend, names[1], RS.COMPLETED)
    finish(backend, names[2], RS.FAILED)
    everyone = [requested, *MANY_MISSING, queued, processing, completed, failed, without]
    assert open_members(backend, everyone) == {requested, queued, processing}


def test_a_second_open_request_for_a_member_is_refused_and_the_rollback_leaves_nothing(backend):
    taken, free, earlier = backend.add_members(3)
    insert(backend, [taken])
    with pytest.raises(ValidationFailed) as refused, backend.store.transaction():
        backend.store.insert_requests([new_request(earlier)], RS.QUEUED, START)
        backend.store.insert_requests([new_request(free), new_request(taken)], RS.QUEUED, START)
    assert taken not in str(refused.value) and email_of(taken) not in str(refused.value)
    assert open_members(backend, [taken, free, earlier]) == {taken}


def test_two_requests_for_one_member_in_one_call_are_refused(backend):
    (member,) = backend.add_members(1)
    with pytest.raises(ValidationFailed), backend.store.transaction():
        backend.store.insert_requests([new_request(member), new_request(member)], RS.QUEUED, START)
    assert open_members(backend, [member]) == set()


def test_a_member_whose_request_finished_may_get_a_new_one(backend):
    done, gave_up = backend.add_members(2)
    names = insert(backend, [done, gave_up])
    for name, status in zip(names, (RS.COMPLETED, RS.FAILED), strict=True):
        claim(backend, name)
        assert finish(backend, name, status)
    again = insert(backend, [done, gave_up])
    assert [backend.request(n).status for n in again] == [RS.QUEUED, RS.QUEUED]


def test_claim_takes_a_due_queued_request_once(backend):
    (member,) = backend.add_members(1)
    (name,) = insert(backend, [member])
    claimed = claim(backend, name, "w1", at(5), lease=timedelta(seconds=30))
    assert fields(claimed, "name", "status", "processed_by", "lease_expires_at") == (name, RS.PROCESSING, "w1", at(35))
    assert backend.request(name) == claimed
    assert claim(backend, name, "w2", at(6)) is None
    assert backend.request(name).processed_by == "w1"


def test_claim_refuses_requests_not_yet_due_unsealed_finished_or_unknown(backend):
    waiting, requested, completed = backend.add_members(3)
    (name,) = insert(backend, [waiting])
    claim(backend, name)
    assert requeue(backend, name, due=at(300))
    assert claim(backend, name, "w2", at(300) - TICK) is None
    assert claim(backend, name, "w2", at(300)).processed_by == "w2"  # due: next_retry_at not after now
    (unsealed,) = insert(backend, [requested], RS.REQUESTED, tracker=new_tracker(backend, TS.PREPARING), batch=1)
    assert claim(backend, unsealed) is None
    (done,) = insert(backend, [completed])
    claim(backend, done)
    finish(backend, done)
    assert claim(backend, done, "w2") is None
    assert claim(backend, "ACR-missing") is None


def test_finish_request_only_while_the_claim_is_held(backend):
    first, second, never = backend.add_members(3)
    one, two, unclaimed = insert(backend, [first, second, never])
    claim(backend, one, "w1")
    claim(backend, two, "w1")
    assert not finish(backend, one, RS.COMPLETED, worker="w2")
    assert finish(backend, one, RS.COMPLETED, worker="w1", now=at(9), created_user=email_of(first))
    assert not finish(backend, one, RS.FAILED, worker="w1")
    assert not finish(backend, unclaimed, RS.COMPLETED, worker=None)
    reason = {"error_category": "permanent", "failure_reason": "no e-mail"}
    assert finish(backend, two, RS.FAILED, worker=None, **reason)  # None: whoever holds it
    done, failed = backend.request(one), backend.request(two)
    assert fields(done, "status", "created_user", "lease_expires_at") == (RS.COMPLETED, email_of(first), None)
    assert fields(failed, "status", "error_category", "failure_reason", "created_user") == (
        RS.FAILED,
        "permanent",
        "no e-mail",
        None,
    )


def test_finish_request_with_lease_expired_before_waits_for_the_lease_to_run_out(backend):
    (member,) = backend.add_members(1)
    (name,) = insert(backend, [member])
    claim(backend, name, "w1", START)  # lease until START + 120 s
    assert not finish(backend, name, RS.FAILED, lease_expired_before=START + LEASE)
    assert finish(backend, name, RS.FAILED, lease_expired_before=START + LEASE + TICK)
    assert backend.request(name).status == RS.FAILED


def test_requeue_request_only_from_the_given_status_and_owner(backend):
    (member,) = backend.add_members(1)
    (name,) = insert(backend, [member])
    claim(backend, name, "w1")
    assert not requeue(backend, name, owner="w2")
    assert not requeue(backend, name, from_status=RS.FAILED, owner=None)
    assert requeue(backend, name, owner="w1", due=at(600), retry_count=2, generation=3, reason="timed out")
    assert not requeue(backend, name, owner="w1")  # once: it is Queued now
    view = backend.request(name)
    assert fields(view, "status", "retry_count", "job_generation", "lease_expires_at") == (RS.QUEUED, 2, 3, None)
    assert fields(view, "error_category", "failure_reason") == ("retryable", "timed out")
    assert open_members(backend, [member]) == {member}
    assert claim(backend, name, "w2", at(600) - TICK) is None  # next_retry_at was stored


def test_requeue_request_with_lease_expired_before_leaves_a_running_lease_alone(backend):
    (member,) = backend.add_members(1)
    (name,) = insert(backend, [member])
    claim(backend, name, "w1", START)
    assert not requeue(backend, name, expired_before=START + LEASE)
    assert backend.request(name).status == RS.PROCESSING
    assert requeue(backend, name, expired_before=START + LEASE + TICK)
    assert backend.request(name).status == RS.QUEUED


def test_a_failed_request_requeued_is_open_and_due_again(backend):
    (member,) = backend.add_members(1)
    (name,) = insert(backend, [member])
    claim(backend, name)
    finish(backend, name, RS.FAILED, error_category="permanent", failure_reason="no e-mail")
    assert open_members(backend, [member]) == set()
    assert requeue(backend, name, RS.FAILED, None, retry_count=0, generation=1, category=None, reason=None)
    view = backend.request(name)
    assert fields(view, "status", "retry_count", "job_generation", "error_category", "failure_reason") == (
        RS.QUEUED,
        0,
        1,
        None,
        None,
    )
    assert open_members(backend, [member]) == {member}
    assert claim(backend, name, "w2", START).status == RS.PROCESSING


def test_requeue_that_would_open_a_second_request_raises_and_the_transaction_goes_on(backend):
    """The retry of many failed requests skips the one that collides and keeps the others."""
    busy, free = backend.add_members(2)
    old_busy, old_free = insert(backend, [busy, free])
    for name in (old_busy, old_free):
        claim(backend, name)
        finish(backend, name, RS.FAILED, failure_reason="no e-mail")
    (newer,) = insert(backend, [busy])
    with backend.store.transaction():
        with pytest.raises(ValidationFailed):
            backend.store.requeue_request(old_busy, RS.FAILED, None, 0, 1, None, None, None)
        assert backend.store.requeue_request(old_free, RS.FAILED, None, 0, 1, None, None, None)
    assert (backend.request(old_busy).status, backend.request(old_busy).failure_reason) == (RS.FAILED, "no e-mail")
    assert (backend.request(newer).status, backend.request(old_free).status) == (RS.QUEUED, RS.QUEUED)


def test_stale_requests_are_processing_ones_whose_lease_ran_out_before_now(backend):
    members = backend.add_members(4)
    early, exact, late, _never_claimed = insert(backend, members)
    claim(backend, early, "w1", START, lease=timedelta(seconds=10))
    claim(backend, exact, "w2", START, lease=timedelta(seconds=20))
    claim(backend, late, "w3", START, lease=timedelta(seconds=30))
    with backend.store.transaction(readonly=True):
        stale = backend.store.stale_requests(at(20))
    assert [(r.name, r.processed_by, r.status) for r in stale] == [(early, "w1", RS.PROCESSING)]


def test_batch_requests_are_the_queued_requests_of_one_batch(backend):
    members = backend.add_members(7)
    tracker, other = new_tracker(backend), new_tracker(backend)
    ready, waiting, running, done = insert(backend, members[:4], tracker=tracker, batch=1)
    (next_batch,) = insert(backend, members[4:5], tracker=tracker, batch=2)
    insert(backend, members[5:6], tracker=other, batch=1)
    insert(backend, members[6:], RS.REQUESTED, tracker=new_tracker(backend, TS.PREPARING), batch=1)
    for name in (waiting, running, done):
        claim(backend, name)
    requeue(backend, waiting, due=at(900))
    finish(backend, done)
    with backend.store.transaction(readonly=True):
        first = backend.store.batch_requests(tracker, 1)
        assert backend.store.batch_requests(tracker, 1) == first  # stable
        assert backend.store.batch_requests(tracker, 2) == [next_batch]
        assert backend.store.batch_requests(tracker, 3) == []
    assert sorted(first) == sorted([ready, waiting])


def test_due_batches_oldest_first_without_unsealed_waiting_running_or_individual_work(backend):
    members = backend.add_members(8)
    a, b = new_tracker(backend), new_tracker(backend)
    insert(backend, members[0:1], now=at(0), tracker=a, batch=2)
    insert(backend, members[1:2], now=at(1), tracker=b, batch=1)
    insert(backend, members[2:4], now=at(2), tracker=a, batch=1)
    (running,) = insert(backend, members[4:5], now=at(0), tracker=a, batch=3)
    (waiting,) = insert(backend, members[5:6], now=at(-1), tracker=b, batch=2)
    insert(backend, members[6:7], RS.REQUESTED, at(0), tracker=new_tracker(backend, TS.PREPARING), batch=1)
    insert(backend, members[7:8], now=at(0))  # individual
    claim(backend, running)
    claim(backend, waiting)
    requeue(backend, waiting, due=at(1000), generation=4)
    with backend.store.transaction(readonly=True):
        assert backend.store.due_batches(at(10)) == [(a, 2, 0), (b, 1, 0), (a, 1, 0)]
        assert backend.store.due_batches(at(10), limit=2) == [(a, 2, 0), (b, 1, 0)]
        assert backend.store.due_batches(at(1000)) == [(b, 2, 4), (a, 2, 0), (b, 1, 0), (a, 1, 0)]


def test_defer_batch_makes_its_queued_requests_due_later_and_never_earlier(backend):
    members = backend.add_members(5)
    tracker = new_tracker(backend)
    ready, later, running = insert(backend, members[:3], tracker=tracker, batch=1)
    (other_batch,) = insert(backend, members[3:4], tracker=tracker, batch=2)
    (individual,) = insert(backend, members[4:5])
    for name in (later, running):
        claim(backend, name)
    requeue(backend, later, due=at(900), retry_count=1)
    with backend.store.transaction():
        assert backend.store.defer_batch(tracker, 1, at(60)) == 1  # the due one; a later due stays later
    assert [backend.request(n).status for n in (ready, later, running)] == [RS.QUEUED, RS.QUEUED, RS.PROCESSING]
    assert claim(backend, ready, "w2", at(60) - TICK) is None
    assert backend.request(later).retry_count == 1  # retries untouched
    with backend.store.transaction(readonly=True):
        assert backend.store.due_batches(at(59)) == [(tracker, 2, 0)]
        assert backend.store.due_individual_requests(at(59)) == [(individual, 0)]
        assert (tracker, 1, 0) in backend.store.due_batches(at(60))
    assert claim(backend, other_batch, "w2", START).status == RS.PROCESSING
    assert claim(backend, ready, "w2", at(60)).status == RS.PROCESSING


def test_individual_requests_running_are_processing_ones_outside_trackers_with_a_live_lease(backend):
    members = backend.add_members(5)
    running, expired, queued = insert(backend, members[:3])
    (in_batch,) = insert(backend, members[3:4], tracker=new_tracker(backend), batch=1)
    (finished,) = insert(backend, members[4:5])
    claim(backend, running, "w1", at(100))
    claim(backend, expired, "w1", at(0))
    claim(backend, in_batch, "w1", at(100))
    claim(backend, finished, "w1", at(100))
    finish(backend, finished, now=at(100))
    with backend.store.transaction(readonly=True):
        assert backend.store.individual_requests_running(at(100)) == 2  # running, and expired's lease runs yet
        assert backend.store.individual_requests_running(at(0) + LEASE + TICK) == 1  # expired's ran out
        assert backend.store.individual_requests_running(at(100) + LEASE + TICK) == 0
    assert backend.request(queued).status == RS.QUEUED


def test_due_individual_requests_oldest_first_and_only_outside_trackers(backend):
    members = backend.add_members(5)
    (second,) = insert(backend, members[0:1], now=at(2))
    (first,) = insert(backend, members[1:2], now=at(1))
    (running,) = insert(backend, members[2:3], now=at(0))
    (waiting,) = insert(backend, members[3:4], now=at(0))
    insert(backend, members[4:5], now=at(0), tracker=new_tracker(backend), batch=1)
    claim(backend, running)
    claim(backend, waiting)
    requeue(backend, waiting, due=at(500), generation=2)
    with backend.store.transaction(readonly=True):
        assert backend.store.due_individual_requests(at(10)) == [(first, 0), (second, 0)]
        assert backend.store.due_individual_requests(at(10), limit=1) == [(first, 0)]
        assert backend.store.due_individual_requests(at(500)) == [(waiting, 2), (first, 0), (second, 0)]


def test_next_generation_is_won_once_and_raises_only_queued_requests(backend):
    members = backend.add_members(3)
    tracker = new_tracker(backend)
    queued, running = insert(backend, members[:2], tracker=tracker, batch=1)
    (single,) = insert(backend, members[2:])
    claim(backend, running)
    with backend.store.transaction():
        assert not backend.store.next_generation(tracker, 1, 1)  # not at that generation
        assert backend.store.next_generation(tracker, 1, 0)
        assert not backend.store.next_generation(tracker, 1, 0)  # the second caller loses
        assert backend.store.next_generation(None, single, 0)
        assert not backend.store.next_generation(None, single, 0)
    assert [backend.request(n).job_generation for n in (queued, running, single)] == [1, 0, 1]


def test_failed_requests_of_one_tracker_or_of_all_oldest_first(backend):
    members = backend.add_members(4)
    mine, other = new_tracker(backend), new_tracker(backend)
    (third,) = insert(backend, members[0:1], now=at(3))  # individual
    (first,) = insert(backend, members[1:2], now=at(1), tracker=mine, batch=1)
    (second,) = insert(backend, members[2:3], now=at(2), tracker=other, batch=1)
    (completed,) = insert(backend, members[3:4], now=at(0), tracker=mine, batch=1)
    for name in (third, second, first, completed):  # finished newest first: order is by age
        claim(backend, name)
        finish(backend, name, RS.COMPLETED if name == completed else RS.FAILED)
    with backend.store.transaction(readonly=True):
        assert [r.name for r in backend.store.failed_requests(mine)] == [first]
        assert [r.name for r in backend.store.failed_requests(None)] == [first, second, third]


def test_request_counts_say_where_a_trackers_open_requests_are(backend):
    members = backend.add_members(10)
    tracker = new_tracker(backend)
    insert(backend, members[0:1], RS.REQUESTED, tracker=tracker, batch=1)
    _due, due_again, soon, later, running, abandoned, done, failed = insert(
        backend, members[1:9], tracker=tracker, batch=1
    )
    insert(backend, members[9:], tracker=new_tracker(backend), batch=1)  # another tracker's
    for name in (due_again, soon, later, running, abandoned, done, failed):
        claim(backend, name, now=at(50) if name == running else START)
    requeue(backend, due_again, due=at(99))
    requeue(backend, soon, due=at(400))
    requeue(backend, later, due=at(500))
    finish(backend, done)
    finish(backend, failed, RS.FAILED)
    with backend.store.transaction(readonly=True):
        counts = backend.store.request_counts(tracker, at(130))
    assert counts == RequestCounts(
        requested=1, due=2, waiting=2, processing=1, abandoned=1, next_retry_at=at(400), due_since=at(99)
    )


def test_queue_requested_moves_one_trackers_requested_requests_once(backend):
    members = backend.add_members(4)
    mine, other = new_tracker(backend, TS.PREPARING), new_tracker(backend, TS.PREPARING)
    names = insert(backend, members[:3], RS.REQUESTED, tracker=mine, batch=1)
    (theirs,) = insert(backend, members[3:], RS.REQUESTED, tracker=other, batch=1)
    with backend.store.transaction():
        moved = backend.store.queue_requested(mine)
        assert backend.store.queue_requested(mine) == []
    assert sorted(moved) == sorted(names)
    assert [backend.request(n).status for n in names] == [RS.QUEUED] * 3
    assert backend.request(theirs).status == RS.REQUESTED


# --- trackers ----------------------------------------------------------------------------------------------
def test_an_inserted_tracker_reads_back_exactly(backend):
    spec = NewTracker("Account Creation", "IMP-7", 5, 3, 2, "Low", ADMIN)
    with backend.store.transaction():
        name = backend.store.insert_tracker(spec, TS.PREPARING, at(1), at(121))
        assert backend.store.get_tracker("BOT-missing") is None
    view = backend.tracker(name)
    expected = TrackerView(
        name, "Account Creation", "IMP-7", TS.PREPARING, 5, 0, 0, 0, 0, 3, 2, ADMIN, None, None, None, view.modified
    )
    assert view == expected


def test_renew_preparation_extends_the_lease_until_the_tracker_is_sealed(backend):
    tracker = new_tracker(backend, TS.PREPARING, lease_until=at(120))
    with backend.store.transaction():
        assert backend.store.preparing_trackers(at(121)) == [tracker]
        assert backend.store.renew_preparation(tracker, at(1), at(300))
        assert backend.store.get_tracker(tracker).modified == at(1)
        assert backend.store.preparing_trackers(at(121)) == []
        assert backend.store.preparing_trackers(at(300)) == []  # ran out *before* the time given
        assert backend.store.preparing_trackers(at(301)) == [tracker]
        assert backend.store.seal_tracker(tracker, TS.QUEUED, 4, at(2))
        assert not backend.store.renew_preparation(tracker, at(2), at(900))
        assert backend.store.preparing_trackers(at(901)) == []


def test_seal_tracker_sets_the_real_total_once(backend):
    tracker = new_tracker(backend, TS.PREPARING, total=5)
    with backend.store.transaction():
        assert backend.store.seal_tracker(tracker, TS.QUEUED, 3, at(7))
        assert not backend.store.seal_tracker(tracker, TS.CANCELLED, 0, at(8))
    view = backend.tracker(tracker)
    assert fields(view, "status", "total_records", "completed_at", "error_summary") == (TS.QUEUED, 3, None, None)
    assert view.modified == at(7)  # its status moved


def test_seal_tracker_as_finished_sets_completed_at_and_its_summary(backend):
    tracker = new_tracker(backend, TS.PREPARING, total=5)
    with backend.store.transaction():
        assert backend.store.seal_tracker(tracker, TS.CANCELLED, 0, at(7), "no member could be requested")
    view = backend.tracker(tracker)
    assert fields(view, "status", "total_records", "completed_at", "error_summary") == (
        TS.CANCELLED,
        0,
        at(7),
        "no member could be requested",
    )


def test_seal_tracker_with_lease_expired_before_leaves_a_live_preparation_alone(backend):
    tracker = new_tracker(backend, TS.PREPARING, lease_until=at(120))
    with backend.store.transaction():
        assert not backend.store.seal_tracker(tracker, TS.QUEUED, 2, at(120), "stopped", lease_expired_before=at(120))
    assert backend.tracker(tracker).status == TS.PREPARING
    with backend.store.transaction():
        assert backend.store.seal_tracker(tracker, TS.QUEUED, 2, at(121), "stopped", lease_expired_before=at(121))
    view = backend.tracker(tracker)
    assert fields(view, "status", "total_records", "error_summary") == (TS.QUEUED, 2, "stopped")


def test_start_tracker_starts_once_and_never_lowers_current_batch(backend):
    tracker = new_tracker(backend, TS.QUEUED)
    with backend.store.transaction():
        assert backend.store.start_tracker(tracker, 2, at(5))
        assert not backend.store.start_tracker(tracker, 1, at(6))
    view = backend.tracker(tracker)
    assert fields(view, "status", "started_at", "current_batch", "modified") == (TS.PROCESSING, at(5), 2, at(5))
    with backend.store.transaction():
        assert not backend.store.start_tracker(tracker, 3, at(7))
    view = backend.tracker(tracker)
    assert fields(view, "status", "started_at", "current_batch") == (TS.PROCESSING, at(5), 3)


def test_add_to_tracker_adds_and_moves_modified(backend):
    tracker = new_tracker(backend, TS.PROCESSING)
    with backend.store.transaction():
        backend.store.add_to_tracker(tracker, 1, 1, 0, at(3))
        backend.store.add_to_tracker(tracker, 2, 0, 2, at(4))
    with backend.store.transaction():
        backend.store.add_to_tracker(tracker, 1, 1, 0, at(5))
    view = backend.tracker(tracker)
    assert fields(view, "processed_records", "successful_records", "failed_records", "modified") == (4, 2, 2, at(5))


def test_finish_tracker_only_when_all_processed_with_the_counts_seen_and_once(backend):
    tracker = new_tracker(backend, TS.PROCESSING, total=3)
    with backend.store.transaction():
        backend.store.add_to_tracker(tracker, 2, 2, 0, at(1))
        assert not backend.store.finish_tracker(tracker, TS.COMPLETED, 2, 0, at(2), None)  # one to go
        backend.store.add_to_tracker(tracker, 1, 0, 1, at(3))
        assert not backend.store.finish_tracker(tracker, TS.COMPLETED, 2, 0, at(4), None)  # counts moved
        assert backend.store.finish_tracker(tracker, TS.COMPLETED_WITH_ERRORS, 2, 1, at(5), "1 x no e-mail")
        assert not backend.store.finish_tracker(tracker, TS.COMPLETED_WITH_ERRORS, 2, 1, at(6), None)
    view = backend.tracker(tracker)
    assert fields(view, "status", "completed_at", "error_summary") == (TS.COMPLETED_WITH_ERRORS, at(5), "1 x no e-mail")
    assert view.modified == at(5)


def test_finish_tracker_refuses_a_tracker_that_is_not_processing(backend):
    tracker = new_tracker(backend, TS.QUEUED, total=1)
    with backend.store.transaction():
        backend.store.add_to_tracker(tracker, 1, 1, 0, at(1))
        assert not backend.store.finish_tracker(tracker, TS.COMPLETED, 1, 0, at(2), None)
    assert backend.tracker(tracker).status == TS.QUEUED


def test_unfinished_trackers_are_processing_ones_with_every_record_processed(backend):
    stuck, running, done, queued = (
        new_tracker(backend, status, total=2) for status in (TS.PROCESSING,) * 3 + (TS.QUEUED,)
    )
    with backend.store.transaction():
        for tracker in (stuck, done, queued):
            backend.store.add_to_tracker(tracker, 2, 2, 0, at(1))
        backend.store.add_to_tracker(running, 1, 1, 0, at(1))
        assert backend.store.finish_tracker(done, TS.COMPLETED, 2, 0, at(2), None)
        assert backend.store.unfinished_trackers() == [stuck]


def test_reopen_tracker_takes_the_retried_records_back(backend):
    tracker = new_tracker(backend, TS.PROCESSING, total=3)
    with backend.store.transaction():
        backend.store.add_to_tracker(tracker, 3, 1, 2, at(1))
        assert backend.store.finish_tracker(tracker, TS.COMPLETED_WITH_ERRORS, 1, 2, at(2), "2 x no e-mail")
        assert not backend.store.reopen_tracker(tracker, 2, TS.PROCESSING, at(3))  # not in that status
        assert backend.store.reopen_tracker(tracker, 2, TS.COMPLETED_WITH_ERRORS, at(3))
        assert not backend.store.reopen_tracker(tracker, 2, TS.COMPLETED_WITH_ERRORS, at(4))  # only once
    view = backend.tracker(tracker)
    assert fields(view, "status", "processed_records", "successful_records", "failed_records") == (
        TS.PROCESSING,
        1,
        1,
        0,
    )
    assert fields(view, "completed_at", "error_summary", "modified") == (None, None, at(3))


# --- batch slots -------------------------------------------------------------------------------------------
def take(backend, slot, holder, now, until, pool="bulk") -> bool:
    with backend.store.transaction():
        return backend.store.take_slot(pool, slot, holder, now, until)


def held(backend, now, pool="bulk") -> int:
    with backend.store.transaction(readonly=True):
        return backend.store.held_slots(pool, now)


def test_a_slot_never_used_goes_to_its_first_taker_only(backend):
    assert take(backend, 1, "batch-a", at(0), at(120))
    assert not take(backend, 1, "batch-b", at(1), at(121))
    assert take(backend, 1, "batch-b", at(1), at(121), pool="other")  # pools are separate
    assert take(backend, 2, "batch-b", at(1), at(121))
    assert held(backend, at(2)) == 2


def test_a_slot_whose_lease_ran_out_can_be_taken_over(backend):
    assert take(backend, 1, "batch-a", at(0), at(120))
    assert not take(backend, 1, "batch-b", at(120), at(240))  # ran out *before* now: not yet
    assert take(backend, 1, "batch-b", at(120) + TICK, at(240))
    with backend.store.transaction():
        assert not backend.store.renew_slot("bulk", 1, "batch-a", at(300))  # lost
        assert not backend.store.release_slot("bulk", 1, "batch-a")
        assert backend.store.renew_slot("bulk", 1, "batch-b", at(400))
    assert not take(backend, 1, "batch-c", at(300), at(420))  # the renewal holds


def test_a_released_slot_is_free_and_only_its_holder_releases_it(backend):
    assert take(backend, 1, "batch-a", at(0), at(120))
    with backend.store.transaction():
        assert not backend.store.release_slot("bulk", 1, "batch-b")
    assert held(backend, at(1)) == 1
    with backend.store.transaction():
        assert backend.store.release_slot("bulk", 1, "batch-a")
        assert not backend.store.release_slot("bulk", 1, "batch-a")
    assert held(backend, at(1)) == 0
    assert take(backend, 1, "batch-b", at(2), at(122))


def test_held_slots_counts_leases_running_past_now_in_one_pool(backend):
    assert take(backend, 1, "batch-a", at(0), at(100))
    assert take(backend, 2, "batch-b", at(0), at(50))
    assert take(backend, 3, "batch-c", at(0), at(100))
    assert take(backend, 1, "batch-d", at(0), at(100), pool="other")
    with backend.store.transaction():
        backend.store.release_slot("bulk", 3, "batch-c")
    assert (held(backend, at(10)), held(backend, at(60)), held(backend, at(101))) == (2, 1, 0)
    assert held(backend, at(10), pool="other") == 1


# --- audit -------------------------------------------------------------------------------------------------
def test_audit_entries_are_appended_and_kept(backend):
    first = AuditEntry("Account Creation Request", "ACR-1", None, RS.QUEUED, ADMIN, "member approved")
    second = AuditEntry("Account Creation Request", "ACR-1", RS.QUEUED, RS.PROCESSING, ADMIN, "picked up", "w1")
    other = AuditEntry("Bulk Operation Tracker", "BOT-1", None, TS.PREPARING, ADMIN, "created")
    with backend.store.transaction():
        backend.store.add_audit([first], at(1))
        backend.store.add_audit([], at(2))
    with backend.store.transaction():
        backend.store.add_audit([second, other], at(3))
    assert backend.audit_trail("ACR-1") == [(first, at(1)), (second, at(3))]
    assert backend.audit_trail("BOT-1") == [(other, at(3))]
