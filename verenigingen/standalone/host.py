"""Build the standalone host from the environment: one data folder, a database URL, a Redis URL.

VERENIGINGEN_HOME   the data folder (default ./.verenigingen); delete it to start afresh
VERENIGINGEN_DB     SQLAlchemy URL (default: SQLite file in the data folder)
VERENIGINGEN_REDIS  Redis URL (default: the data folder's embedded Redis, started on demand; see embedded.py)
"""

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path

from redis import Redis
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from verenigingen.accounts.config import AccountSettings, SettingsError
from verenigingen.accounts.errors import IntegrityConflict
from verenigingen.accounts.ports import Host
from verenigingen.accounts.states import Roles
from verenigingen.standalone import embedded
from verenigingen.standalone.queue import RqJobQueue
from verenigingen.standalone.schema import users
from verenigingen.standalone.store import SqlStore

OPERATOR = "operator@localhost"  # the standalone administrator, created with the data folder


class DataFolderError(RuntimeError):
    """The data folder is missing (for a command that never creates one), a file, or cannot be made."""


def _default_db_url(home: Path) -> str:
    return f"sqlite:///{home / 'verenigingen.sqlite3'}"


def _unusable_db_url(url: str, exc: Exception) -> str:
    if isinstance(exc, ImportError):
        return f"VERENIGINGEN_DB needs the Python package {exc.name or exc}, which is not installed"
    try:
        kind = make_url(url).drivername
    except ArgumentError:  # the URL itself is not echoed: it may hold a password
        return "VERENIGINGEN_DB is not a database URL (e.g. mysql+pymysql://user@host/db?charset=utf8mb4)"
    return f"VERENIGINGEN_DB names a kind of database SQLAlchemy does not know: {kind}"


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
        db_url = os.environ.get("VERENIGINGEN_DB") or _default_db_url(home)
        return cls(home, db_url, os.environ.get("VERENIGINGEN_REDIS") or None)

    def make_home(self) -> None:
        """The data folder holds IBANs and birth dates (database, rejected rows): its owner's only."""
        if self.home.exists() and not self.home.is_dir():
            raise DataFolderError(f"the data folder {self.home} is a file: set VERENIGINGEN_HOME to a folder")
        try:
            self.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise DataFolderError(f"the data folder {self.home} cannot be created ({exc.strerror or exc})") from None

    def keeps_data_in_home(self) -> bool:
        """The default database or the embedded Redis live in the data folder."""
        return self.embedded_redis() or self.db_url == _default_db_url(self.home)

    def require_home(self) -> None:
        """For commands that only read or work on what a data folder holds: never create an empty one."""
        if not self.home.exists():
            raise DataFolderError(
                f"no data folder at {self.home}: run `verenigingen import FILE` first or set VERENIGINGEN_HOME"
            )
        self.make_home()  # a file in its place says so

    def embedded_redis(self) -> bool:
        return not self.redis_url or self.redis_url == embedded.url(self.home)

    def child_env(self) -> dict[str, str]:
        """What a worker process needs to reach the same database and Redis (an embedded one it finds,
        or starts again, through the data folder)."""
        return {
            **os.environ,
            "VERENIGINGEN_HOME": str(self.home),
            "VERENIGINGEN_DB": self.db_url,
            "VERENIGINGEN_REDIS": "" if self.embedded_redis() else self.redis_url or "",
        }


class StandaloneHost:
    """Owns the connections of one process; ``host`` is the engine's view of them."""

    def __init__(self, environment: Environment | None = None, settings: AccountSettings | None = None):
        self.environment = environment or Environment.from_env()
        self.settings = settings or AccountSettings.from_env()

    @cached_property
    def store(self) -> SqlStore:
        self.environment.make_home()
        try:
            store = SqlStore.from_url(self.environment.db_url)  # creates the tables once, under a database lock
        except (ArgumentError, ImportError) as exc:  # NoSuchModuleError is an ArgumentError
            raise SettingsError(_unusable_db_url(self.environment.db_url, exc)) from None
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
        if not self.environment.redis_url:  # the data folder's own Redis, shared by every process using it
            self.environment.make_home()
            self.environment.redis_url = embedded.ensure_running(self.environment.home)
        try:
            return Redis.from_url(self.environment.redis_url)
        except ValueError as exc:
            raise SettingsError(f"VERENIGINGEN_REDIS is not a Redis URL ({exc})") from None

    @cached_property
    def host(self) -> Host:
        # Unique per process, even across containers that share a host name and pid numbers.
        worker = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        return Host(self.store, RqJobQueue(self.redis, self.settings), utc_now, self.settings, worker)
