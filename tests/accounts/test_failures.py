"""Failure handling on real parts: genuine deadlocks and lock waits retried in place, database refusals failing
at once, RQ's job timeout putting members back, retries of several failures, linked users matching new ones,
the member row locked while its account is made, schema creation under concurrency, column widths, and the
rejected-rows file readable by its owner only."""

import logging
import os
import sqlite3
import stat
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import pymysql
import pytest
from redis import Redis
from rq import Worker
from rq.job import Job
from sqlalchemy import create_engine, insert, inspect, select, text, update
from sqlalchemy.exc import DBAPIError

from tests.accounts.conftest import ADMIN, MARIADB
from tests.accounts.test_bulk import assert_every_member_has_exactly_one_user
from tests.accounts.test_import_cli import cli
from tests.conftest import member_row
from verenigingen.accounts import manager as manager_module
from verenigingen.accounts.bulk import process_bulk_account_creation_batch, queue_bulk_account_creation_for_members
from verenigingen.accounts.config import AccountSettings
from verenigingen.accounts.errors import (
    ConflictError,
    DatabaseError,
    classify,
    describe,
    is_conflict,
)
from verenigingen.accounts.individual import process_individual_request, queue_account_creation_for_member
from verenigingen.accounts.manager import AccountCreationManager, with_conflict_retries
from verenigingen.accounts.ports import Host, batch_job_id
from verenigingen.accounts.retry import retry_failed_requests
from verenigingen.accounts.states import ErrorCategory, RequestStatus, Roles, TrackerStatus
from verenigingen.standalone import store as store_module
from verenigingen.standalone.host import utc_now
from verenigingen.standalone.schema import account_creation_requests as requests_t
from verenigingen.standalone.schema import audit_log, members, metadata, user_roles, users
from verenigingen.standalone.store import SqlStore, as_engine_error

FAULTY = {"VERENIGINGEN_HOST_FACTORY": "tests.accounts.faults:make_host"}
mariadb_only = pytest.mark.parametrize("db_url", ["mariadb"], indirect=True)
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
RETRYABLE, PERMANENT = ErrorCategory.RETRYABLE, ErrorCategory.PERMANENT


# --- helpers ---------------------------------------------------------------------------------------------


def request_row(world, name: str):
    r = requests_t.c
    with world.store.transaction(readonly=True):
        return world.store.db.execute(
            select(
                r.status,
                r.retry_count,
                r.error_category,
                r.failure_reason,
                r.next_retry_at,
                r.completed_at,
                r.created_user,
            ).where(r.name == name)
        ).one()


def request_of(world, member: str) -> str:
    with world.store.transaction(readonly=True):
        return world.store.db.scalar(select(requests_t.c.name).where(requests_t.c.source_record == member))


def audit_of(world, name: str) -> list[tuple]:
    a = audit_log.c
    with world.store.transaction(readonly=True):
        rows = world.store.db.execute(
            select(a.from_status, a.to_status, a.reason).where(a.reference_name == name).order_by(a.id)
        ).all()
    return [tuple(row) for row in rows]


def user_of(world, member: str):
    """(user, its roles, its role profile, the member it points at) of a member."""
    with world.store.transaction(readonly=True):
        db = world.store.db
        user = db.scalar(select(members.c.user).where(members.c.name == member))
        row = db.execute(select(users.c.role_profile, users.c.member).where(users.c.name == user)).one()
        roles = set(db.scalars(select(user_roles.c.role).where(user_roles.c.user == user)))
    return user, roles, row.role_profile, row.member


def connect(world) -> pymysql.connections.Connection:
    """A second MariaDB connection to the world's database, in the isolation level the store uses."""
    connection = pymysql.connect(**MARIADB, database=world.store.engine.url.database, autocommit=False)
    with connection.cursor() as cursor:
        cursor.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
    return connection


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.02)


class Proxy:
    """The world's store, with some methods replaced."""

    def __init__(self, store):
        self._store = store

    def __getattr__(self, name):
        return getattr(self._store, name)


