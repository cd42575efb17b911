"""The bulk path: validate, create requests in chunks, enqueue one job per batch, process batches."""

import logging
import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import cast

from verenigingen.accounts.dispatch import dispatch_after_commit
from verenigingen.accounts.eligibility import Refusal, check_members
from verenigingen.accounts.errors import QueueingInterrupted, ValidationFailed, ends_job
from verenigingen.accounts.manager import REQUEST, AccountCreationManager, link_existing_user, with_conflict_retries
from verenigingen.accounts.permissions import BULK_ROLES, require_any_role, require_grantable
from verenigingen.accounts.ports import AuditEntry, Host, NewRequest, NewTracker
from verenigingen.accounts.slots import BatchSlot, SlotLost, take_slot
from verenigingen.accounts.states import RequestStatus, TrackerStatus
from verenigingen.accounts.trackers import TRACKER, complete_tracker_if_done, member_linked, seal_tracker
from verenigingen.text import Text

log = logging.getLogger(__name__)


@dataclass
class BulkQueued:
    """What queue_bulk_account_creation_for_members did: the tracking information for the caller."""

    tracker: str | None
    requested: int
    linked: int
    total_batches: int
    batch_size: int
    enqueued_batches: int
    validation_errors: list[Refusal] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "tracker": self.tracker,
            "requested": self.requested,
            "linked": self.linked,
            "total_batches": self.total_batches,
            "batch_size": self.batch_size,
            "enqueued_batches": self.enqueued_batches,
            "validation_errors": [refusal.as_dict() for refusal in self.validation_errors],
        }


def queue_bulk_account_creation_for_members(
    host: Host,
    actor: str,
    member_names: list[str],
    roles: list[str] | None = None,
    role_profile: str | None = None,
    batch_size: int | None = None,
    priority: str | None = None,
    source_import: str | None = None,
) -> BulkQueued:
    store, settings = host.store, host.settings
    batch_size = batch_size or settings.batch_size
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    role_tuple = tuple(roles or (settings.default_role,))
    with store.transaction():
        actor_roles = store.roles_of(actor)
        require_any_role(actor, actor_roles, BULK_ROLES, Text("create accounts in bulk"))
        require_grantable(actor_roles, role_tuple, role_profile, settings.default_role)
        checked = check_members(store, list(dict.fromkeys(member_names)), settings.eligible_statuses)
    if checked.link:
        with store.transaction():
            for member, user in checked.link:
                link_existing_user(store, member.name, user.name, role_tuple, actor)
            store.add_audit(
                [member_linked(m.name, actor) for m, _ in checked.link],
                host.clock(),
            )
    eligible = checked.eligible
    result = BulkQueued(
        None,
        len(eligible),
        len(checked.link),
        math.ceil(len(eligible) / batch_size),
        batch_size,
        0,
        checked.refused,
    )
    if not eligible:
        return result

    now = host.clock()
    lease = timedelta(seconds=settings.lease_seconds)
    with store.transaction():
        tracker = NewTracker(
            "Account Creation",
            source_import,
            len(eligible),
            result.total_batches,
            batch_size,
            priority or settings.bulk_priority,
            actor,
        )
        result.tracker = store.insert_tracker(tracker, TrackerStatus.PREPARING, now, now + lease)
        store.add_audit(
            [AuditEntry(TRACKER, result.tracker, None, TrackerStatus.PREPARING, actor, Text("created"))], now
        )
    requests = [
        NewRequest(
            "Member",
            m.name,
            cast(str, m.email),  # eligible members have one
            m.full_name,
            role_tuple,
            role_profile,
            priority or settings.bulk_priority,
            actor,
            result.tracker,
            index // batch_size + 1,
        )
        for index, m in enumerate(eligible)
    ]
    result.requested -= _insert_in_chunks(host, actor, result.tracker, requests, result.validation_errors)
    # Sealed in one transaction: only now do workers, the sweeper and completion see its requests.
    if seal_tracker(host, result.tracker, actor) is None and not _sealed_whole(host, result.tracker, result.requested):
        raise QueueingInterrupted(result.tracker)
    result.enqueued_batches = dispatch_after_commit(host)
    return result


def _sealed_whole(host: Host, tracker: str, requested: int) -> bool:
    """The sweeper sealed it after every request was written (this process was merely slow): fine."""
    with host.store.transaction(readonly=True):
        view = host.store.get_tracker(tracker)
    return view is not None and view.status != TrackerStatus.PREPARING and view.total_records == requested


def _insert_in_chunks(host: Host, actor: str, tracker: str, requests: list[NewRequest], refusals: list[Refusal]) -> int:
    """Requests in chunks, one transaction each, renewing the preparation's lease (a writer that stops is
    noticed by the sweeper). A chunk that collides with an open request made meanwhile (an approval,
    another import) goes in one by one; returns how many were refused."""
    store, refused = host.store, 0

    def insert(chunk: list[NewRequest]) -> None:
        now = host.clock()
        with store.transaction():
            if not store.renew_preparation(tracker, now, now + timedelta(seconds=host.settings.lease_seconds)):
                raise QueueingInterrupted(tracker)
            names = store.insert_requests(chunk, RequestStatus.REQUESTED, now)
            reason = Text("bulk operation {tracker}", tracker=tracker)
            store.add_audit([AuditEntry(REQUEST, n, None, RequestStatus.REQUESTED, actor, reason) for n in names], now)

    size = host.settings.request_chunk_size
    for start in range(0, len(requests), size):
        try:
            with_conflict_retries(host, lambda c=requests[start : start + size]: insert(c))
        except ValidationFailed:
            for request in requests[start : start + size]:
                try:
                    with_conflict_retries(host, lambda r=request: insert([r]))
                except ValidationFailed:
                    why = Text("already has an open account request")
                    refusals.append(Refusal(request.source_record, "open_request", why))
                    refused += 1
    return refused


