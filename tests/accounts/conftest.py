"""Real parts for the engine tests: Redis (own database number), SQLite and MariaDB (own databases),
RQ workers in subprocesses."""

import ctypes
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pymysql
import pytest
from redis import Redis
from sqlalchemy import func, insert, select

from verenigingen.accounts.config import AccountSettings
from verenigingen.accounts.states import Roles
from verenigingen.standalone.host import Environment, StandaloneHost
from verenigingen.standalone.schema import account_creation_requests, members

REDIS_DB = int(os.environ.get("VERENIGINGEN_TEST_REDIS_DB", "13"))
REDIS_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"
MARIADB = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}
ADMIN = "admin@vereniging.test"
FAST = {
    "VERENIGINGEN_RETRY_BACKOFF": "1,1,1",
    "VERENIGINGEN_LEASE_SECONDS": "3",
    "VERENIGINGEN_SWEEP_INTERVAL": "2",
}


@pytest.fixture
def redis_url():
    connection = Redis.from_url(REDIS_URL)
    connection.flushdb()
    yield REDIS_URL
    connection.flushdb()


@pytest.fixture(params=["sqlite", "mariadb"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.sqlite3'}"
        return
    database = f"verenigingen_test_{uuid.uuid4().hex[:10]}"
    server = pymysql.connect(**MARIADB)
    with server.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {database} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    try:
        yield f"mysql+pymysql://root@127.0.0.1:3306/{database}?charset=utf8mb4"
    finally:
        with server.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {database}")
        server.close()


def _die_with_parent() -> None:
    """Linux: the worker gets SIGTERM when the test process goes, however it goes."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class World:
    """A standalone host on test services, plus helpers to seed members and run workers."""

    def __init__(self, home: Path, db_url: str, redis_url: str, env: dict[str, str]):
        self.env = {
            **os.environ,
            "VERENIGINGEN_HOME": str(home),
            "VERENIGINGEN_DB": db_url,
            "VERENIGINGEN_REDIS": redis_url,
            **env,
        }
        self.shost = StandaloneHost(Environment(home, db_url, redis_url), AccountSettings.from_env(self.env))
        self.host = self.shost.host
        self.store = self.shost.store
        self.redis = self.shost.redis
        self.workers: list[subprocess.Popen] = []
        self.add_user(ADMIN, "Admin", Roles.ADMINISTRATOR)

    def add_user(self, email: str, full_name: str, *roles: str, member: str | None = None) -> None:
        with self.store.transaction():
            self.store.create_user(email, full_name, roles, None, member, "test")

    def add_members(self, count: int, status: str = "Active", prefix: str = "m") -> list[str]:
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        rows = [
            {
                "name": f"MEM-{prefix}{i:05d}",
                "member_id": f"{prefix}{i}",
                "first_name": "Lid",
                "last_name": f"Nummer {i}",
                "full_name": f"Lid Nummer {i}",
                "email": f"{prefix}{i}@vereniging.test",
                "status": status,
                "creation": now,
                "modified": now,
            }
            for i in range(count)
        ]
        with self.store.transaction():
            if rows:
                self.store.db.execute(insert(members), rows)
        return [row["name"] for row in rows]

    def start_workers(self, count: int, queues: str | None = None, burst: bool = False, log: Path | None = None):
        command = [sys.executable, "-m", "verenigingen.standalone.cli", "worker"]
        if queues:  # the test names queues by role; this world's queues have names of their own
            names = {"bulk": self.shost.settings.bulk_queue, "individual": self.shost.settings.individual_queue}
            command += ["--queues", ",".join(names[q] for q in queues.split(","))]
        command += ["--burst"] if burst else []
        out = log.open("ab") if log else subprocess.DEVNULL
        started = [
            subprocess.Popen(command, env=self.env, stdout=out, stderr=out, preexec_fn=_die_with_parent)
            for _ in range(count)
        ]
        self.workers += started
        return started

    def registered_workers(self) -> int:
        """Workers that RQ lists on this world's bulk queue (they register once started up)."""
        from rq import Worker

        return sum(self.shost.settings.bulk_queue in w.queue_names() for w in Worker.all(connection=self.redis))

    def run_burst(self, count: int = 1, timeout: float = 120) -> None:
        for process in self.start_workers(count, burst=True):
            process.wait(timeout=timeout)

    def tracker(self, name: str):
        with self.store.transaction(readonly=True):
            return self.store.get_tracker(name)

    def wait_until(self, condition, timeout: float = 120, sweep: bool = False) -> None:
        from verenigingen.accounts.sweeper import sweep as run_sweep

        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met in time; {self.describe()}")
            if sweep:
                run_sweep(self.host)
            time.sleep(0.2)

    def describe(self) -> str:
        """What the database and the workers look like, for a failure message."""
        r = account_creation_requests.c
        with self.store.transaction(readonly=True):
            states = self.store.db.execute(
                select(r.status, r.job_generation, r.retry_count, func.count()).group_by(
                    r.status, r.job_generation, r.retry_count
                )
            ).all()
        jobs = Counter(self.redis.hget(key, "status") for key in self.redis.keys("rq:job:*"))
        return f"requests {states}; jobs {dict(jobs)}; workers {[w.poll() for w in self.workers]}"

    def stop_workers(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                process.terminate()
        for process in self.workers:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
        self.workers = []


@pytest.fixture
def make_world(tmp_path, db_url, redis_url):
    worlds = []

    def make(**env) -> World:
        # Queues of its own: a worker left over from another run can never take this test's jobs.
        queues = {
            "VERENIGINGEN_BULK_QUEUE": f"bulk-{uuid.uuid4().hex[:8]}",
            "VERENIGINGEN_INDIVIDUAL_QUEUE": f"individual-{uuid.uuid4().hex[:8]}",
        }
        world = World(tmp_path / f"home{len(worlds)}", db_url, redis_url, {**FAST, **queues, **env})
        worlds.append(world)
        return world

    yield make
    for world in worlds:
        world.stop_workers()
        world.store.engine.dispose()


@pytest.fixture
def world(make_world) -> World:
    return make_world()