class LockCycles(Proxy):
    """Before ``create_user``, a real InnoDB deadlock (1213) with a second connection, ``times`` times. The
    other transaction has changed 30 rows and the engine's only one lock, so InnoDB picks the engine's
    transaction as the victim; ``errors`` keeps what the engine's statement raised (None: not the victim)."""

    def __init__(self, world, times: int):
        super().__init__(world.store)
        self.world, self.times, self.errors = world, times, []

    def create_user(self, email, full_name, roles, role_profile, member, by):
        if len(self.errors) < self.times:
            self._deadlock(member)
        return self._store.create_user(email, full_name, roles, role_profile, member, by)

    def _deadlock(self, member: str) -> None:
        ready, helper_id = threading.Event(), []

        def other_transaction():
            connection = connect(self.world)
            try:
                with connection.cursor() as cursor:
                    cursor.execute("UPDATE members SET city = 'ballast' WHERE name LIKE 'MEM-w%'")  # holds MEM-w00000
                    helper_id.append(connection.thread_id())
                    ready.set()
                    cursor.execute("SELECT name FROM members WHERE name = %s FOR UPDATE", (member,))  # engine holds it
            except pymysql.err.OperationalError:
                pass  # this one was the victim: the engine's statement then succeeds, and the test says so
            finally:
                connection.rollback()
                connection.close()

        thread = threading.Thread(target=other_transaction, daemon=True)
        thread.start()
        assert ready.wait(10)

        monitor = pymysql.connect(**MARIADB, autocommit=True)

        def other_waits() -> bool:
            with monitor.cursor() as cursor:
                cursor.execute("SELECT info FROM information_schema.processlist WHERE id = %s", helper_id)
                info = (cursor.fetchone() or (None,))[0]
                return "FOR UPDATE" in (info or "")

        # Its statement runs (and can only wait for us); whichever of the two asks last closes the cycle,
        # and InnoDB rolls back the lighter transaction either way.
        try:
            wait_for(other_waits, 10, "the other transaction asks for the member row")
        finally:
            monitor.close()
        time.sleep(0.05)
        try:
            self._store.db.execute(text("SELECT name FROM members WHERE name = 'MEM-w00000' FOR UPDATE"))
        except DBAPIError as exc:
            self.errors.append(exc)
            raise
        finally:
            thread.join(10)
        self.errors.append(None)


class HeldMemberRow(Proxy):
    """Another connection holds the member row; ``lock_member`` waits at most 1 s for it (a real 1205),
    ``times`` times, and then the other connection lets go."""

    def __init__(self, world, member: str, times: int):
        super().__init__(world.store)
        self.times, self.errors = times, []
        self.holder = connect(world)
        with self.holder.cursor() as cursor:
            cursor.execute("SELECT name FROM members WHERE name = %s FOR UPDATE", (member,))

    def lock_member(self, name):
        if len(self.errors) < self.times:
            self._store.db.exec_driver_sql("SET SESSION innodb_lock_wait_timeout = 1")
            try:
                found = self._store.lock_member(name)
            except DBAPIError as exc:
                self.errors.append(exc)
                raise
            self.errors.append(None)
            return found
        self.holder.rollback()
        self._store.db.exec_driver_sql("SET SESSION innodb_lock_wait_timeout = 50")
        return self._store.lock_member(name)


# Frappe's "the document was modified after you opened it", by its qualified name (no Frappe here).
TimestampMismatchError = type("TimestampMismatchError", (Exception,), {"__module__": "frappe.exceptions"})


class RecordChanged(Proxy):
    def __init__(self, store, times: int):
        super().__init__(store)
        self.times, self.calls = times, 0

    def create_user(self, *args, **kwargs):
        self.calls += 1
        if self.calls <= self.times:
            raise TimestampMismatchError("Document has been modified after you have opened it")
        return self._store.create_user(*args, **kwargs)


# --- 1. conflicts are retried in place -------------------------------------------------------------------


def test_conflicts_are_retried_after_jittered_growing_pauses(monkeypatch):
    """In-place tries: exactly conflict_attempts of them, each pause jittered within its growing bounds."""
    pauses = []
    monkeypatch.setattr(manager_module, "time", SimpleNamespace(sleep=pauses.append))
    host = Host(None, None, utc_now, AccountSettings(conflict_attempts=5, conflict_pause=(0.02, 0.25)))
    calls = []

    def conflicts(times):
        def work():
            calls.append(1)
            if len(calls) <= times:
                raise ConflictError("database: deadlock")
            return "done"

        return work

    assert with_conflict_retries(host, conflicts(4)) == "done"
    assert len(calls) == 5 and len(pauses) == 4
    assert all(0.02 * n <= pause <= 0.25 * n for n, pause in enumerate(pauses, 1)), pauses
    assert len(set(pauses)) == 4  # jittered, not fixed
    calls.clear(), pauses.clear()
    with pytest.raises(ConflictError):
        with_conflict_retries(host, conflicts(5))
    assert (len(calls), len(pauses)) == (5, 4)
    calls.clear(), pauses.clear()

    def refused():
        calls.append(1)
        raise DatabaseError("database: error 1146 (ProgrammingError)")

    with pytest.raises(DatabaseError):
        with_conflict_retries(host, refused)
    assert (len(calls), pauses) == (1, [])


