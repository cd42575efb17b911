"""What the engine needs from its host: the contract every host implements and every store is tested
against (``tests/contract``). The standalone host implements it with SQLAlchemy and RQ, the Frappe host
with ``frappe.db``/documents and ``frappe.enqueue``.

Rules that hold for every ``Store`` method:

* It runs inside the current ``transaction()`` and sees that transaction's own writes; nothing is
  visible to others before the transaction commits. Calling a method outside a transaction, or opening
  a transaction inside another, raises ``RuntimeError``.
* Times are naive UTC ``datetime`` values, given by the engine (``Host.clock``): the bookkeeping never
  reads a store's own clock, so a test can move time. (People documents may carry their host's own
  creation stamps, as Frappe's do.)
* Methods that change a row "only if still in state X" do so in one conditional statement and return
  ``True`` when this call made the change, ``False`` when the row was not in that state (another worker,
  the sweeper or an administrator came first). They never raise for that case.
* Passing faults surface as ``ConflictError`` (deadlock, lock wait, record changed: retried in place) or
  ``RetryableError`` (lost connection, server gone); any other database failure as ``DatabaseError``
  (permanent). Messages never carry row values.
* **People** (members, users, roles) are changed through ``by``, the user who asked: on a host with
  permission checks these run through them as that user, never bypassing them. Everything else is the
  engine's own **bookkeeping** (requests, trackers, batch slots, audit) and has no per-user permission.
* Stores only store: which status a finished tracker gets, when a request is due, when a job
  generation rises, who may do what, are decided by the engine and passed in.
"""

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
    job_generation: int = 0
    processed_by: str | None = None
    lease_expires_at: datetime | None = None
    creation: datetime | None = None


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
    modified: datetime | None = None  # the last time any of its counters or its status moved


