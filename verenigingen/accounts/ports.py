"""What the engine needs from its host. The standalone host implements these with SQLAlchemy and RQ,
the Frappe host with ``frappe.db`` and ``frappe.enqueue``."""

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from verenigingen.accounts.config import DEFAULT_SETTINGS, AccountSettings


@dataclass(frozen=True)
class MemberView:
    name: str
    member_id: str | None
    email: str | None
    full_name: str
    status: str | None
    user: str | None


@dataclass(frozen=True)
class UserView:
    name: str
    email: str
    full_name: str
    member: str | None


@dataclass(frozen=True)
class RequestView:
    name: str
    request_type: str
    source_record: str
    email: str
    full_name: str
    status: str
    roles: tuple[str, ...]
    role_profile: str | None
    tracker: str | None
    batch_number: int | None
    retry_count: int
    requested_by: str
    error_category: str | None = None
    failure_reason: str | None = None
    created_user: str | None = None


@dataclass(frozen=True)
class NewRequest:
    request_type: str
    source_record: str
    email: str
    full_name: str
    roles: tuple[str, ...]
    role_profile: str | None
    priority: str
    requested_by: str
    tracker: str | None = None
    batch_number: int | None = None


@dataclass(frozen=True)
class NewTracker:
    operation_type: str
    source_import: str | None
    total_records: int
    total_batches: int
    batch_size: int
    priority: str
    requested_by: str


@dataclass(frozen=True)
class TrackerView:
    name: str
    operation_type: str
    source_import: str | None
    status: str
    total_records: int
    processed_records: int
    successful_records: int
    failed_records: int
    current_batch: int
    total_batches: int
    batch_size: int
    requested_by: str
    started_at: datetime | None
    completed_at: datetime | None
    error_summary: str | None


@dataclass(frozen=True)
class AuditEntry:
    doctype: str
    docname: str
    from_status: str | None
    to_status: str
    by: str
    reason: str = ""
    worker: str | None = None


class Store(Protocol):
    """Persistent state. Every method runs inside the current ``transaction()``."""

    def transaction(self, readonly: bool = False) -> AbstractContextManager[None]:
        """Commit when the block ends, roll back (and re-raise) when it raises. ``readonly`` promises
        no writes, so that frequent polling never competes with workers for a write lock."""
        ...

    # people
    def roles_of(self, user: str) -> set[str]: ...
    def get_members(self, names: Iterable[str]) -> dict[str, MemberView]: ...
    def members_with_open_request(self, names: Iterable[str]) -> set[str]: ...
    def find_user(self, email: str) -> UserView | None: ...
    def create_user(
        self,
        email: str,
        full_name: str,
        roles: tuple[str, ...],
        role_profile: str | None,
        member: str,
        by: str,
    ) -> str:
        """Insert the user with its roles in one write; DuplicateUserError if the e-mail is taken."""

    def link_member(self, member: str, user: str) -> None: ...

    # requests
    def insert_requests(self, requests: list[NewRequest], now: datetime) -> list[str]: ...
    def get_request(self, name: str) -> RequestView | None: ...
    def batch_requests(self, tracker: str, batch_number: int) -> list[str]: ...
    def claim_request(self, name: str, worker: str, now: datetime, lease_until: datetime) -> RequestView | None:
        """Queued and due -> Processing, atomically; None when another worker has it or it is not due."""

    def finish_request(
        self,
        name: str,
        worker: str | None,
        status: str,
        now: datetime,
        created_user: str | None = None,
        error_category: str | None = None,
        failure_reason: str | None = None,
    ) -> bool:
        """Processing -> ``status``, only while ``worker`` still holds the claim (the sweeper may have
        taken it back from a worker thought dead); False otherwise."""

    def requeue_request(
        self,
        name: str,
        from_status: str,
        owner: str | None,
        retry_count: int,
        next_retry_at: datetime,
        category: str | None,
        reason: str,
    ) -> bool:
        """Back to Queued for a retry, only if still in ``from_status`` (and held by ``owner``, if given)."""

    def stale_requests(self, now: datetime) -> list[RequestView]: ...
    def due_batches(self, now: datetime) -> list[tuple[str, int, int]]:
        """(tracker, batch, job generation) for every batch with due Queued requests."""

    def due_individual_requests(self, now: datetime) -> list[tuple[str, int]]:
        """(request, job generation) for due individual requests."""

    def next_generation(self, tracker: str | None, batch_or_request: int | str, generation: int) -> bool:
        """Raise the job generation of a batch's (or one individual request's) Queued requests from
        ``generation``; True for the one caller that did (its job's worker died)."""

    def failed_requests(self, tracker: str | None) -> list[RequestView]:
        """Failed requests of one tracker, or of every tracker and the individual path (None)."""

    # trackers
    def insert_tracker(self, tracker: NewTracker, now: datetime) -> str: ...
    def get_tracker(self, name: str) -> TrackerView | None: ...
    def start_tracker(self, name: str, batch_number: int, now: datetime) -> bool:
        """Mark Processing (if Queued) and raise current_batch; True when this call started it."""

    def add_to_tracker(self, name: str, processed: int, successful: int, failed: int) -> None:
        """Atomic increments (SET x = x + n): never a read-modify-write."""

    def complete_tracker_if_done(self, name: str, now: datetime, error_summary: str | None) -> bool:
        """One conditional update; True for exactly one caller once every record is processed."""

    def shrink_tracker(self, name: str, records: int) -> None:
        """Fewer records than planned: some members got an open request elsewhere while queueing."""

    def unfinished_trackers(self) -> list[str]:
        """Trackers in Processing whose every record is processed (a crash between the two steps)."""

    def reopen_tracker(self, name: str, retried: int) -> None:
        """Processing again after an administrator retries ``retried`` failed records."""

    def add_audit(self, entries: list[AuditEntry], now: datetime) -> None: ...


class JobQueue(Protocol):
    """Transport only: the database says what must be done; a job says 'look now'."""

    def enqueue_batch(self, tracker: str, batch_number: int, generation: int = 0) -> str:
        """ENQUEUED, or LIVE when that job already waits or runs (nothing done), or DEAD when it
        exists but its worker stopped (nothing done: the caller moves to the next generation)."""

    def enqueue_individual(self, request: str, generation: int = 0) -> str: ...

    def clean_up(self) -> None:
        """Let the transport notice jobs whose worker died (and free what they held)."""


@dataclass
class Host:
    """The ports an engine call works with, plus who and where it runs."""

    store: Store
    jobs: JobQueue
    clock: Callable[[], datetime]
    settings: AccountSettings = field(default_factory=lambda: DEFAULT_SETTINGS)
    worker: str = "local"


ENQUEUED, LIVE, DEAD = "enqueued", "live", "dead"


def batch_job_id(tracker: str, batch_number: int, generation: int = 0) -> str:
    """Deterministic, so that enqueueing a batch twice is a no-op. A retry or a recovery is a new
    generation and gets a job of its own, never reusing the id of one that may linger."""
    return f"verenigingen-bulk-{tracker}-{batch_number}-{generation}"


def individual_job_id(request: str, generation: int = 0) -> str:
    return f"verenigingen-account-{request}-{generation}"