@mariadb_only
def test_three_real_deadlocks_in_a_row_cost_no_retry(world):
    """InnoDB picks the engine's account transaction as the deadlock victim three times: tried again in
    place, the member gets its user, and none of its retries is used."""
    (member,) = world.add_members(1)
    world.add_members(30, prefix="w")
    request = queue_account_creation_for_member(world.host, ADMIN, member)
    store = LockCycles(world, times=3)
    outcome = AccountCreationManager(replace(world.host, store=store)).process(request)
    assert outcome == "completed", (request_row(world, request), store.errors)
    assert [(type(e).__name__, e.orig.args[0]) for e in store.errors] == [("OperationalError", 1213)] * 3
    real = store.errors[0]  # a real deadlock, as SQLAlchemy raises it
    assert (is_conflict(real), classify(real), describe(real)) == (True, RETRYABLE, "database: deadlock")
    assert isinstance(as_engine_error(real), ConflictError)
    row = request_row(world, request)
    assert (row.status, row.retry_count, row.error_category, row.failure_reason) == (
        RequestStatus.COMPLETED,
        0,
        None,
        None,
    )
    assert row.created_user == "m0@vereniging.test"
    assert [step[:2] for step in audit_of(world, request)] == [
        (None, RequestStatus.QUEUED),
        (RequestStatus.QUEUED, RequestStatus.PROCESSING),
        (RequestStatus.PROCESSING, RequestStatus.COMPLETED),
    ]
    assert_every_member_has_exactly_one_user(world, [member])


@mariadb_only
def test_real_lock_wait_timeouts_cost_no_retry(world):
    """Another connection holds the member row past innodb_lock_wait_timeout twice: tried again in place."""
    (member,) = world.add_members(1)
    request = queue_account_creation_for_member(world.host, ADMIN, member)
    store = HeldMemberRow(world, member, times=2)
    try:
        assert AccountCreationManager(replace(world.host, store=store)).process(request) == "completed"
    finally:
        store.holder.close()
    assert [e.orig.args[0] for e in store.errors] == [1205, 1205]
    real = store.errors[0]
    assert (is_conflict(real), classify(real), describe(real)) == (True, RETRYABLE, "database: lock wait timeout")
    row = request_row(world, request)
    assert (row.status, row.retry_count, row.failure_reason) == (RequestStatus.COMPLETED, 0, None)
    assert_every_member_has_exactly_one_user(world, [member])


@mariadb_only
def test_more_deadlocks_than_conflict_attempts_cost_exactly_one_retry(world):
    """Every try a deadlock victim: after conflict_attempts tries one retry is scheduled, never a failure."""
    (member,) = world.add_members(1)
    world.add_members(30, prefix="w")
    request = queue_account_creation_for_member(world.host, ADMIN, member)
    store = LockCycles(world, times=99)
    before = utc_now()
    assert AccountCreationManager(replace(world.host, store=store)).process(request) == "retry"
    after = utc_now()
    attempts = world.shost.settings.conflict_attempts
    assert [e.orig.args[0] for e in store.errors] == [1213] * attempts
    row = request_row(world, request)
    assert (row.status, row.retry_count, row.error_category, row.failure_reason) == (
        RequestStatus.QUEUED,
        1,
        RETRYABLE,
        "database: deadlock",
    )
    backoff = timedelta(seconds=world.shost.settings.backoff(1))
    assert before + backoff <= row.next_retry_at <= after + backoff
    assert audit_of(world, request)[-1] == (
        RequestStatus.PROCESSING,
        RequestStatus.QUEUED,
        "retry 1 of 3: database: deadlock",
    )
    with world.store.transaction(readonly=True):
        assert world.store.count(users, users.c.member == member) == 0


@pytest.mark.parametrize("conflicts, outcome", [(3, "completed"), (5, "retry")])
def test_a_record_changed_meanwhile_is_a_conflict_too(world, conflicts, outcome):
    """Frappe's TimestampMismatchError is retried in place like a deadlock; beyond the tries, one retry."""
    (member,) = world.add_members(1)
    request = queue_account_creation_for_member(world.host, ADMIN, member)
    store = RecordChanged(world.store, conflicts)
    assert AccountCreationManager(replace(world.host, store=store)).process(request) == outcome
    assert store.calls == min(conflicts + 1, world.shost.settings.conflict_attempts)
    row = request_row(world, request)
    if outcome == "completed":
        assert (row.status, row.retry_count, row.failure_reason) == (RequestStatus.COMPLETED, 0, None)
    else:
        assert (row.status, row.retry_count, row.error_category, row.failure_reason) == (
            RequestStatus.QUEUED,
            1,
            RETRYABLE,
            "TimestampMismatchError",
        )
        assert row.next_retry_at is not None


# --- 2. only known passing faults are retryable ----------------------------------------------------------


