"""One contract suite, every store: the ``backend`` fixture yields a Host-like object per Store implementation.

A backend is the engine's view of one store implementation (``backend.host(worker)``: that store, a real RQ
queue on Redis, a clock the test moves) plus the few things the Store port deliberately cannot do: seed
members and users, change or remove a member behind the engine's back, and read back what was stored for
which the port has no reader (the audit log, a user's role profile). To put another store under the same
contract (the Frappe store), subclass ``Backend`` and add a factory to ``BACKENDS``.
"""

import os
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pymysql
import pytest
from redis import Redis
from sqlalchemy import delete, insert, select, update

from tests.accounts.conftest import MARIADB, REDIS_URL  # REDIS_URL follows VERENIGINGEN_TEST_REDIS_DB
from verenigingen.accounts.config import DEFAULT_SETTINGS, AccountSettings
from verenigingen.accounts.ports import AuditEntry, Host, JobQueue, NewRequest, Store
from verenigingen.accounts.states import Roles
from verenigingen.standalone.queue import RqJobQueue
from verenigingen.standalone.schema import audit_log, members, users
from verenigingen.standalone.store import SqlStore

ADMIN = "admin@vereniging.test"
# Far from today, with microseconds: a store that read its own clock, or rounded times, would show it.
START = datetime(2031, 3, 14, 9, 26, 53, 589793)


class Clock:
    """Host.clock for tests: naive UTC, moved only by the test."""

    def __init__(self, start: datetime = START):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


class Backend(ABC):
    """A store implementation under test, Host-like: ``store``, ``jobs``, ``clock``, ``settings``."""

    def __init__(self, store: Store, jobs: JobQueue, clock: Clock, settings: AccountSettings):
        self.store, self.jobs, self.clock, self.settings = store, jobs, clock, settings

    def host(self, worker: str = "w1", *, store: Store | None = None, jobs: JobQueue | None = None) -> Host:
        """The engine's Host for one worker; workers of one backend share its store, clock and queues."""
        return Host(store or self.store, jobs or self.jobs, self.clock, self.settings, worker)

    def add_members(self, count: int, prefix: str = "m", status: str = "Active") -> list[str]:
        """Members MEM-<prefix><nnn>, with e-mail ``email_of(name)`` and full name ``full_name_of(name)``."""
        names = [f"MEM-{prefix}{i:03d}" for i in range(count)]
        for name in names:
            self.add_member(name, email_of(name), full_name_of(name), status)
        return names

    def member(self, name: str):
        with self.store.transaction(readonly=True):
            return self.store.get_members([name]).get(name)

    def request(self, name: str):
        with self.store.transaction(readonly=True):
            return self.store.get_request(name)

    def tracker(self, name: str):
        with self.store.transaction(readonly=True):
            return self.store.get_tracker(name)

    def user(self, email: str):
        with self.store.transaction(readonly=True):
            return self.store.find_user(email)

    def roles(self, user: str) -> set[str]:
        with self.store.transaction(readonly=True):
            return self.store.roles_of(user)

    # --- what each implementation provides --------------------------------------------------------------
    @abstractmethod
    def second_store(self) -> Store:
        """Another store on the same data, with connections of its own: what another process would see."""

    @abstractmethod
    def add_member(self, name: str, email: str | None, full_name: str, status: str = "Active") -> None: ...

    @abstractmethod
    def change_member(self, name: str, **values: str | None) -> None:
        """Change ``email``, ``status`` or ``full_name`` the way an import would (committed at once)."""

    @abstractmethod
    def remove_member(self, name: str) -> None: ...

    @abstractmethod
    def add_user(self, email: str, full_name: str, roles: tuple[str, ...], member: str | None = None) -> None:
        """A user made outside the engine (by hand, or by another app), possibly linked to no member."""

    @abstractmethod
    def role_profile(self, user: str) -> str | None: ...

    @abstractmethod
    def audit_trail(self, docname: str) -> list[tuple[AuditEntry, datetime]]:
        """Every audit entry of ``docname``, in the order written, with its time."""

    def close(self) -> None:  # noqa: B027 - optional
        """Release connections."""


class SqlBackend(Backend):
    """SqlStore (SQLAlchemy Core) on any database URL."""

    def __init__(self, url: str, jobs: JobQueue, clock: Clock, settings: AccountSettings):
        super().__init__(SqlStore.from_url(url), jobs, clock, settings)
        self.url, self._others = url, []

    def second_store(self) -> Store:
        other = SqlStore.from_url(self.url, migrate=False)
        self._others.append(other)
        return other

    def add_member(self, name: str, email: str | None, full_name: str, status: str = "Active") -> None:
        first, _, last = full_name.partition(" ")
        row = {"name": name, "member_id": name[4:], "first_name": first, "last_name": last, "full_name": full_name}
        with self.store.transaction():
            self.store.db.execute(insert(members).values(**row, email=email, status=status, creation=START))

    def change_member(self, name: str, **values: str | None) -> None:
        with self.store.transaction():
            self.store.db.execute(update(members).where(members.c.name == name).values(**values))

    def remove_member(self, name: str) -> None:
        with self.store.transaction():
            self.store.db.execute(delete(members).where(members.c.name == name))

    def add_user(self, email: str, full_name: str, roles: tuple[str, ...], member: str | None = None) -> None:
        with self.store.transaction():
            self.store.create_user(email, full_name, roles, None, member, "test")

    def role_profile(self, user: str) -> str | None:
        with self.store.transaction(readonly=True):
            return self.store.db.scalar(select(users.c.role_profile).where(users.c.name == user))

    def audit_trail(self, docname: str) -> list[tuple[AuditEntry, datetime]]:
        a = audit_log.c
        with self.store.transaction(readonly=True):
            rows = self.store.db.execute(
                select(a.reference_doctype, a.reference_name, a.from_status, a.to_status, a.changed_by)
                .add_columns(a.reason, a.worker, a.timestamp)
                .where(a.reference_name == docname)
                .order_by(a.id)
            ).all()
        return [(AuditEntry(*row[:7]), row[7]) for row in rows]

    def close(self) -> None:
        for store in [self.store, *self._others]:
            store.engine.dispose()


