"""The engine on every store, with races played out step by step: two Hosts (workers) on one store, a clock
the test moves, and a store proxy that lets another party act at a chosen moment. No sleeping, no worker
processes: every interleaving happens in the same order on every run."""

from contextlib import contextmanager, suppress
from dataclasses import replace
from datetime import timedelta

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.contract.conftest import ADMIN, email_of, fields, full_name_of
from verenigingen.accounts.bulk import process_bulk_account_creation_batch, queue_bulk_account_creation_for_members
from verenigingen.accounts.config import DEFAULT_SETTINGS
from verenigingen.accounts.eligibility import Refusal
from verenigingen.accounts.errors import QueueingInterrupted, RetryableError
from verenigingen.accounts.individual import process_individual_request, queue_account_creation_for_member
from verenigingen.accounts.manager import AccountCreationManager
from verenigingen.accounts.ports import batch_job_id, individual_job_id
from verenigingen.accounts.retry import retry_failed_requests
from verenigingen.accounts.states import RequestStatus as RS
from verenigingen.accounts.states import Roles
from verenigingen.accounts.states import TrackerStatus as TS
from verenigingen.accounts.sweeper import sweep
from verenigingen.accounts.trackers import seal_tracker

LEASE = DEFAULT_SETTINGS.lease_seconds  # the backend's settings keep the default times
FIRST_BACKOFF = DEFAULT_SETTINGS.backoff(1)


class Interrupted:
    """The store as one worker sees it, with another party's step slipped in: after the transaction that
    made a given call has ended, and before this worker's next transaction begins. That is where two
    workers interleave on every store (SQLite has one writer: nothing runs inside another's write)."""

    def __init__(self, store):
        self._store, self._hooks, self._due = store, {}, []

    def after(self, method: str, step) -> None:
        """Once: run ``step()`` when the transaction that calls ``method`` has ended."""
        self._hooks[method] = step

    def __getattr__(self, name):
        attribute = getattr(self._store, name)
        if name not in self._hooks:
            return attribute

        def call(*args, **kwargs):
            self._due.append(self._hooks.pop(name))
            return attribute(*args, **kwargs)

        return call

    @contextmanager
    def transaction(self, readonly: bool = False):
        with self._store.transaction(readonly):
            yield
        while self._due:
            self._due.pop(0)()


def approve(backend, member: str) -> str:
    return queue_account_creation_for_member(backend.host("approver"), ADMIN, member)


def assert_each_member_has_its_own_user(backend, members):
    for member in members:
        assert backend.member(member).user == email_of(member), member
        assert backend.user(email_of(member)).member == member, member
        assert backend.roles(email_of(member)) == {Roles.MEMBER}, member


def trail(backend, docname) -> list[tuple]:
    return [(entry.from_status, entry.to_status, entry.worker) for entry, _ in backend.audit_trail(docname)]


# --- claims, leases and the sweeper ------------------------------------------------------------------------
def test_two_workers_claiming_one_request_only_one_runs_it(backend):
    (member,) = backend.add_members(1)
    name = approve(backend, member)
    store = Interrupted(backend.store)
    second = []
    store.after("claim_request", lambda: second.append(process_individual_request(backend.host("w2"), name)))
    assert process_individual_request(backend.host("w1", store=store), name) == "completed"
    assert second == ["skipped"]
    view = backend.request(name)
    assert fields(view, "status", "processed_by", "created_user") == (RS.COMPLETED, "w1", email_of(member))
    assert trail(backend, name) == [
        (None, RS.QUEUED, None),
        (RS.QUEUED, RS.PROCESSING, "w1"),  # picked up once: w2's claim changed nothing
        (RS.PROCESSING, RS.COMPLETED, "w1"),
    ]
    assert_each_member_has_its_own_user(backend, [member])


def test_a_worker_whose_lease_ran_out_cannot_finish_and_the_sweeper_recovers(backend):
    """The sweeper saw the lease run out while the slow worker was still busy: the worker's finish is
    refused (a claim never outlives its lease, nor the batch slot it ran under), its account is rolled
    back, and the sweeper's recovery turns the request into a retry."""
    (member,) = backend.add_members(1)
    name = approve(backend, member)
    sweeper, seen = backend.host("sweeper"), []

    def sweeper_reads_stale_requests():
        backend.clock.advance(LEASE + 1)
        with backend.store.transaction(readonly=True):
            seen.extend(backend.store.stale_requests(backend.clock()))

    store = Interrupted(backend.store)
    store.after("claim_request", sweeper_reads_stale_requests)
    assert process_individual_request(backend.host("w1", store=store), name) == "skipped"
    assert [(r.name, r.processed_by) for r in seen] == [(name, "w1")]
    assert backend.user(email_of(member)) is None
    lost = RetryableError("the worker processing it stopped")
    manager = AccountCreationManager(sweeper)
    assert manager.record_failure(seen[0], lost, "w1", expired_before=backend.clock()) == "retry"
    view = backend.request(name)
    assert fields(view, "status", "retry_count", "job_generation", "created_user") == (RS.QUEUED, 1, 1, None)