def test_driver_errors_are_judged_by_their_code_and_described_without_values():
    """Real driver exception types as the drivers raise them: the code decides, the description names no value."""
    cases = [
        (pymysql.err.OperationalError(1213, "Deadlock found when trying to get lock; try restarting transaction"),
         True, RETRYABLE, "database: deadlock"),
        (pymysql.err.OperationalError(1205, "Lock wait timeout exceeded; try restarting transaction"),
         True, RETRYABLE, "database: lock wait timeout"),
        (pymysql.err.OperationalError(2013, "Lost connection to server during query"),
         False, RETRYABLE, "database: lost connection"),
        (pymysql.err.ProgrammingError(1146, "Table 'leden.user_roles' doesn't exist"),
         False, PERMANENT, "database: error 1146 (ProgrammingError)"),
        (pymysql.err.OperationalError(1142, "INSERT command denied to user 'clerk'@'localhost' for table `users`"),
         False, PERMANENT, "database: error 1142 (OperationalError)"),
        (pymysql.err.OperationalError(1045, "Access denied for user 'clerk'@'localhost' (using password: YES)"),
         False, PERMANENT, "database: error 1045 (OperationalError)"),
        (pymysql.err.IntegrityError(1062, "Duplicate entry 'jan@example.nl' for key 'email'"),
         False, PERMANENT, "database: error 1062 (IntegrityError)"),
        (sqlite3.OperationalError("database is locked"), True, RETRYABLE, "OperationalError"),
        (sqlite3.OperationalError("no such table: user_roles"), False, PERMANENT, "OperationalError"),
        (sqlite3.OperationalError("attempt to write a readonly database"), False, PERMANENT, "OperationalError"),
    ]  # fmt: skip
    judged = [(is_conflict(exc), classify(exc), describe(exc)) for exc, *_ in cases]
    assert judged == [tuple(expected) for _, *expected in cases]


def test_a_value_quoted_in_a_refusal_never_makes_it_a_conflict():
    """MariaDB quotes the offending value; its code (a duplicate, not a deadlock) decides, not the words."""
    duplicate = pymysql.err.IntegrityError(1062, "Duplicate entry 'jan.deadlock@example.nl' for key 'email'")
    assert (is_conflict(duplicate), classify(duplicate)) == (False, PERMANENT)


def test_real_failing_statements_wrapped_by_sqlalchemy(tmp_path):
    """What SQLAlchemy raises for a real locked SQLite database and a real missing MariaDB table."""
    path = tmp_path / "locked.sqlite3"
    holder = sqlite3.connect(path, timeout=0, isolation_level=None)
    holder.execute("CREATE TABLE t (x INTEGER)")
    holder.execute("BEGIN IMMEDIATE")
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 0})
    try:
        with pytest.raises(DBAPIError) as locked, engine.begin() as connection:
            connection.exec_driver_sql("INSERT INTO t VALUES (1)")
        with pytest.raises(DBAPIError) as missing_sqlite, engine.connect() as connection:
            connection.exec_driver_sql("SELECT * FROM user_roles")
    finally:
        holder.close()
        engine.dispose()
    server = create_engine("mysql+pymysql://root@127.0.0.1:3306/mysql", hide_parameters=True)
    try:
        with pytest.raises(DBAPIError) as missing_mariadb, server.connect() as connection:
            connection.exec_driver_sql("SELECT * FROM verenigingen_no_such_table")
    finally:
        server.dispose()
    assert (is_conflict(locked.value), classify(locked.value)) == (True, RETRYABLE)
    assert isinstance(as_engine_error(locked.value), ConflictError)
    assert (is_conflict(missing_sqlite.value), classify(missing_sqlite.value)) == (False, PERMANENT)
    assert str(as_engine_error(missing_sqlite.value)) == "database: no such table (OperationalError)"
    assert (is_conflict(missing_mariadb.value), classify(missing_mariadb.value), describe(missing_mariadb.value)) == (
        False,
        PERMANENT,
        "database: error 1146 (ProgrammingError)",
    )
    assert str(as_engine_error(missing_mariadb.value)) == "database: error 1146 (ProgrammingError)"


def test_a_missing_table_fails_the_requests_at_once(world, caplog):
    """user_roles dropped: nothing is retried, the reason names the error (no value), and it is logged."""
    names = world.add_members(2)
    queued = queue_bulk_account_creation_for_members(world.host, ADMIN, names)
    with world.store.transaction():
        world.store.db.execute(text("DROP TABLE user_roles"))
    caplog.set_level(logging.ERROR)
    outcome = process_bulk_account_creation_batch(world.host, queued.tracker, 1)
    assert (outcome.completed, outcome.retry, outcome.failed, outcome.tracker_completed) == (0, 0, 2, True)
    mariadb = world.store.engine.dialect.name in ("mysql", "mariadb")
    kind = ("ProgrammingError", "error 1146") if mariadb else ("OperationalError", "no such table")
    reason = f"database: {kind[1]} ({kind[0]})"
    for member in names:
        row = request_row(world, request_of(world, member))
        assert (row.status, row.error_category, row.retry_count, row.failure_reason) == (
            RequestStatus.FAILED,
            PERMANENT,
            0,
            reason,
        )
    tracker = world.tracker(queued.tracker)
    assert (tracker.status, tracker.error_summary) == (TrackerStatus.FAILED, f"2 x {reason}")
    logged = [(r.name, r.levelno, r.getMessage()) for r in caplog.records if r.levelno >= logging.ERROR]
    message = f"database refused ({kind[0]}, {kind[1]}): not retried"
    assert logged == [(store_module.__name__, logging.ERROR, message)] * 2