@contextmanager
def sqlite_backend(tmp_path: Path, jobs: JobQueue, clock: Clock, settings: AccountSettings) -> Iterator[Backend]:
    backend = SqlBackend(f"sqlite:///{tmp_path / 'contract.sqlite3'}", jobs, clock, settings)
    try:
        yield backend
    finally:
        backend.close()


@contextmanager
def mariadb_backend(tmp_path: Path, jobs: JobQueue, clock: Clock, settings: AccountSettings) -> Iterator[Backend]:
    database = f"verenigingen_contract_{uuid.uuid4().hex[:10]}"
    server = pymysql.connect(**MARIADB)
    try:
        with server.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {database} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        backend = SqlBackend(f"mysql+pymysql://root@127.0.0.1:3306/{database}?charset=utf8mb4", jobs, clock, settings)
        try:
            yield backend
        finally:
            backend.close()
    finally:
        with server.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {database}")
        server.close()


# Every store under the contract.
BACKENDS: dict[str, Callable[..., AbstractContextManager[Backend]]] = {
    "sqlite": sqlite_backend,
    "mariadb": mariadb_backend,
}
# The Frappe store, on a real site, when run with a bench's Python (scripts/frappe-test does).
if os.environ.get("VERENIGINGEN_FRAPPE_SITE"):
    from tests.contract.frappe_backend import frappe_backend

    BACKENDS["frappe"] = frappe_backend
# The bench runs the queue on its own Redis (a database number of the tests' own).
JOBS_REDIS_URL = os.environ.get("VERENIGINGEN_TEST_REDIS_URL", REDIS_URL)
# What a store cannot do by its host's nature: test name -> why, per backend (none today).
NOT_ON: dict[str, dict[str, str]] = {}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def settings() -> AccountSettings:
    """Queues of this test's own (others use the same Redis database); a batch looks for individual requests
    only when a test makes it (no wall-clock dependence)."""
    tag = uuid.uuid4().hex[:8]
    return replace(
        DEFAULT_SETTINGS,
        bulk_queue=f"contract-bulk-{tag}",
        individual_queue=f"contract-individual-{tag}",
        individual_check_seconds=3600.0,
    )


@pytest.fixture
def jobs(settings) -> Iterator[RqJobQueue]:
    """The real RqJobQueue on the test Redis database; only this test's queues are removed afterwards."""
    redis = Redis.from_url(JOBS_REDIS_URL)
    queue = RqJobQueue(redis, settings)
    yield queue
    queue.bulk.delete(delete_jobs=True)
    queue.individual.delete(delete_jobs=True)
    redis.close()


@pytest.fixture
def dead_jobs(settings) -> RqJobQueue:
    """A JobQueue whose Redis cannot be reached (nothing listens on port 1)."""
    return RqJobQueue(Redis.from_url("redis://127.0.0.1:1/0"), settings)


@pytest.fixture(params=list(BACKENDS))
def backend(request, tmp_path, jobs, clock, settings) -> Iterator[Backend]:
    reason = NOT_ON.get(request.param, {}).get(request.node.originalname)
    if reason:
        pytest.skip(reason)
    with BACKENDS[request.param](tmp_path, jobs, clock, settings) as made:
        made.add_user(ADMIN, "Admin", (Roles.ADMINISTRATOR,))
        yield made


def fields(view, *names: str) -> tuple:
    """Some fields of a view, to compare with exact values in one line."""
    return tuple(getattr(view, name) for name in names)


def email_of(member: str) -> str:
    return f"{member.lower()}@vereniging.test"


def full_name_of(member: str) -> str:
    return f"Lid {member}"


def new_request(member: str, tracker: str | None = None, batch: int | None = None, **changes) -> NewRequest:
    """A request as the engine writes it, for a member seeded by ``Backend.add_members``."""
    values = {
        "request_type": "Member",
        "source_record": member,
        "email": email_of(member),
        "full_name": full_name_of(member),
        "roles": (Roles.MEMBER,),
        "role_profile": None,
        "priority": "Low" if tracker else "Normal",
        "requested_by": ADMIN,
        "tracker": tracker,
        "batch_number": batch,
    }
    return NewRequest(**{**values, **changes})