@dataclass(frozen=True)
class RequestCounts:
    """Where a tracker's requests are, for progress and for telling 'waiting' from 'stuck'."""

    requested: int = 0  # still being prepared
    due: int = 0  # Queued, and may run now
    waiting: int = 0  # Queued for a retry later
    processing: int = 0  # claimed, lease running
    abandoned: int = 0  # claimed, lease run out (the worker died)
    next_retry_at: datetime | None = None  # the earliest retry still to come
    due_since: datetime | None = None  # when the last retry that is due now fell due


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
    """Persistent state: the source of truth. See the module docstring for the rules every method keeps."""

    def transaction(self, readonly: bool = False) -> AbstractContextManager[None]:
        """Commit when the block ends, roll back (and re-raise) when it raises. Transactions do not nest.
        ``readonly`` promises no writes, so that frequent polling never competes with workers for a lock."""
        ...

    # --- people: run as ``by`` where the host checks permissions -------------------------------------
    def roles_of(self, user: str) -> set[str]:
        """The roles ``user`` holds now (empty for an unknown user)."""
        ...

    def get_members(self, names: Iterable[str]) -> dict[str, MemberView]:
        """The members that exist among ``names``, by name; missing ones are simply absent."""
        ...

    def lock_member(self, name: str) -> MemberView | None:
        """Read one member and hold it until the transaction ends: a concurrent change (an import
        changing the e-mail) waits for this transaction instead of slipping in between."""
        ...

    def find_user(self, email: str) -> UserView | None:
        """The user whose e-mail is ``email`` (stored e-mails are lower case)."""
        ...

    def create_user(
        self,
        email: str,
        full_name: str,
        roles: tuple[str, ...],
        role_profile: str | None,
        member: str,
        by: str,
    ) -> str:
        """Insert the user with its roles and role profile in one write, linked to ``member``; returns its
        name. ``DuplicateUserError`` (and nothing written) when the e-mail or the member is taken."""
        ...

    def grant_roles(self, user: str, roles: tuple[str, ...], role_profile: str | None, by: str) -> None:
        """Add the roles ``user`` lacks (keeping the others) and set ``role_profile`` when given."""
        ...

    def link_member(self, member: str, user: str, by: str) -> None:
        """Point the member at its user, and the user at the member when it has none yet."""
        ...

    # --- requests (bookkeeping) ----------------------------------------------------------------------
    def members_with_open_request(self, names: Iterable[str]) -> set[str]:
        """Those of ``names`` with a request that is Requested, Queued or Processing."""
        ...

    def insert_requests(self, requests: list[NewRequest], status: str, now: datetime) -> list[str]:
        """Insert requests in ``status`` (Requested or Queued), names in order. ``ValidationFailed`` when
        one of the members already has an open request; the transaction must then be rolled back."""
        ...

    def get_request(self, name: str) -> RequestView | None: ...

    def batch_requests(self, tracker: str, batch_number: int) -> list[str]:
        """The Queued requests of one batch, in a stable order (due or not: claiming decides)."""
        ...

    def claim_request(self, name: str, worker: str, now: datetime, lease_until: datetime) -> RequestView | None:
        """Queued and due (no ``next_retry_at`` or one not after ``now``) -> Processing, held by
        ``worker`` until ``lease_until``. The request as claimed, or None when it was not claimable."""
        ...

    def finish_request(
        self,
        name: str,
        worker: str | None,
        status: str,
        now: datetime,
        created_user: str | None = None,
        error_category: str | None = None,
        failure_reason: str | None = None,
        lease_expired_before: datetime | None = None,
    ) -> bool:
        """Processing -> ``status`` (Completed or Failed), only while ``worker`` still holds the claim with
        a lease not run out at ``now`` (when ``worker`` is None: any holder, and when ``lease_expired_before``
        is given, only if the lease ran out before it); the member may get a new request afterwards.
        False when the claim was lost."""
        ...

    def requeue_request(
        self,
        name: str,
        from_status: str,
        owner: str | None,
        retry_count: int,
        generation: int,
        next_retry_at: datetime | None,
        category: str | None,
        reason: str | None,
        lease_expired_before: datetime | None = None,
    ) -> bool:
        """Back to Queued (open again), only if still in ``from_status``, held by ``owner`` (when given)
        and with a lease that ran out before ``lease_expired_before`` (when given): all in one conditional
        update. ``ValidationFailed`` when reopening it would give its member a second open request."""
        ...

    def stale_requests(self, now: datetime) -> list[RequestView]:
        """Processing requests whose lease ran out before ``now``."""
        ...

    def due_batches(self, now: datetime, limit: int | None = None) -> list[tuple[str, int, int]]:
        """(tracker, batch, job generation) of every batch with due Queued requests, oldest first."""
        ...

    def due_individual_requests(self, now: datetime, limit: int | None = None) -> list[tuple[str, int]]:
        """(request, job generation) of due Queued requests outside any tracker, oldest first."""
        ...

    def individual_requests_running(self, now: datetime) -> int:
        """Requests outside any tracker being processed now (Processing, lease not run out at ``now``)."""
        ...

    def defer_batch(self, tracker: str, batch_number: int, until: datetime) -> int:
        """Make the batch's Queued requests due no earlier than ``until`` (retries untouched); how many."""
        ...

    def next_generation(self, tracker: str | None, batch_or_request: int | str, generation: int) -> bool:
        """Raise the job generation of a batch's (or one individual request's) Queued requests from
        ``generation`` to ``generation + 1``; True for the one caller that did."""
        ...

    def failed_requests(self, tracker: str | None) -> list[RequestView]:
        """Failed requests of one tracker, or of every tracker and the individual path (None); oldest first."""
        ...

    def request_counts(self, tracker: str, now: datetime) -> RequestCounts:
        """Where the open requests of ``tracker`` are right now."""
        ...

    def queue_requested(self, tracker: str) -> list[str]:
        """Requested -> Queued for every request of ``tracker``; exactly the names returned moved."""
        ...

    # --- trackers (bookkeeping) ----------------------------------------------------------------------
    def insert_tracker(self, tracker: NewTracker, status: str, now: datetime, lease_until: datetime) -> str:
        """A new tracker in ``status``; ``lease_until`` is how long a Preparing one may go unrenewed."""
        ...

    def get_tracker(self, name: str) -> TrackerView | None: ...

    def renew_preparation(self, name: str, now: datetime, lease_until: datetime) -> bool:
        """Extend a Preparing tracker's lease (``modified`` becomes ``now``: it is moving); False when it
        is no longer Preparing (the sweeper sealed it)."""
        ...

    def seal_tracker(
        self,
        name: str,
        status: str,
        total_records: int,
        now: datetime,
        error_summary: str | None = None,
        lease_expired_before: datetime | None = None,
    ) -> bool:
        """Preparing -> ``status`` with its real total (only if its preparation lease ran out before
        ``lease_expired_before``, when given); ``completed_at`` is set when ``status`` is a finished one."""
        ...

    def preparing_trackers(self, lease_expired_before: datetime) -> list[str]:
        """Preparing trackers whose preparation lease ran out before the given time."""
        ...

    def start_tracker(self, name: str, batch_number: int, now: datetime) -> bool:
        """Raise current_batch to ``batch_number`` (never lower it), and Queued -> Processing; True when
        this call started it."""
        ...

    def add_to_tracker(self, name: str, processed: int, successful: int, failed: int, now: datetime) -> None:
        """Atomic increments (SET x = x + n), never a read-modify-write; ``modified`` becomes ``now``."""
        ...

    def finish_tracker(
        self, name: str, status: str, successful: int, failed: int, now: datetime, error_summary: str | None
    ) -> bool:
        """Processing -> ``status``, only while every record is processed and the counts are still
        ``successful``/``failed``: exactly one caller wins."""
        ...

    def unfinished_trackers(self) -> list[str]:
        """Trackers in Processing whose every record is processed (a crash between the two steps)."""
        ...

    def reopen_tracker(self, name: str, retried: int, from_status: str, now: datetime) -> bool:
        """Processing again after ``retried`` failed records are retried, only if still in ``from_status``:
        counters down by that many, ``completed_at`` and ``error_summary`` cleared."""
        ...

    # --- batch slots (bookkeeping): at most N bulk batches run at once, on every host -----------------
    def take_slot(self, pool: str, slot: int, holder: str, now: datetime, lease_until: datetime) -> bool:
        """Hold slot ``slot`` of ``pool`` until ``lease_until`` if it is free, its lease ran out before
        ``now``, or it was never used; one conditional write, True for the one caller that got it."""
        ...

    def renew_slot(self, pool: str, slot: int, holder: str, lease_until: datetime) -> bool:
        """Extend the lease while ``holder`` still holds the slot; False when it was lost."""
        ...

    def release_slot(self, pool: str, slot: int, holder: str) -> bool:
        """Free the slot if ``holder`` still holds it."""
        ...

    def held_slots(self, pool: str, now: datetime) -> int:
        """How many slots of ``pool`` are held with a lease running past ``now``."""
        ...

    # --- audit (bookkeeping) --------------------------------------------------------------------------
    def add_audit(self, entries: list[AuditEntry], now: datetime) -> None:
        """Append; entries are never changed or removed."""
        ...


class JobQueue(Protocol):
    """Transport only: the database says what must be done; a job says 'look now'."""

    def enqueue_batch(self, tracker: str, batch_number: int, generation: int = 0) -> str:
        """ENQUEUED, or LIVE when that job already waits or runs (nothing done), or DEAD when it
        exists but its worker stopped (nothing done: the caller moves to the next generation)."""
        ...

    def enqueue_individual(self, request: str, generation: int = 0) -> str:
        """As ``enqueue_batch``, on the queue workers serve first."""
        ...

    def clean_up(self) -> None:
        """Let the transport notice jobs whose worker died."""
        ...


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