@mariadb_only
def test_access_denied_fails_the_request_at_once(world, caplog):
    """A database account that may not insert users: permanent at once, logged, no value in the reason."""
    (member,) = world.add_members(1)
    request = queue_account_creation_for_member(world.host, ADMIN, member)
    database, account = world.store.engine.url.database, f"vt_{uuid.uuid4().hex[:10]}"
    server = pymysql.connect(**MARIADB, autocommit=True)
    restricted = None
    try:
        with server.cursor() as cursor:
            cursor.execute(f"CREATE USER '{account}'@'%' IDENTIFIED BY 'secret-{account}'")
            cursor.execute(f"GRANT SELECT, UPDATE, DELETE ON `{database}`.* TO '{account}'@'%'")
            for table in metadata.tables:
                if table not in ("users", "user_roles"):
                    cursor.execute(f"GRANT INSERT ON `{database}`.`{table}` TO '{account}'@'%'")
        url = f"mysql+pymysql://{account}:secret-{account}@127.0.0.1:3306/{database}?charset=utf8mb4"
        restricted = SqlStore.from_url(url, migrate=False)
        caplog.set_level(logging.ERROR)
        assert AccountCreationManager(replace(world.host, store=restricted)).process(request) == "failed"
    finally:
        if restricted is not None:
            restricted.engine.dispose()
        with server.cursor() as cursor:
            cursor.execute(f"DROP USER IF EXISTS '{account}'@'%'")
        server.close()
    row = request_row(world, request)
    assert (row.status, row.error_category, row.retry_count, row.failure_reason) == (
        RequestStatus.FAILED,
        PERMANENT,
        0,
        "database: error 1142 (OperationalError)",
    )
    logged = [(r.name, r.getMessage()) for r in caplog.records if r.levelno >= logging.ERROR]
    assert logged == [(store_module.__name__, "database refused (OperationalError, error 1142): not retried")]
    assert_no_user(world, member)


def assert_no_user(world, member: str) -> None:
    with world.store.transaction(readonly=True):
        assert world.store.count(users, users.c.member == member) == 0
        assert world.store.count(users, users.c.email == "m0@vereniging.test") == 0


# --- 3. RQ's job timeout is not swallowed ----------------------------------------------------------------


def _a_job_runs_out_of_time(make_world, fault: str):
    """One batch of four; m1's first account transaction outlasts the 2 s job timeout (see ``fault``)."""
    world = make_world(**FAULTY, VERENIGINGEN_FAULTS=fault, VERENIGINGEN_BATCH_TIMEOUT="2")
    names = world.add_members(4)
    queued = queue_bulk_account_creation_for_members(world.host, ADMIN, names)
    world.run_burst(1, timeout=60)  # a burst worker runs no sweeper: only this one job runs
    rows = {member: request_row(world, request_of(world, member)) for member in names}
    job = Job.fetch(batch_job_id(queued.tracker, 1), connection=world.redis)
    seen = {m: (r.status, r.retry_count, r.failure_reason) for m, r in rows.items()}
    assert str(getattr(job.get_status(), "value", job.get_status())) == "failed", seen
    assert "JobTimeoutException" in job.latest_result().exc_string
    order = sorted(names, key=lambda member: request_of(world, member))  # a batch runs in request order
    slow = order.index(names[1])
    assert (
        {m: (r.status, r.retry_count, r.next_retry_at, r.failure_reason) for m, r in rows.items()}
        == {
            **{m: (RequestStatus.COMPLETED, 0, None, None) for m in order[:slow]},
            names[1]: (RequestStatus.QUEUED, 0, None, None),  # put back, due at once, no retry used
            **{m: (RequestStatus.QUEUED, 0, None, None) for m in order[slow + 1 :]},  # never reached
        }
    )
    assert audit_of(world, request_of(world, names[1]))[-1] == (
        RequestStatus.PROCESSING,
        RequestStatus.QUEUED,
        "the job ran out of time",
    )
    world.start_workers(1)  # with its sweeper, which enqueues the batch again
    world.wait_until(lambda: world.tracker(queued.tracker).status in TrackerStatus.FINISHED, timeout=60)
    tracker = world.tracker(queued.tracker)
    assert (tracker.status, tracker.successful_records, tracker.failed_records) == (TrackerStatus.COMPLETED, 4, 0)
    assert {(r.status, r.retry_count) for r in (request_row(world, request_of(world, m)) for m in names)} == {
        (RequestStatus.COMPLETED, 0)
    }
    assert_every_member_has_exactly_one_user(world, names)


