"""A host whose store misbehaves on purpose, for real worker processes.

Workers load it with VERENIGINGEN_HOST_FACTORY=tests.accounts.faults:make_host. VERENIGINGEN_FAULTS
lists faults, separated by ';':  "retry_once:REGEX", "always_retry:REGEX", "permanent:REGEX",
"leaky:REGEX" (an error whose message quotes personal data) for e-mail addresses matching REGEX, and
"delay:SECONDS" (per user created, to make batches slow enough to kill), "pause:SECONDS" (before every
write transaction, outside it: slow batches that hold no lock, so SQLite's writers still interleave).
"slow_once:SECONDS:REGEX" sleeps the first time a matching user is created (across processes);
"slow_query_once:SECONDS:REGEX" does the same in the database (MariaDB's SLEEP() on the account
transaction's own connection), so that a job's time can run out in the middle of a statement.
"kill_worker_once_after:N" SIGKILLs a worker and its work horse once N users were made in a job, when the
next write transaction begins (between two members: no member is being processed), once across processes.

Faults of a bulk operation's writer (the process queueing requests in chunks):
"kill_after_inserts:N" SIGKILLs the process at its insert_requests call N + 1 (N chunks committed, the
next one never is); "pause_after_inserts:N" stops it, once, between chunk N and whatever comes next: it
sets the Redis key test-faults:paused and waits (at most a minute) until the key test-faults:resume exists.

``python -m tests.accounts.faults ARGS`` runs the verenigingen CLI with this store under its engine calls.
"""

import os
import re
import signal
import time
from contextlib import contextmanager
from functools import cached_property

from sqlalchemy import text

from verenigingen.accounts.errors import ValidationFailed
from verenigingen.standalone.host import StandaloneHost

PAUSED, RESUME = "test-faults:paused", "test-faults:resume"


class FaultyStore:
    def __init__(self, store, redis, spec: str):
        self._store = store
        self._redis = redis
        self._faults = [part.split(":", 1) for part in spec.split(";") if part]
        self._inserts = 0
        self._created = 0  # users made by this process (a work horse: in its job)
        self._paused = False

    def __getattr__(self, name):
        return getattr(self._store, name)

    def create_user(self, email, *args, **kwargs):
        for kind, argument in self._faults:
            if kind == "delay":
                time.sleep(float(argument))
            elif kind in ("slow_once", "slow_query_once"):
                seconds, pattern = argument.split(":", 1)
                if re.search(pattern, email) and self._redis.incr(f"test-faults:{kind}:{email}") == 1:
                    if kind == "slow_once":
                        time.sleep(float(seconds))
                    else:
                        self._store.db.execute(text("SELECT SLEEP(:seconds)"), {"seconds": float(seconds)})
            elif re.search(argument, email):
                attempt = self._redis.incr(f"test-faults:{email}")  # across processes and retries
                if kind == "always_retry" or (kind == "retry_once" and attempt == 1):
                    raise TimeoutError("injected passing fault")
                if kind == "permanent":
                    raise ValidationFailed("injected: the e-mail domain does not accept accounts")
                if kind == "leaky":  # like a database error that quotes the row it choked on
                    raise RuntimeError(f"Duplicate entry '{email}' for key 'email' ({args[0]})")
        user = self._store.create_user(email, *args, **kwargs)
        self._created += 1
        return user

    def insert_requests(self, *args, **kwargs):
        self._inserts += 1
        for kind, argument in self._faults:
            if kind == "kill_after_inserts" and self._inserts > int(argument):
                os.kill(os.getpid(), signal.SIGKILL)  # mid-transaction: this chunk is never committed
        return self._store.insert_requests(*args, **kwargs)

    @contextmanager
    def transaction(self, readonly: bool = False):
        for kind, argument in self._faults:
            if kind == "pause" and not readonly:  # slow work that holds no lock, even on SQLite
                time.sleep(float(argument))
            due = kind == "kill_worker_once_after" and not readonly and self._created >= int(argument)
            if due and self._redis.incr("test-faults:killed") == 1:
                os.kill(os.getppid(), signal.SIGKILL)  # the worker (a work horse's parent), then its horse
                os.kill(os.getpid(), signal.SIGKILL)
            if kind == "pause_after_inserts" and self._inserts == int(argument) and not self._paused:
                self._paused = True  # between two transactions: the writer holds no lock while it waits
                self._redis.set(PAUSED, os.getpid())
                deadline = time.monotonic() + 60
                while not self._redis.exists(RESUME) and time.monotonic() < deadline:
                    time.sleep(0.05)
        with self._store.transaction(readonly):
            yield


def make_host():
    standalone = StandaloneHost()
    host = standalone.host
    host.store = FaultyStore(host.store, standalone.redis, os.environ.get("VERENIGINGEN_FAULTS", ""))
    return host


def run_cli() -> None:
    """The verenigingen CLI, its engine calls on the faulty store (people and imports on the real one)."""
    build = StandaloneHost.host.func

    def faulty_host(standalone: StandaloneHost):
        host = build(standalone)
        host.store = FaultyStore(host.store, standalone.redis, os.environ.get("VERENIGINGEN_FAULTS", ""))
        return host

    patched = cached_property(faulty_host)
    patched.__set_name__(StandaloneHost, "host")
    StandaloneHost.host = patched  # type: ignore[assignment]

    from verenigingen.standalone.cli import main

    main(prog_name="verenigingen")


if __name__ == "__main__":
    run_cli()