def test_a_sweeper_that_recovers_first_rolls_the_late_workers_account_back(backend):
    (member,) = backend.add_members(1)
    name = approve(backend, member)
    reports = []

    def sweeper_recovers():
        backend.clock.advance(LEASE + 1)
        reports.append(sweep(backend.host("sweeper")))

    store = Interrupted(backend.store)
    store.after("claim_request", sweeper_recovers)
    assert process_individual_request(backend.host("w1", store=store), name) == "skipped"
    assert [r.recovered for r in reports] == [1]
    view = backend.request(name)
    assert fields(view, "status", "retry_count", "job_generation", "created_user") == (RS.QUEUED, 1, 1, None)
    assert fields(view, "error_category", "failure_reason") == ("retryable", "the worker processing it stopped")
    assert backend.user(email_of(member)) is None
    assert backend.roles(email_of(member)) == set()
    assert backend.member(member).user is None
    backend.clock.advance(FIRST_BACKOFF)
    assert process_individual_request(backend.host("w2"), name) == "completed"
    assert_each_member_has_its_own_user(backend, [member])


def test_a_stalled_sweeper_never_requeues_a_claim_taken_afresh(backend):
    """A sweep read W1's expired claim, then stalled; meanwhile another sweep recovered it and W2 claimed
    it again. The stalled sweep's recovery (owner W1, expired before its now) must change nothing."""
    (member,) = backend.add_members(1)
    name = approve(backend, member)
    now = backend.clock()
    with backend.store.transaction():  # W1 claims, then its process dies
        backend.store.claim_request(name, "w1", now, now + timedelta(seconds=LEASE))
    stalled_now = backend.clock.advance(LEASE + 1)
    with backend.store.transaction(readonly=True):
        (stale,) = backend.store.stale_requests(stalled_now)
    assert sweep(backend.host("sweeper-2")).recovered == 1
    backend.clock.advance(FIRST_BACKOFF)
    late = []

    def stalled_sweeper_resumes():
        lost = RetryableError("the worker processing it stopped")
        manager = AccountCreationManager(backend.host("sweeper-1"))
        late.append(manager.record_failure(stale, lost, stale.processed_by, expired_before=stalled_now))
        late.append(backend.request(name))

    store = Interrupted(backend.store)
    store.after("claim_request", stalled_sweeper_resumes)
    assert process_individual_request(backend.host("w2", store=store), name) == "completed"
    assert late[0] == "skipped"
    assert fields(late[1], "status", "processed_by", "retry_count") == (RS.PROCESSING, "w2", 1)
    view = backend.request(name)
    assert fields(view, "status", "retry_count", "created_user") == (RS.COMPLETED, 1, email_of(member))
    assert_each_member_has_its_own_user(backend, [member])


def test_a_preparation_sealed_by_the_sweeper_stops_its_late_writer(backend):
    """The process queueing a bulk operation stalled past its lease: the sweep seals what was written
    (nothing: Cancelled), and the writer, resuming, stops instead of adding requests nobody will run."""
    members, sealed = backend.add_members(3), []

    def sweeper_seals():
        now = backend.clock.advance(LEASE + 1)
        with backend.store.transaction(readonly=True):
            sealed.extend(backend.store.preparing_trackers(now))
        assert sweep(backend.host("sweeper")).sealed_trackers == 1

    store = Interrupted(backend.store)
    store.after("insert_tracker", sweeper_seals)
    with pytest.raises(QueueingInterrupted):
        queue_bulk_account_creation_for_members(backend.host("w1", store=store), ADMIN, members)
    (tracker,) = sealed
    view = backend.tracker(tracker)
    assert fields(view, "status", "total_records", "completed_at", "error_summary") == (
        TS.CANCELLED,
        0,
        backend.clock(),
        "queueing stopped after 0 of 3 members; the others got no request: queue them again",
    )
    with backend.store.transaction(readonly=True):
        assert backend.store.members_with_open_request(members) == set()
        assert backend.store.due_batches(backend.clock()) == []