def test_a_job_that_runs_out_of_time_puts_its_member_back(make_world):
    """The timeout strikes while the account transaction waits in Python (a slow create_user)."""
    _a_job_runs_out_of_time(make_world, "slow_once:8:^m1@")


@mariadb_only
def test_a_job_that_runs_out_of_time_in_a_statement_puts_its_member_back(make_world):
    """The timeout strikes while the account transaction waits for the database (a slow statement), as when
    it waits for a lock: still the job's time, never the member's failure."""
    _a_job_runs_out_of_time(make_world, "slow_query_once:8:^m1@")


# --- 4. retrying several failed requests of one member ---------------------------------------------------


def _set_status(world, names: list[str], status: str) -> None:
    with world.store.transaction():
        world.store.db.execute(update(members).where(members.c.name.in_(names)).values(status=status))


def _failed_requests(world) -> tuple[list[str], str]:
    """Member m0 with three failed requests (oldest first), m1 with one: each member left the association
    between queueing and processing, and is Active again now."""
    m0, m1 = world.add_members(2)

    def fail(member: str) -> str:
        _set_status(world, [member], "Active")
        request = queue_account_creation_for_member(world.host, ADMIN, member)
        _set_status(world, [member], "Cancelled")
        assert process_individual_request(world.host, request) == "failed"
        return request

    failed = [fail(m0) for _ in range(3)]
    single = fail(m1)
    _set_status(world, [m0, m1], "Active")
    return failed, single


def test_retry_takes_the_newest_failed_request_of_a_member_and_reports_the_rest(world):
    """A member may have one open request: its newest failure is retried, the older ones are reported."""
    (oldest, older, newest), single = _failed_requests(world)
    report = retry_failed_requests(world.host, ADMIN)
    assert report.retried == 2
    assert [(r.member, r.code, r.message) for r in report.refused] == [
        ("MEM-m00000", "older_request", f"request {oldest} not retried: a newer one of its member is retried"),
        ("MEM-m00000", "older_request", f"request {older} not retried: a newer one of its member is retried"),
    ]
    statuses = {name: request_row(world, name).status for name in (oldest, older, newest, single)}
    assert statuses == {
        oldest: RequestStatus.FAILED,
        older: RequestStatus.FAILED,
        newest: RequestStatus.QUEUED,
        single: RequestStatus.QUEUED,
    }
    assert process_individual_request(world.host, newest) == "completed"
    again = retry_failed_requests(world.host, ADMIN)
    assert (again.retried, [(r.member, r.code) for r in again.refused]) == (
        0,
        [("MEM-m00000", "older_request"), ("MEM-m00000", "has_user")],
    )


def test_retry_of_one_named_request(world):
    """Desk's Retry on one failed request: only that member; an older request of a member is refused
    as in a retry of all, and a request that has not failed is refused by name."""
    (oldest, _, newest), single = _failed_requests(world)
    older_one = retry_failed_requests(world.host, ADMIN, only=oldest)
    assert older_one.retried == 1  # the member's newest request is what gets retried
    assert next((r.code, r.message) for r in older_one.refused if r.code == "older_request") == (
        "older_request",
        f"request {oldest} not retried: a newer one of its member is retried",
    )
    assert request_row(world, newest).status == RequestStatus.QUEUED
    assert request_row(world, single).status == RequestStatus.FAILED  # another member: untouched
    again = retry_failed_requests(world.host, ADMIN, only=newest)
    assert (again.retried, [(r.code, r.message) for r in again.refused]) == (
        0,
        [("not_failed", f"request {newest} has not failed")],
    )
    assert retry_failed_requests(world.host, ADMIN, only=single).retried == 1


def test_the_retry_command_reports_refusals_and_exits_0(world):
    """Refusals are information for the administrator, not errors: printed, exit 0, no traceback."""
    (oldest, older, _), _ = _failed_requests(world)
    done = cli(world, "retry", "--as", ADMIN)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines() == [
        "2 failed requests queued again",
        f"  member MEM-m00000: request {oldest} not retried: a newer one of its member is retried",
        f"  member MEM-m00000: request {older} not retried: a newer one of its member is retried",
    ]


# --- 5. a linked existing user ends like a new account ---------------------------------------------------