@dataclass
class BatchOutcome:
    completed: int = 0
    failed: int = 0
    retry: int = 0
    skipped: int = 0
    throttled: int = 0  # times the host allowed no new user and the batch waited (no member lost a retry)
    individual: int = 0  # individual requests this batch served on the way (they never wait behind it)
    no_slot: bool = False  # every slot was taken: the batch waits until a finishing batch hands one on
    slot_lost: bool = False  # the slot's lease ran out (the batch stalled): the rest is left to others
    tracker_completed: bool = False


def process_bulk_account_creation_batch(
    host: Host, tracker: str, batch_number: int, generation: int = 0
) -> BatchOutcome:
    """Run every due request of one batch under a batch slot, one member per transaction, serving due
    individual requests in between; then hand the slot on and try to complete the tracker.
    ``generation`` is the job generation this job was enqueued for."""
    store, outcome = host.store, BatchOutcome()
    with store.transaction(readonly=True):
        names = store.batch_requests(tracker, batch_number)
    if names:
        holder = f"{tracker}:{batch_number}@{host.worker}"
        slot = with_conflict_retries(host, lambda: take_slot(host, holder))
        if slot is None:
            outcome.no_slot = True
            _wait_for_a_slot(host, tracker, batch_number, generation)
            return outcome
        try:
            with_conflict_retries(host, lambda: _start(host, tracker, batch_number))
            _run(host, slot, names, outcome, (tracker, batch_number))
        finally:
            _release(host, slot)
            dispatch_after_commit(host)  # the slot goes to the next due batch now, not at the next sweep
    outcome.tracker_completed = complete_tracker_if_done(host, tracker)
    return outcome


def _wait_for_a_slot(host: Host, tracker: str, batch_number: int, generation: int) -> None:
    """Every slot was held. Move the batch to a new job generation (this job's id no longer counts as its
    live job), then look once more: a slot freed meanwhile was handed on while this job still looked
    alive, so this job hands it on itself. Either the freeing batch sees the new generation, or this job
    sees the free slot: the batch is never left without a job while a slot is free."""
    with host.store.transaction():
        host.store.next_generation(tracker, batch_number, generation)
    with host.store.transaction(readonly=True):
        free = host.store.held_slots(host.settings.bulk_queue, host.clock()) < host.settings.max_concurrent_batches
    if free:
        dispatch_after_commit(host)


def _release(host: Host, slot: BatchSlot) -> None:
    """Never hides the exception that ended the batch: a slot not released comes back with its lease."""
    try:
        with_conflict_retries(host, slot.release)
    except Exception as exc:
        log.warning("could not release batch slot %s (%s); its lease frees it", slot.number, type(exc).__name__)


def _start(host: Host, tracker: str, batch_number: int) -> None:
    with host.store.transaction():
        view = host.store.get_tracker(tracker)
        if view is not None and host.store.start_tracker(tracker, batch_number, host.clock()):
            reason = Text("batch {batch} started", batch=batch_number)
            entry = AuditEntry(
                TRACKER, tracker, TrackerStatus.QUEUED, TrackerStatus.PROCESSING, view.requested_by, reason, host.worker
            )
            host.store.add_audit([entry], host.clock())


def _run(host: Host, slot: BatchSlot, names: list[str], outcome: BatchOutcome, batch: tuple[str, int]) -> None:
    manager = AccountCreationManager(host)
    interval = host.settings.individual_check_seconds
    next_check = time.monotonic() + interval
    for name in names:
        if time.monotonic() >= next_check:
            outcome.individual += _serve_individual_requests(host, manager)
            next_check = time.monotonic() + interval
        _yield_to_approvals(host)
        try:
            result = manager.process(name, slot)
        except SlotLost:
            outcome.slot_lost = True
            return
        setattr(outcome, result, getattr(outcome, result) + 1)
        if result == "throttled" and manager.throttled_until is not None:
            until = manager.throttled_until
            with_conflict_retries(host, lambda u=until: _defer(host, *batch, u))
            return


def _yield_to_approvals(host: Host) -> None:
    """Hold back the next member while an approval's account is being made (at most a couple of seconds):
    the approval then waits for the members already under way, not for every batch's next one as well."""
    deadline = time.monotonic() + host.settings.approval_yield_seconds
    while time.monotonic() < deadline:
        with host.store.transaction(readonly=True):
            if not host.store.individual_requests_running(host.clock()):
                return
        time.sleep(0.05)


def _defer(host: Host, tracker: str, batch_number: int, until: datetime) -> None:
    """The host takes no new user before ``until``: the rest of the batch waits with its member (retries
    untouched) and the batch ends; the sweeper enqueues it again when it is due."""
    with host.store.transaction():
        host.store.defer_batch(tracker, batch_number, until)


def _serve_individual_requests(host: Host, manager: AccountCreationManager) -> int:
    """An approval made while every worker runs a batch is served by the first batch that looks, between
    two of its members: it never waits for a whole batch (their own jobs find them done). A fault here
    is the individual path's own business (its job and the sweeper run it again): the batch goes on."""
    served = 0
    try:
        with host.store.transaction(readonly=True):
            due = host.store.due_individual_requests(host.clock(), limit=10)
        for request, _ in due:
            result = manager.process(request)
            if result == "throttled":  # due again later: the sweeper enqueues it then
                break
            served += result != "skipped"
    except Exception as exc:
        if ends_job(exc):
            raise
        log.warning("could not serve an individual request between members (%s)", type(exc).__name__)
    return served