def test_a_sweeper_that_finds_the_preparation_renewed_backs_off_entirely(backend):
    """The sweep saw a preparation's lease run out (seal_interrupted_preparations, step by step); before it
    sealed, the slow writer came back and renewed it with its next chunk. The sweep must leave it alone:
    requests of a Preparing tracker stay invisible to workers, and the writer's seal counts every request."""
    members = backend.add_members(4)
    sweeper, store, seen = backend.host("sweeper"), Interrupted(backend.store), {}

    def sweeper_finds_it_stalled():
        seen["now"] = backend.clock.advance(LEASE + 1)
        with backend.store.transaction(readonly=True):
            seen["stalled"] = backend.store.preparing_trackers(seen["now"])
        store.after("insert_requests", sweeper_seals_too_late)  # the writer's next chunk renews first

    def sweeper_seals_too_late():
        (tracker,) = seen["stalled"]
        seen["sealed"] = seal_tracker(sweeper, tracker, ADMIN, expired_before=seen["now"])
        with backend.store.transaction(readonly=True):
            seen["while preparing"] = (
                backend.store.get_tracker(tracker).status,
                backend.store.due_batches(seen["now"]),
            )

    store.after("insert_requests", sweeper_finds_it_stalled)
    host = backend.host("w1", store=store)
    host.settings = replace(host.settings, request_chunk_size=2)
    queued = queue_bulk_account_creation_for_members(host, ADMIN, members, batch_size=2)
    assert seen["stalled"] == [queued.tracker]
    assert seen["sealed"] is None  # renewed meanwhile: not the sweeper's to seal
    assert seen["while preparing"] == (TS.PREPARING, [])  # no worker may see its requests yet
    view = backend.tracker(queued.tracker)
    assert (queued.requested, view.status, view.total_records) == (4, TS.QUEUED, 4)


# --- bulk operations meeting other work --------------------------------------------------------------------
def test_two_bulk_operations_over_the_same_members_request_each_member_once(backend):
    members = backend.add_members(9)
    host = backend.host("w1")
    first = queue_bulk_account_creation_for_members(host, ADMIN, members[:6], batch_size=3)
    assert fields(first, "requested", "total_batches") == (6, 2)
    assert process_bulk_account_creation_batch(host, first.tracker, 1).completed == 3
    second = queue_bulk_account_creation_for_members(host, ADMIN, members, batch_size=3)
    assert [(r.member, r.code) for r in second.validation_errors] == [(m, "has_user") for m in members[:3]] + [
        (m, "open_request") for m in members[3:6]
    ]
    assert fields(second, "requested", "total_batches") == (3, 1)
    assert process_bulk_account_creation_batch(host, second.tracker, 1).completed == 3
    assert process_bulk_account_creation_batch(host, first.tracker, 2).completed == 3
    for queued, total in ((first, 6), (second, 3)):
        view = backend.tracker(queued.tracker)
        assert fields(view, "status", "total_records", "processed_records", "successful_records") == (
            TS.COMPLETED,
            total,
            total,
            total,
        )
    assert first.requested + second.requested == len(members)
    assert_each_member_has_its_own_user(backend, members)


def test_a_retry_during_a_run_keeps_the_counters_exact(backend):
    members = backend.add_members(4)
    host = backend.host("w1")
    queued = queue_bulk_account_creation_for_members(host, ADMIN, members, batch_size=2)
    tracker = queued.tracker
    backend.change_member(members[1], email=None)  # an import dropped the address
    outcome = process_bulk_account_creation_batch(host, tracker, 1)
    assert fields(outcome, "completed", "failed", "tracker_completed") == (1, 1, False)
    view = backend.tracker(tracker)
    assert fields(view, "status", "processed_records", "successful_records", "failed_records") == (
        TS.PROCESSING,
        2,
        1,
        1,
    )
    backend.change_member(members[1], email=email_of(members[1]))  # fixed; the administrator retries
    report = retry_failed_requests(host, ADMIN, tracker)
    assert fields(report, "retried", "refused") == (1, [])
    view = backend.tracker(tracker)
    assert fields(view, "status", "processed_records", "successful_records", "failed_records") == (
        TS.PROCESSING,
        1,
        1,
        0,
    )
    with backend.store.transaction(readonly=True):
        assert backend.store.due_batches(backend.clock()) == [(tracker, 1, 1), (tracker, 2, 0)]
    assert process_bulk_account_creation_batch(host, tracker, 2).completed == 2
    assert backend.tracker(tracker).status == TS.PROCESSING
    outcome = process_bulk_account_creation_batch(host, tracker, 1)
    assert fields(outcome, "completed", "failed", "tracker_completed") == (1, 0, True)
    view = backend.tracker(tracker)
    assert fields(view, "status", "processed_records", "successful_records", "failed_records") == (
        TS.COMPLETED,
        4,
        4,
        0,
    )
    assert view.error_summary is None
    assert [(before, after) for before, after, _ in trail(backend, tracker)] == [
        (None, TS.PREPARING),
        (TS.PREPARING, TS.QUEUED),
        (TS.QUEUED, TS.PROCESSING),
        (TS.PROCESSING, TS.COMPLETED),
    ]
    assert_each_member_has_its_own_user(backend, members)