def test_linked_users_get_what_a_new_account_gets_and_keep_their_roles(world):
    """Linked when queued (bulk and individual) or when the user appeared after queueing (bulk and
    individual): the same roles as a new account, plus the roles the user had; the role profile it had
    stays (a profile goes to new accounts only: on Frappe it replaces the user's roles)."""
    chief = "chief@vereniging.test"
    world.add_user(chief, "Chief", Roles.ADMINISTRATOR, Roles.SYSTEM_MANAGER, Roles.MANAGER)
    new, bulk_now, single_now, bulk_later, single_later = world.add_members(5)
    grant = {"roles": [Roles.MEMBER, Roles.MANAGER], "role_profile": "Bestuur"}

    def existing_user(member: str) -> None:
        number = int(member[-5:])
        email = f"m{number}@vereniging.test"
        world.add_user(email, f"lid NUMMER {number}", "Website User", Roles.MEMBER)
        with world.store.transaction():
            world.store.db.execute(update(users).where(users.c.name == email).values(role_profile="Oud"))

    existing_user(bulk_now)
    existing_user(single_now)
    queued = queue_bulk_account_creation_for_members(world.host, chief, [new, bulk_now, bulk_later], **grant)
    assert (queued.requested, queued.linked) == (2, 1)
    assert queue_account_creation_for_member(world.host, chief, single_now, **grant) is None
    later = queue_account_creation_for_member(world.host, chief, single_later, **grant)
    existing_user(bulk_later)
    existing_user(single_later)
    assert process_bulk_account_creation_batch(world.host, queued.tracker, 1).completed == 2
    # Its own job, or the batch that served it between two members (when the batch took over 0.5 s).
    assert process_individual_request(world.host, later) in ("completed", "skipped")
    assert request_row(world, later).status == RequestStatus.COMPLETED

    user, roles, profile, owner = user_of(world, new)
    assert (user, roles, profile, owner) == ("m0@vereniging.test", {Roles.MEMBER, Roles.MANAGER}, "Bestuur", new)
    for member in (bulk_now, single_now, bulk_later, single_later):
        assert user_of(world, member) == (
            f"m{int(member[-5:])}@vereniging.test",
            roles | {"Website User"},
            "Oud",
            member,
        )


# --- 6. the member row is locked while its account is made -----------------------------------------------


def test_an_import_changing_the_email_waits_for_the_account_transaction(make_world):
    """A worker's account transaction takes 2.5 s; an import's update of that member's e-mail, started
    meanwhile, only returns after the account transaction committed, and the user has the e-mail it locked."""
    world = make_world(**FAULTY, VERENIGINGEN_FAULTS="delay:2.5")
    (member,) = world.add_members(1)
    request = queue_account_creation_for_member(world.host, ADMIN, member)
    world.start_workers(1, queues="individual", burst=True)
    world.wait_until(lambda: request_row(world, request).status == RequestStatus.PROCESSING, timeout=60)
    time.sleep(0.4)  # the account transaction now holds the member and sits in create_user
    started = utc_now()
    with world.store.transaction():
        world.store.db.execute(
            update(members).where(members.c.name == member).values(email="nieuw@vereniging.test", modified=started)
        )
    returned = utc_now()
    row = request_row(world, request)
    assert row.status == RequestStatus.COMPLETED
    assert started < row.completed_at < returned, (started, row.completed_at, returned)
    assert returned - started > timedelta(seconds=1)
    assert row.created_user == "m0@vereniging.test"
    with world.store.transaction(readonly=True):
        assert world.store.get_members([member])[member].email == "nieuw@vereniging.test"


# --- 7. schema creation happens once ---------------------------------------------------------------------


