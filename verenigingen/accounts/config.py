"""Every tunable of account creation, in one place."""

import os
from dataclasses import dataclass, replace
from typing import Any

from verenigingen.dutch import InvalidValue
from verenigingen.dutch.membership import parse_extra_types


class SettingsError(ValueError):
    """An operator's setting that cannot be used, named with what it must be."""


@dataclass(frozen=True)
class AccountSettings:
    batch_size: int = 50  # requests per bulk job
    request_chunk_size: int = 100  # requests created per transaction when queueing in bulk
    max_concurrent_batches: int = 5  # across every host and worker
    batch_timeout: int = 1800  # seconds a bulk job may run
    individual_timeout: int = 300
    bulk_queue: str = "bulk"
    individual_queue: str = "individual"  # served before bulk work
    bulk_priority: str = "Low"
    retry_backoff: tuple[int, ...] = (300, 600, 1200)  # seconds before retry 1, 2, 3
    lease_seconds: int = 120  # a claim (request, batch slot, preparation) not renewed for this long lost its worker
    sweep_interval: int = 30
    job_monitoring_interval: int = 30  # a job whose worker sent no heartbeat for 3 of these is dead
    conflict_attempts: int = 5  # tries of a member's transaction on deadlocks and lock waits, before a retry
    conflict_pause: tuple[float, float] = (0.02, 0.25)  # jittered pause between those tries, in seconds
    individual_check_seconds: float = 0.5  # how often a running batch looks for individual requests to serve
    # How long a batch holds back its next member while an approval's account is being made: on Frappe every
    # new user takes one site-wide lock (its defaults row) until it commits, and five batches queueing for it
    # would starve the approval.
    approval_yield_seconds: float = 2.0
    stall_seconds: int = 300  # nothing moved for this long (and no retry due later): a tracker is stuck
    default_role: str = "Verenigingen Member"
    eligible_statuses: frozenset[str] = frozenset({"Active"})
    # The association's own membership names and the status each means, e.g. (("Erelid", "Active"),).
    membership_types: tuple[tuple[str, str], ...] = ()

    @property
    def max_retries(self) -> int:
        return len(self.retry_backoff)

    def backoff(self, retry_number: int) -> int:
        """Seconds to wait before retry ``retry_number`` (1-based)."""
        return self.retry_backoff[min(retry_number, len(self.retry_backoff)) - 1]

    @classmethod
    def from_env(cls, environ=os.environ) -> "AccountSettings":
        """Defaults, with the operator's overrides: VERENIGINGEN_RETRY_BACKOFF="300,600,1200",
        VERENIGINGEN_LEASE_SECONDS, VERENIGINGEN_SWEEP_INTERVAL, VERENIGINGEN_MAX_CONCURRENT_BATCHES,
        VERENIGINGEN_JOB_MONITORING_INTERVAL, VERENIGINGEN_STALL_SECONDS, VERENIGINGEN_BATCH_SIZE,
        VERENIGINGEN_BATCH_TIMEOUT, VERENIGINGEN_REQUEST_CHUNK_SIZE, VERENIGINGEN_INDIVIDUAL_CHECK_SECONDS,
        VERENIGINGEN_BULK_QUEUE, VERENIGINGEN_INDIVIDUAL_QUEUE,
        VERENIGINGEN_MEMBERSHIP_TYPES="Erelid=Active; Proeflid=Active"."""
        overrides: dict[str, Any] = {}
        if backoff := environ.get("VERENIGINGEN_RETRY_BACKOFF"):
            overrides["retry_backoff"] = tuple(
                _whole_number("VERENIGINGEN_RETRY_BACKOFF", s) for s in backoff.split(",")
            )
        for name in _INTEGER_SETTINGS:
            if value := environ.get(f"VERENIGINGEN_{name.upper()}"):
                overrides[name] = _whole_number(f"VERENIGINGEN_{name.upper()}", value)
        if value := environ.get("VERENIGINGEN_INDIVIDUAL_CHECK_SECONDS"):
            overrides["individual_check_seconds"] = _seconds("VERENIGINGEN_INDIVIDUAL_CHECK_SECONDS", value)
        for name in ("bulk_queue", "individual_queue"):
            if value := environ.get(f"VERENIGINGEN_{name.upper()}"):
                overrides[name] = value
        if value := environ.get("VERENIGINGEN_MEMBERSHIP_TYPES"):
            try:
                overrides["membership_types"] = tuple(parse_extra_types(value).items())
            except InvalidValue as exc:
                raise SettingsError(f"VERENIGINGEN_MEMBERSHIP_TYPES: {exc.message}") from None
        settings = replace(cls(), **overrides)
        return settings


_INTEGER_SETTINGS = (
    "lease_seconds",
    "sweep_interval",
    "max_concurrent_batches",
    "job_monitoring_interval",
    "stall_seconds",
    "batch_size",
    "batch_timeout",
    "request_chunk_size",
)


def _seconds(variable: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = 0
    if not number > 0:
        raise SettingsError(f"{variable} must be a number of seconds above 0, not {value!r}")
    return number


def _whole_number(variable: str, value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise SettingsError(f"{variable} must be a whole number of at least 1, not {value!r}")
    return number


DEFAULT_SETTINGS = AccountSettings()