def test_a_chunk_that_collides_with_an_approval_made_meanwhile_refuses_only_that_member(backend):
    members = backend.add_members(4)
    store, approved = Interrupted(backend.store), []
    # Between the tracker's creation and its first chunk of requests, a manager approves one member.
    store.after("insert_tracker", lambda: approved.append(approve(backend, members[1])))
    host = backend.host("w1", store=store)
    host.settings = replace(host.settings, request_chunk_size=2)
    queued = queue_bulk_account_creation_for_members(host, ADMIN, members, batch_size=2)
    assert len(approved) == 1
    assert queued.validation_errors == [Refusal(members[1], "open_request", "already has an open account request")]
    assert queued.requested == 3
    view = backend.tracker(queued.tracker)
    assert fields(view, "status", "total_records") == (TS.QUEUED, 3)
    assert process_bulk_account_creation_batch(host, queued.tracker, 1).completed == 1
    outcome = process_bulk_account_creation_batch(host, queued.tracker, 2)
    assert fields(outcome, "completed", "tracker_completed") == (2, True)
    view = backend.tracker(queued.tracker)
    assert fields(view, "status", "processed_records", "successful_records") == (TS.COMPLETED, 3, 3)
    approval = backend.request(approved[0])
    assert fields(approval, "status", "tracker") == (RS.QUEUED, None)
    assert process_individual_request(backend.host("w2"), approved[0]) == "completed"
    assert_each_member_has_its_own_user(backend, members)


# --- the queue unreachable when work is queued ---------------------------------------------------------------
def test_bulk_work_queued_while_redis_is_down_is_committed_and_enqueued_by_the_next_sweep(backend, dead_jobs):
    members = backend.add_members(3)
    down = backend.host("w1", jobs=dead_jobs)
    with suppress(RedisConnectionError):  # whether the caller hears of it: the test below
        queue_bulk_account_creation_for_members(down, ADMIN, members, batch_size=2)
    with backend.store.transaction(readonly=True):
        due = backend.store.due_batches(backend.clock())
    assert [(batch, generation) for _, batch, generation in due] == [(1, 0), (2, 0)]
    tracker = due[0][0]
    view = backend.tracker(tracker)
    assert fields(view, "status", "total_records") == (TS.QUEUED, 3)
    assert backend.jobs.bulk.job_ids == []
    report = sweep(backend.host("sweeper"))
    assert report.enqueued_batches == 2
    assert sorted(backend.jobs.bulk.job_ids) == sorted([batch_job_id(tracker, 1), batch_job_id(tracker, 2)])


def test_queueing_in_bulk_while_redis_is_down_still_reports_the_operation(backend, dead_jobs):
    """docs/accounts.md: 'If Redis is down when work is queued, the committed requests simply wait for the
    sweeper' (as on the individual path): the caller must learn its tracker, not get a transport error."""
    members = backend.add_members(3)
    queued = queue_bulk_account_creation_for_members(backend.host("w1", jobs=dead_jobs), ADMIN, members, batch_size=2)
    assert fields(queued, "requested", "total_batches", "enqueued_batches") == (3, 2, 0)
    assert backend.tracker(queued.tracker).status == TS.QUEUED


def test_an_approval_made_while_redis_is_down_is_enqueued_by_the_next_sweep(backend, dead_jobs):
    (member,) = backend.add_members(1)
    name = queue_account_creation_for_member(backend.host("approver", jobs=dead_jobs), ADMIN, member)
    assert backend.request(name).status == RS.QUEUED
    assert backend.jobs.individual.job_ids == []
    assert sweep(backend.host("sweeper")).enqueued_requests == 1
    assert backend.jobs.individual.job_ids == [individual_job_id(name)]