@pytest.mark.slow
@mariadb_only
def test_six_workers_starting_together_on_a_fresh_database_all_come_up(db_url, redis_url, tmp_path):
    """Twelve processes (six workers, six sweepers) create the tables of an empty database at once."""
    queues = {
        "VERENIGINGEN_BULK_QUEUE": f"bulk-{uuid.uuid4().hex[:8]}",
        "VERENIGINGEN_INDIVIDUAL_QUEUE": f"individual-{uuid.uuid4().hex[:8]}",
    }
    env = {
        **os.environ,
        **queues,
        "VERENIGINGEN_HOME": str(tmp_path / "home"),
        "VERENIGINGEN_DB": db_url,
        "VERENIGINGEN_REDIS": redis_url,
    }
    engine = create_engine(db_url)
    try:
        assert inspect(engine).get_table_names() == []
    finally:
        engine.dispose()
    command = [sys.executable, "-m", "verenigingen.standalone.cli", "worker"]
    logs = [(tmp_path / f"worker{i}.out").open("wb+") for i in range(6)]
    workers = [subprocess.Popen(command, env=env, stdout=log, stderr=log) for log in logs]
    redis = Redis.from_url(redis_url)
    try:

        def registered() -> int:
            return sum(queues["VERENIGINGEN_BULK_QUEUE"] in w.queue_names() for w in Worker.all(connection=redis))

        deadline = time.monotonic() + 60
        while registered() < 6 and time.monotonic() < deadline and all(w.poll() is None for w in workers):
            time.sleep(0.2)
        time.sleep(1)  # a worker that failed just after registering would show now
        outputs = [Path(log.name).read_text(errors="replace")[-2000:] for log in logs]
        assert [w.poll() for w in workers] == [None] * 6, outputs
        assert registered() == 6
        # Each says what it serves (one line), and nothing else: no traceback, no error.
        start_line = "verenigingen worker: serving"
        said = [[line for line in out.splitlines() if not line.startswith(start_line)] for out in outputs]
        assert said == [[]] * 6, outputs
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=30)
        for log in logs:
            log.close()
    engine = create_engine(db_url)
    try:
        assert set(inspect(engine).get_table_names()) == set(metadata.tables)
        with engine.connect() as connection:
            assert connection.scalar(select(users.c.name).select_from(users)) == "operator@localhost"
            assert connection.scalar(text("SELECT COUNT(*) FROM users")) == 1
    finally:
        engine.dispose()


def test_migrate_creates_the_tables_and_can_run_again(db_url, tmp_path):
    """An operator runs it before starting workers, and again after an upgrade: never an error, nothing twice."""
    env = {**os.environ, "VERENIGINGEN_HOME": str(tmp_path / "home"), "VERENIGINGEN_DB": db_url}
    command = [sys.executable, "-m", "verenigingen.standalone.cli", "migrate"]
    runs = [subprocess.run(command, env=env, capture_output=True, text=True, timeout=60) for _ in range(2)]
    for run in runs:
        assert (run.returncode, run.stderr) == (0, "")
        assert run.stdout.startswith("database ready: ")
    engine = create_engine(db_url)
    try:
        assert set(inspect(engine).get_table_names()) == set(metadata.tables)
        with engine.connect() as connection:
            assert connection.scalar(text("SELECT COUNT(*) FROM users")) == 1
            assert connection.scalar(text("SELECT COUNT(*) FROM user_roles")) == 2
    finally:
        engine.dispose()


# --- 8. column widths agree between tables ---------------------------------------------------------------

LONGEST_EMAIL = "a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 56 + ".test"
LONGEST_NAME = ("Ä" * 140, "t" * 18, "Ö" * 140)


def test_the_longest_email_and_name_get_a_user_on_either_database(world):
    """254 characters of e-mail, 300 of name: every table that holds them takes them, MariaDB too."""
    assert (len(LONGEST_EMAIL), len(" ".join(LONGEST_NAME))) == (254, 300)
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    first, between, last = LONGEST_NAME
    row = {
        "name": "MEM-long",
        "member_id": "9999",
        "first_name": first,
        "tussenvoegsel": between,
        "last_name": last,
        "full_name": " ".join(LONGEST_NAME),
        "email": LONGEST_EMAIL,
        "status": "Active",
        "creation": now,
        "modified": now,
    }
    with world.store.transaction():
        world.store.db.execute(insert(members).values(**row))
    queued = queue_bulk_account_creation_for_members(world.host, ADMIN, ["MEM-long"])
    assert process_bulk_account_creation_batch(world.host, queued.tracker, 1).completed == 1
    assert request_row(world, request_of(world, "MEM-long")).created_user == LONGEST_EMAIL
    assert user_of(world, "MEM-long") == (LONGEST_EMAIL, {Roles.MEMBER}, None, "MEM-long")
    with world.store.transaction(readonly=True):
        assert world.store.find_user(LONGEST_EMAIL).full_name == " ".join(LONGEST_NAME)


# --- 9. the rejected rows stay private -------------------------------------------------------------------


@sqlite_only
def test_the_rejected_rows_file_is_readable_by_its_owner_only(world, export_file):
    """It holds IBANs and birth dates: mode 0o600 even when the importer's umask would allow more."""
    path = export_file([member_row(), member_row(**{"Lidnr.": "1002", "Postcode": "0123 XX"})])
    command = [sys.executable, "-m", "verenigingen.standalone.cli", "import", str(path), "--no-accounts", "--json"]
    done = subprocess.run(
        [*command, "--as", ADMIN],
        env=world.env,
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=lambda: os.umask(0),
    )
    assert done.returncode == 0, done.stderr
    rejected = world.shost.environment.home / "rejected"
    (written,) = rejected.iterdir()
    assert f'"rejected_rows_file": "{written}"' in done.stdout
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert stat.S_IMODE(rejected.stat().st_mode) == 0o700
