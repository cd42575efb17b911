"""A host whose store misbehaves on purpose, for real worker processes.

Workers load it with VERENIGINGEN_HOST_FACTORY=tests.accounts.faults:make_host. VERENIGINGEN_FAULTS
lists faults, separated by ';':  "retry_once:REGEX", "always_retry:REGEX", "permanent:REGEX",
"leaky:REGEX" (an error whose message quotes personal data) for e-mail addresses matching REGEX, and
"delay:SECONDS" (per user created, to make batches slow enough to kill).
"""

import os
import re
import time

from verenigingen.accounts.errors import ValidationFailed
from verenigingen.standalone.host import StandaloneHost


class FaultyStore:
    def __init__(self, store, redis, spec: str):
        self._store = store
        self._redis = redis
        self._faults = [part.split(":", 1) for part in spec.split(";") if part]

    def __getattr__(self, name):
        return getattr(self._store, name)

    def create_user(self, email, *args, **kwargs):
        for kind, argument in self._faults:
            if kind == "delay":
                time.sleep(float(argument))
            elif re.search(argument, email):
                attempt = self._redis.incr(f"test-faults:{email}")  # across processes and retries
                if kind == "always_retry" or (kind == "retry_once" and attempt == 1):
                    raise TimeoutError("injected passing fault")
                if kind == "permanent":
                    raise ValidationFailed("injected: the e-mail domain does not accept accounts")
                if kind == "leaky":  # like a database error that quotes the row it choked on
                    raise RuntimeError(f"Duplicate entry '{email}' for key 'email' ({args[0]})")
        return self._store.create_user(email, *args, **kwargs)


def make_host():
    standalone = StandaloneHost()
    host = standalone.host
    host.store = FaultyStore(host.store, standalone.redis, os.environ.get("VERENIGINGEN_FAULTS", ""))
    return host