def test_a_retry_made_while_redis_is_down_still_reports_what_it_retried(backend, dead_jobs):
    """As when queueing: the retried requests are committed, so the sweeper will enqueue them."""
    (member,) = backend.add_members(1)
    name = approve(backend, member)
    backend.change_member(member, email=None)
    assert process_individual_request(backend.host("w1"), name) == "failed"
    backend.change_member(member, email=email_of(member))
    report = retry_failed_requests(backend.host("admin", jobs=dead_jobs), ADMIN)
    assert fields(report, "retried", "refused") == (1, [])
    assert backend.request(name).status == RS.QUEUED


# --- the member as it is when its request runs ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda backend, m: backend.remove_member(m), "the member no longer exists"),
        (lambda backend, m: backend.change_member(m, email=None), "the member no longer has an e-mail address"),
        (lambda backend, m: backend.change_member(m, status="Suspended"), "the member's status is now Suspended"),
    ],
    ids=["gone", "without-email", "no-longer-eligible"],
)
def test_a_member_that_changed_since_it_was_queued_gets_no_account(backend, change, reason):
    (member,) = backend.add_members(1)
    name = approve(backend, member)
    change(backend, member)
    assert process_individual_request(backend.host("w1"), name) == "failed"
    view = backend.request(name)
    assert fields(view, "status", "error_category", "failure_reason", "created_user", "retry_count") == (
        RS.FAILED,
        "permanent",
        reason,
        None,
        0,
    )
    assert backend.user(email_of(member)) is None


def test_a_member_linked_meanwhile_is_done_without_a_second_user(backend):
    (member,) = backend.add_members(1)
    name = approve(backend, member)
    backend.add_user("own@elders.test", full_name_of(member), (Roles.MEMBER,), member=member)
    with backend.store.transaction():
        backend.store.link_member(member, "own@elders.test", ADMIN)
    assert process_individual_request(backend.host("w1"), name) == "completed"
    view = backend.request(name)
    assert fields(view, "status", "created_user") == (RS.COMPLETED, "own@elders.test")
    assert backend.member(member).user == "own@elders.test"
    assert backend.user(email_of(member)) is None


def test_an_existing_user_with_the_same_email_and_name_is_linked_like_a_new_account(backend):
    """Same e-mail, same name (ignoring case and spacing): linked, and given the roles a new account gets,
    keeping its own; the role profile goes to new accounts only (on Frappe it would replace the user's roles)."""
    new, existing = backend.add_members(2)
    backend.add_user("sm@vereniging.test", "System Manager", (Roles.MANAGER, Roles.SYSTEM_MANAGER))
    approver = backend.host("approver")
    wanted = {"roles": [Roles.MEMBER, Roles.MANAGER], "role_profile": "Lid"}
    names = [queue_account_creation_for_member(approver, "sm@vereniging.test", m, **wanted) for m in (new, existing)]
    backend.add_user(email_of(existing), "  " + full_name_of(existing).upper() + " ", (Roles.SYSTEM_MANAGER,))
    assert [process_individual_request(backend.host("w1"), n) for n in names] == ["completed", "completed"]
    assert [backend.request(n).created_user for n in names] == [email_of(new), email_of(existing)]
    assert backend.roles(email_of(new)) == {Roles.MEMBER, Roles.MANAGER}
    assert backend.roles(email_of(existing)) == {Roles.MEMBER, Roles.MANAGER, Roles.SYSTEM_MANAGER}  # kept its own
    assert [backend.role_profile(email_of(m)) for m in (new, existing)] == ["Lid", None]
    assert [backend.user(email_of(m)).member for m in (new, existing)] == [new, existing]
    assert [backend.member(m).user for m in (new, existing)] == [email_of(new), email_of(existing)]


def test_an_existing_user_with_the_same_email_and_another_name_is_refused(backend):
    (member,) = backend.add_members(1)
    name = approve(backend, member)
    backend.add_user(email_of(member), "Iemand Anders", (Roles.MANAGER,))
    assert process_individual_request(backend.host("w1"), name) == "failed"
    view = backend.request(name)
    assert fields(view, "status", "error_category", "failure_reason") == (
        RS.FAILED,
        "permanent",
        "a user with this e-mail address already exists for someone else",
    )
    assert backend.roles(email_of(member)) == {Roles.MANAGER}
    assert backend.user(email_of(member)).member is None
    assert backend.member(member).user is None
