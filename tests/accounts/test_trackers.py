"""Every bulk operation's tracker finishes and says how: hidden while it is prepared, sealed by the sweeper
when its writer dies, a status readable at a glance, audited reopening on retry, and commands that say
what is stuck instead of waiting for ever. Real SQLite, MariaDB, Redis and processes."""

import json
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from rq import Worker
from sqlalchemy import func, select, update

from tests.accounts.conftest import ADMIN
from tests.accounts.faults import PAUSED, RESUME, FaultyStore
from tests.accounts.test_import_cli import cli, eligible_in
from verenigingen.accounts.bulk import (
    BatchOutcome,
    process_bulk_account_creation_batch,
    queue_bulk_account_creation_for_members,
)
from verenigingen.accounts.errors import QueueingInterrupted
from verenigingen.accounts.individual import queue_account_creation_for_member
from verenigingen.accounts.retry import retry_failed_requests
from verenigingen.accounts.states import RequestStatus, TrackerStatus
from verenigingen.accounts.sweeper import SweepReport, sweep
from verenigingen.mijnrood.generator import generate_export
from verenigingen.standalone.host import utc_now
from verenigingen.standalone.schema import account_creation_requests as requests_t
from verenigingen.standalone.schema import audit_log, bulk_operation_trackers

ROOT = Path(__file__).resolve().parents[2]
FAULTY = {"VERENIGINGEN_HOST_FACTORY": "tests.accounts.faults:make_host"}
PERMANENT = "injected: the e-mail domain does not accept accounts"
# A writer in a process of its own: queue_bulk_account_creation_for_members on the faulty store.
QUEUE = (
    "import sys; from tests.accounts.faults import make_host; "
    "from verenigingen.accounts.bulk import queue_bulk_account_creation_for_members as queue; "
    "queue(make_host(), sys.argv[1], sys.argv[2:])"
)
# What `status --json` said before it learnt 'stuck' and 'next_retry_at': scripts rely on these keys.
STATUS_KEYS = {
    "name",
    "status",
    "total_records",
    "processed_records",
    "successful_records",
    "failed_records",
    "total_batches",
    "batch_size",
    "current_batch",
    "retry_queue",
    "error_summary",
    "failed",
    "rate_per_minute",  # members a minute since the operation started
    "eta_seconds",  # at that rate, until the last member (None once finished)
}
DUE_BUT_NOBODY = "requests are due but no worker takes them: start workers, and check Redis"


# --- helpers ----------------------------------------------------------------------------------------


def faulty(world, spec: str):
    """The world's host on the store of tests/accounts/faults.py, in this process."""
    return replace(world.host, store=FaultyStore(world.store, world.redis, spec))


def latest_tracker(world) -> str:
    with world.store.transaction(readonly=True):
        return world.store.latest_tracker()


def request_states(world, tracker: str) -> Counter:
    with world.store.transaction(readonly=True):
        return Counter(
            world.store.db.scalars(select(requests_t.c.status).where(requests_t.c.bulk_operation_tracker == tracker))
        )


def requested_members(world, tracker: str) -> list[str]:
    with world.store.transaction(readonly=True):
        return sorted(
            world.store.db.scalars(
                select(requests_t.c.source_record).where(requests_t.c.bulk_operation_tracker == tracker)
            )
        )


def audit_of(world, name: str) -> list[tuple]:
    """(from, to, by, reason) of every audit entry of ``name``, in the order written."""
    a = audit_log.c
    with world.store.transaction(readonly=True):
        rows = world.store.db.execute(
            select(a.from_status, a.to_status, a.changed_by, a.reason).where(a.reference_name == name).order_by(a.id)
        ).all()
    return [tuple(row) for row in rows]


def transitions(world, name: str) -> list[tuple]:
    return [(before, after) for before, after, _, _ in audit_of(world, name)]


def preparation_expires(world, tracker: str):
    t = bulk_operation_trackers.c
    with world.store.transaction(readonly=True):
        return world.store.db.scalar(select(t.preparation_expires_at).where(t.name == tracker))


def due_batches(world) -> list:
    with world.store.transaction(readonly=True):
        return world.store.due_batches(utc_now())


def bulk_jobs(world, tracker: str) -> list:
    return world.redis.keys(f"rq:job:verenigingen-bulk-{tracker}-*")


def counts(view) -> tuple[int, int, int, int]:
    return view.total_records, view.processed_records, view.successful_records, view.failed_records


def wait_for(condition, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


class Clock:
    """The real clock, moved forward on demand (a writer that stalls past its lease, without waiting)."""

    def __init__(self):
        self.offset = timedelta()

    def __call__(self):
        return utc_now() + self.offset


class Interleaved:
    """A store that runs ``action`` once, right after the ``calls``-th call of ``method``: inside that call's
    transaction when ``inside``, otherwise as soon as that transaction is over (no transaction open)."""

    def __init__(self, store, method: str, action, calls: int = 1, inside: bool = False):
        self._store, self._method, self._action, self._calls, self._inside = store, method, action, calls, inside
        self._seen, self._done = 0, False

    def __getattr__(self, name):
        attribute = getattr(self._store, name)
        if name != self._method:
            return attribute

        def watched(*args, **kwargs):
            result = attribute(*args, **kwargs)
            self._seen += 1
            if self._inside and self._seen == self._calls:
                self._action()
            return result

        return watched

    @contextmanager
    def transaction(self, readonly: bool = False):
        with self._store.transaction(readonly):
            yield
        if not self._inside and not self._done and self._seen >= self._calls:
            self._done = True
            self._action()


class SteppedStore:
    """A writer's store that stops after each committed chunk of requests until the test lets it go on."""

    def __init__(self, store):
        self._store = store
        self.committed: queue.Queue[int] = queue.Queue()
        self.go = threading.Semaphore(0)
        self._chunks, self._in_chunk = 0, False

    def __getattr__(self, name):
        return getattr(self._store, name)

    def insert_requests(self, *args, **kwargs):
        self._in_chunk = True
        return self._store.insert_requests(*args, **kwargs)

    @contextmanager
    def transaction(self, readonly: bool = False):
        self._in_chunk = False
        with self._store.transaction(readonly):
            yield
        if self._in_chunk:
            self._chunks += 1
            self.committed.put(self._chunks)
            if not self.go.acquire(timeout=60):
                raise RuntimeError("the test never let the writer go on")

    def step(self) -> int:
        """Let the writer commit its next chunk; the number of that chunk."""
        self.go.release()
        return self.committed.get(timeout=30)

    def let_go(self) -> None:
        """Let the writer run to its end without stopping again."""
        self.go.release(1000)


class Writer(threading.Thread):
    """queue_bulk_account_creation_for_members in a thread, so that the test can act between its chunks."""

    def __init__(self, host, names: list[str]):
        super().__init__(daemon=True)
        self.host, self.names, self.result, self.error = host, names, None, None

    def run(self):
        try:
            self.result = queue_bulk_account_creation_for_members(self.host, ADMIN, self.names)
        except BaseException as exc:
            self.error = exc


def stepped_writer(request, world, names: list[str], chunk: int, clock=None) -> tuple[Writer, SteppedStore]:
    """A writer in chunks of ``chunk``, stopped after its first chunk; never left waiting after the test."""
    store = SteppedStore(world.store)
    settings = replace(world.host.settings, request_chunk_size=chunk)
    writer = Writer(replace(world.host, store=store, settings=settings, clock=clock or world.host.clock), names)
    writer.start()
    request.addfinalizer(lambda: (store.let_go(), writer.join(timeout=30)))
    assert store.committed.get(timeout=30) == 1
    return writer, store


def kill_writer(world, names: list[str], after: int) -> tuple[str, object, object]:
    """A real process queueing ``names`` in chunks of 3, SIGKILLed after ``after`` committed chunks;
    the tracker it left and the times just before it started and just after it died."""
    env = {**world.env, "VERENIGINGEN_FAULTS": f"kill_after_inserts:{after}", "VERENIGINGEN_REQUEST_CHUNK_SIZE": "3"}
    started = utc_now()
    done = subprocess.run(
        [sys.executable, "-c", QUEUE, ADMIN, *names], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    died = utc_now()
    assert done.returncode == -signal.SIGKILL, done.stderr
    return latest_tracker(world), started, died


def lease_runs_out(world, tracker: str, started, died):
    """Check the writer's lease is VERENIGINGEN_LEASE_SECONDS from its last chunk; wait until it ran out."""
    expires = preparation_expires(world, tracker)
    lease = timedelta(seconds=world.host.settings.lease_seconds)
    assert started + lease <= expires <= died + lease
    wait_for(lambda: utc_now() > expires, timeout=30)
    return expires


# --- 1. hidden while prepared ---------------------------------------------------------------------------


def test_a_tracker_is_invisible_to_workers_and_completion_until_every_request_is_committed(make_world, request):
    """Workers, sweeps and completion must never act on half a bulk operation: they could finish it early
    with a wrong total. Here a writer is stopped between two chunks while a real worker and its sweeper run."""
    world = make_world(VERENIGINGEN_LEASE_SECONDS="60")  # the writer is slow, not dead
    names = world.add_members(12)
    world.start_workers(1)
    writer, store = stepped_writer(request, world, names, chunk=4)
    assert store.step() == 2
    tracker = latest_tracker(world)

    assert world.tracker(tracker).status == TrackerStatus.PREPARING
    assert request_states(world, tracker) == {RequestStatus.REQUESTED: 8}
    assert due_batches(world) == []
    assert vars(sweep(world.host)) == vars(SweepReport())
    assert vars(process_bulk_account_creation_batch(world.host, tracker, 1)) == vars(BatchOutcome())
    assert bulk_jobs(world, tracker) == []
    view = world.tracker(tracker)
    assert (view.status, view.current_batch, view.started_at, view.completed_at) == (
        TrackerStatus.PREPARING,
        0,
        None,
        None,
    )
    assert counts(view) == (12, 0, 0, 0)
    assert request_states(world, tracker) == {RequestStatus.REQUESTED: 8}

    assert store.step() == 3
    store.go.release()  # the writer seals
    writer.join(timeout=30)
    assert writer.error is None and (writer.result.tracker, writer.result.requested) == (tracker, 12)
    world.wait_until(lambda: world.tracker(tracker).status in TrackerStatus.FINISHED, timeout=60)
    view = world.tracker(tracker)
    assert (view.status, *counts(view)) == (TrackerStatus.COMPLETED, 12, 12, 12, 0)
    assert audit_of(world, tracker)[:2] == [
        (None, TrackerStatus.PREPARING, ADMIN, "created"),
        (TrackerStatus.PREPARING, TrackerStatus.QUEUED, ADMIN, "12 requests queued"),
    ]


def test_a_sweep_that_finds_a_slow_writer_alive_again_leaves_its_requests_hidden(world, request):
    """The sweeper decides a preparation stopped, then the writer renews its lease and commits a chunk before
    the seal: the seal is refused, and then nothing of the tracker may have become visible either, or workers
    run requests of a Preparing tracker and the writer's own seal counts only what is left."""
    clock = Clock()
    names = world.add_members(16)
    writer, store = stepped_writer(request, world, names, chunk=4, clock=clock)
    assert store.step() == 2
    tracker = latest_tracker(world)
    clock.offset = timedelta(seconds=world.host.settings.lease_seconds + 1)  # the writer stalls past its lease

    def writer_comes_back():
        assert store.step() == 3

    sweeper = replace(world.host, store=Interleaved(world.store, "preparing_trackers", writer_comes_back), clock=clock)
    report = sweep(sweeper)

    assert report.sealed_trackers == 0
    assert world.tracker(tracker).status == TrackerStatus.PREPARING
    assert request_states(world, tracker) == {RequestStatus.REQUESTED: 12}
    assert due_batches(world) == []
    assert store.step() == 4
    store.go.release()
    writer.join(timeout=30)
    assert writer.error is None
    view = world.tracker(tracker)
    assert (view.status, view.total_records) == (TrackerStatus.QUEUED, 16)
    assert request_states(world, tracker) == {RequestStatus.QUEUED: 16}


# --- 2. a writer that dies ---------------------------------------------------------------------------


def test_a_writer_killed_between_chunks_is_sealed_by_the_sweeper_and_finished_by_workers(make_world):
    """A killed import must not leave a tracker Preparing for ever, nor claim members it never requested."""
    world = make_world(**FAULTY, VERENIGINGEN_FAULTS="permanent:^m1@")
    names = world.add_members(10)
    tracker, started, died = kill_writer(world, names, after=2)
    assert world.tracker(tracker).status == TrackerStatus.PREPARING
    assert request_states(world, tracker) == {RequestStatus.REQUESTED: 6}

    expires = preparation_expires(world, tracker)
    early = sweep(replace(world.host, clock=lambda: expires))  # the lease has not run out yet
    assert (early.sealed_trackers, world.tracker(tracker).status) == (0, TrackerStatus.PREPARING)
    lease_runs_out(world, tracker, started, died)
    report = sweep(world.host)

    assert (report.sealed_trackers, report.enqueued_batches) == (1, 1)
    summary = "queueing stopped after 6 of 10 members; the others got no request: queue them again"
    view = world.tracker(tracker)
    assert (view.status, *counts(view), view.error_summary) == (TrackerStatus.QUEUED, 6, 0, 0, 0, summary)
    assert audit_of(world, tracker) == [
        (None, TrackerStatus.PREPARING, ADMIN, "created"),
        (TrackerStatus.PREPARING, TrackerStatus.QUEUED, ADMIN, f"sealed by the sweeper: {summary}"),
    ]
    assert request_states(world, tracker) == {RequestStatus.QUEUED: 6}
    assert requested_members(world, tracker) == names[:6]

    world.run_burst(1)
    view = world.tracker(tracker)
    assert (view.status, *counts(view)) == (TrackerStatus.COMPLETED_WITH_ERRORS, 6, 6, 5, 1)
    assert view.processed_records == view.successful_records + view.failed_records == view.total_records
    assert view.error_summary == f"{summary}; 1 x {PERMANENT}"
    assert view.completed_at is not None


def test_a_writer_killed_before_its_first_chunk_leaves_a_cancelled_tracker(world):
    """Nothing was written: the operation is closed as Cancelled with zero counts, its members free to queue."""
    names = world.add_members(10)
    tracker, started, died = kill_writer(world, names, after=0)
    assert (world.tracker(tracker).status, request_states(world, tracker)) == (TrackerStatus.PREPARING, Counter())
    lease_runs_out(world, tracker, started, died)
    report = sweep(world.host)

    assert (report.sealed_trackers, report.enqueued_batches) == (1, 0)
    summary = "queueing stopped after 0 of 10 members; the others got no request: queue them again"
    view = world.tracker(tracker)
    assert (view.status, *counts(view), view.error_summary) == (TrackerStatus.CANCELLED, 0, 0, 0, 0, summary)
    assert view.completed_at is not None
    assert transitions(world, tracker) == [(None, TrackerStatus.PREPARING), (TrackerStatus.PREPARING, "Cancelled")]
    assert vars(sweep(world.host)) == vars(SweepReport())
    with world.store.transaction(readonly=True):
        assert world.store.members_with_open_request(names) == set()


@pytest.mark.parametrize("chunks", [2, 4], ids=["between-chunks", "before-its-own-seal"])
def test_a_late_writer_gets_queueing_interrupted_and_writes_nothing_more(world, request, chunks):
    """Whether the writer comes back for its next chunk or for its own seal, the sweeper's seal stands:
    the writer writes nothing more. Interrupted half-way it stops with QueueingInterrupted; when every
    request was written before the sweeper sealed them, nothing was lost and the writer carries on."""
    clock = Clock()
    names = world.add_members(16)
    writer, store = stepped_writer(request, world, names, chunk=4, clock=clock)
    for chunk in range(2, chunks + 1):
        assert store.step() == chunk
    tracker = latest_tracker(world)
    clock.offset = timedelta(seconds=world.host.settings.lease_seconds + 1)
    assert sweep(replace(world.host, clock=clock)).sealed_trackers == 1
    sealed = world.tracker(tracker)
    assert (sealed.status, sealed.total_records) == (TrackerStatus.QUEUED, 4 * chunks)
    with world.store.transaction(readonly=True):
        before = (world.store.count(requests_t), world.store.count(audit_log))

    store.let_go()
    writer.join(timeout=30)
    if chunks < 4:
        assert isinstance(writer.error, QueueingInterrupted)
        assert str(writer.error) == f"bulk operation {tracker} was sealed by the sweeper while queueing"
    else:
        assert writer.error is None
        assert sealed.error_summary is None  # nobody was left without a request
    with world.store.transaction(readonly=True):
        assert (world.store.count(requests_t), world.store.count(audit_log)) == before
    assert world.tracker(tracker) == sealed
    assert request_states(world, tracker) == {RequestStatus.QUEUED: 4 * chunks}


def test_a_late_writer_finds_its_tracker_sealed_and_stops_with_one_line(world, tmp_path):
    """A writer that comes back after the sweeper sealed its operation must neither add requests the
    tracker does not count nor crash with a traceback: `import` says what happened in one line."""
    path = tmp_path / "leden.csv"
    generate_export(path, 12, seed=3)
    eligible = eligible_in(path)
    assert eligible > 6
    env = {**world.env, "VERENIGINGEN_FAULTS": "pause_after_inserts:2", "VERENIGINGEN_REQUEST_CHUNK_SIZE": "3"}
    command = [sys.executable, "-m", "tests.accounts.faults", "import", str(path), "--as", ADMIN]
    writer = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: world.redis.exists(PAUSED) or writer.poll() is not None)
        assert writer.poll() is None, writer.communicate()
        tracker = latest_tracker(world)
        expires = preparation_expires(world, tracker)
        wait_for(lambda: utc_now() > expires)
        assert sweep(world.host).sealed_trackers == 1
        summary = f"queueing stopped after 6 of {eligible} members; the others got no request: queue them again"
        sealed = world.tracker(tracker)
        assert (sealed.status, sealed.total_records, sealed.error_summary) == (TrackerStatus.QUEUED, 6, summary)
        with world.store.transaction(readonly=True):
            before = (world.store.count(requests_t), world.store.count(audit_log))

        world.redis.set(RESUME, 1)
        out, err = writer.communicate(timeout=60)
    finally:
        if writer.poll() is None:
            writer.kill()
    assert writer.returncode == 2
    assert err == f"verenigingen: bulk operation {tracker} was sealed by the sweeper while queueing\n"
    assert out == ""
    with world.store.transaction(readonly=True):
        assert (world.store.count(requests_t), world.store.count(audit_log)) == before
    assert world.tracker(tracker) == sealed
    assert request_states(world, tracker) == {RequestStatus.QUEUED: 6}


# --- 3. statuses at a glance -------------------------------------------------------------------------


def test_finished_trackers_say_how_they_finished(make_world):
    """All succeeded, some failed, none succeeded: three different words, with counts and reasons."""
    world = make_world(**FAULTY, VERENIGINGEN_FAULTS=r"permanent:^(some[01]|bad\d+)@")
    trackers = {
        prefix: queue_bulk_account_creation_for_members(world.host, ADMIN, world.add_members(size, prefix=prefix))
        for prefix, size in (("ok", 3), ("some", 4), ("bad", 2))
    }
    world.run_burst(1)
    expected = {
        "ok": (TrackerStatus.COMPLETED, 3, 0, None),
        "some": (TrackerStatus.COMPLETED_WITH_ERRORS, 2, 2, f"2 x {PERMANENT}"),
        "bad": (TrackerStatus.FAILED, 0, 2, f"2 x {PERMANENT}"),
    }
    for prefix, (status, successful, failed, summary) in expected.items():
        name = trackers[prefix].tracker
        view = world.tracker(name)
        total = successful + failed
        assert (view.status, *counts(view), view.error_summary) == (status, total, total, successful, failed, summary)
        assert view.completed_at is not None
        assert audit_of(world, name)[-1] == (
            TrackerStatus.PROCESSING,
            status,
            ADMIN,
            f"{successful} created, {failed} failed",
        )
    failed = trackers["bad"].tracker
    shown = cli(world, "status", failed, "--json", "--stall-timeout", "1")
    assert (shown.returncode, shown.stderr) == (0, "")  # finished is never stuck
    report = json.loads(shown.stdout)
    assert (report["status"], report["stuck"], report["next_retry_at"]) == (TrackerStatus.FAILED, None, None)
    assert set(report) == STATUS_KEYS | {"stuck", "next_retry_at", "unsent"}


def test_a_bulk_operation_whose_members_all_got_requests_meanwhile_is_cancelled(world):
    """Nothing to do is not a failure: every member was approved individually between the check and the
    first chunk, so no request could be made and the tracker says Cancelled, not Completed or Failed."""
    names = world.add_members(4)

    def approvals():
        for name in names:
            queue_account_creation_for_member(world.host, ADMIN, name)

    racing = replace(world.host, store=Interleaved(world.store, "insert_tracker", approvals))
    queued = queue_bulk_account_creation_for_members(racing, ADMIN, names)

    assert (queued.requested, queued.enqueued_batches) == (0, 0)
    assert {(r.member, r.code) for r in queued.validation_errors} == {(n, "open_request") for n in names}
    view = world.tracker(queued.tracker)
    assert (view.status, *counts(view)) == (TrackerStatus.CANCELLED, 0, 0, 0, 0)
    assert (view.error_summary, view.completed_at is not None) == ("no member could be requested", True)
    assert audit_of(world, queued.tracker) == [
        (None, TrackerStatus.PREPARING, ADMIN, "created"),
        (TrackerStatus.PREPARING, TrackerStatus.CANCELLED, ADMIN, "0 requests queued"),
    ]


# --- 4. reopening on retry ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "finished", "successful"),
    [("^m[01]@", TrackerStatus.COMPLETED_WITH_ERRORS, 3), ("^m", TrackerStatus.FAILED, 0)],
)
def test_a_retry_reopens_a_finished_tracker_audited_from_its_real_status(world, fault, finished, successful):
    """The audit trail must say which finished state an administrator reopened, and a reopened tracker must
    not keep the old summary or completion time (it is not finished)."""
    names = world.add_members(5)
    queued = queue_bulk_account_creation_for_members(world.host, ADMIN, names)
    process_bulk_account_creation_batch(faulty(world, f"permanent:{fault}"), queued.tracker, 1)
    failed = 5 - successful
    done = world.tracker(queued.tracker)
    assert (done.status, *counts(done), done.error_summary) == (
        finished,
        5,
        5,
        successful,
        failed,
        f"{failed} x {PERMANENT}",
    )

    assert retry_failed_requests(world.host, ADMIN, queued.tracker).retried == failed
    view = world.tracker(queued.tracker)
    assert (view.status, *counts(view), view.error_summary, view.completed_at) == (
        TrackerStatus.PROCESSING,
        5,
        successful,
        successful,
        0,
        None,
        None,
    )
    assert audit_of(world, queued.tracker)[-1] == (finished, TrackerStatus.PROCESSING, ADMIN, f"{failed} retried")

    process_bulk_account_creation_batch(world.host, queued.tracker, 1)
    view = world.tracker(queued.tracker)
    assert (view.status, *counts(view), view.error_summary) == (TrackerStatus.COMPLETED, 5, 5, 5, 0, None)
    assert transitions(world, queued.tracker) == [
        (None, TrackerStatus.PREPARING),
        (TrackerStatus.PREPARING, TrackerStatus.QUEUED),
        (TrackerStatus.QUEUED, TrackerStatus.PROCESSING),
        (TrackerStatus.PROCESSING, finished),
        (finished, TrackerStatus.PROCESSING),
        (TrackerStatus.PROCESSING, TrackerStatus.COMPLETED),
    ]


def test_a_retry_while_the_tracker_is_processing_writes_no_status_change(world):
    """Processing -> Processing is no transition: an audit entry for it would be noise in the trail."""
    names = world.add_members(10)
    queued = queue_bulk_account_creation_for_members(world.host, ADMIN, names, batch_size=5)
    process_bulk_account_creation_batch(faulty(world, "permanent:^m0@"), queued.tracker, 1)
    trail = audit_of(world, queued.tracker)
    assert world.tracker(queued.tracker).status == TrackerStatus.PROCESSING

    assert retry_failed_requests(world.host, ADMIN, queued.tracker).retried == 1
    view = world.tracker(queued.tracker)
    assert (view.status, *counts(view)) == (TrackerStatus.PROCESSING, 10, 4, 4, 0)
    assert audit_of(world, queued.tracker) == trail

    for batch in (1, 2):
        process_bulk_account_creation_batch(world.host, queued.tracker, batch)
    view = world.tracker(queued.tracker)
    assert (view.status, *counts(view)) == (TrackerStatus.COMPLETED, 10, 10, 10, 0)
    assert transitions(world, queued.tracker)[-1] == (TrackerStatus.PROCESSING, TrackerStatus.COMPLETED)


def test_a_retry_racing_the_last_record_keeps_the_audit_trail_unbroken(world):
    """An administrator retries while the last batch finishes: whatever the order, each audited transition
    must start where the previous one ended, or the trail hides that a finished tracker was reopened."""
    # Batch 1: z0 fails, a0 succeeds; batch 2: a1. The retried member sorts last in the open-request index,
    # so that InnoDB's duplicate check on reopening it locks nothing the last batch needs.
    failing, first, second = world.add_members(1, prefix="z") + world.add_members(2, prefix="a")
    queued = queue_bulk_account_creation_for_members(world.host, ADMIN, [failing, first, second], batch_size=2)
    process_bulk_account_creation_batch(faulty(world, "permanent:^z0@"), queued.tracker, 1)
    assert world.tracker(queued.tracker).status == TrackerStatus.PROCESSING
    last = threading.Thread(target=process_bulk_account_creation_batch, args=(world.host, queued.tracker, 2))

    def last_batch_finishes():
        last.start()
        last.join(timeout=2)  # MariaDB lets it finish now; SQLite makes it wait for the retry's write lock

    racing = replace(world.host, store=Interleaved(world.store, "get_tracker", last_batch_finishes, inside=True))
    assert retry_failed_requests(racing, ADMIN, queued.tracker).retried == 1
    last.join(timeout=60)
    process_bulk_account_creation_batch(world.host, queued.tracker, 1)

    view = world.tracker(queued.tracker)
    assert (view.status, *counts(view)) == (TrackerStatus.COMPLETED, 3, 3, 3, 0)
    trail = transitions(world, queued.tracker)
    assert [before for before, _ in trail] == [None, *(after for _, after in trail[:-1])], trail


# --- 5 and 6. commands that never wait for ever --------------------------------------------------------


def stuck_line(tracker: str, why: str) -> re.Pattern:
    return re.compile(rf"verenigingen: bulk operation {tracker} is stuck: nothing moved for (\d+) s: {why}")


def test_import_wait_and_status_say_what_is_stuck_when_no_worker_takes_the_work(world, tmp_path):
    """An operator (or a cron job) waiting on an import must get an answer: with a worker registered on the
    bulk queue that never works, --wait starts none of its own and nothing moves, so it must exit 3."""
    idle = Worker([world.shost.settings.bulk_queue], connection=world.redis, name=f"idle-{uuid.uuid4().hex[:8]}")
    idle.register_birth()  # listens, never works
    path = tmp_path / "leden.csv"
    generate_export(path, 20, seed=4)
    requested = eligible_in(path)

    started = time.monotonic()
    done = cli(world, "import", str(path), "--wait", "--stall-timeout", "5", "--as", ADMIN, timeout=60)
    elapsed = time.monotonic() - started
    tracker = latest_tracker(world)
    assert done.returncode == 3, done.stderr
    (line,) = done.stderr.splitlines()
    match = stuck_line(tracker, f"{requested} {DUE_BUT_NOBODY}").fullmatch(line)
    assert match, line
    assert 5 <= int(match[1]) <= 12  # the stall timeout, plus at most one 2-s look and a slow machine
    assert 5 <= elapsed <= 25
    assert counts(world.tracker(tracker)) == (requested, 0, 0, 0)

    shown = cli(world, "status", tracker, "--stall-timeout", "5")
    assert shown.returncode == 3
    (line,) = shown.stderr.splitlines()
    assert stuck_line(tracker, f"{requested} {DUE_BUT_NOBODY}").fullmatch(line), line
    assert shown.stdout.splitlines() == [
        f"{tracker} Queued: 0/{requested} processed, 0 created, 0 failed, 0 waiting to retry; batch 0/1"
    ]

    as_json = cli(world, "status", tracker, "--json", "--stall-timeout", "5")
    assert as_json.returncode == 3
    report = json.loads(as_json.stdout)
    assert set(report) == STATUS_KEYS | {"stuck", "next_retry_at", "unsent"}
    assert (report["name"], report["status"], report["total_records"], report["next_retry_at"]) == (
        tracker,
        TrackerStatus.QUEUED,
        requested,
        None,
    )
    assert as_json.stderr == f"verenigingen: bulk operation {tracker} is stuck: {report['stuck']}\n"
    assert report["stuck"].endswith(f"{requested} {DUE_BUT_NOBODY}")


def test_a_tracker_waiting_only_for_a_retry_due_later_is_not_stuck(make_world):
    """A retry due in ten minutes is a reason to wait, not a fault: status exits 0 and says when; once a
    request is due and nobody takes it, the same tracker is stuck."""
    world = make_world(VERENIGINGEN_RETRY_BACKOFF="600")
    names = world.add_members(3)
    queued = queue_bulk_account_creation_for_members(world.host, ADMIN, names)
    assert process_bulk_account_creation_batch(faulty(world, "retry_once:^m"), queued.tracker, 1).retry == 3
    with world.store.transaction(readonly=True):
        due_at = world.store.db.scalar(select(func.min(requests_t.c.next_retry_at)))
    assert due_at - utc_now() > timedelta(seconds=590)
    time.sleep(1.1)  # quieter than the stall timeout below

    shown = cli(world, "status", queued.tracker, "--stall-timeout", "1")
    assert (shown.returncode, shown.stderr) == (0, "")
    assert shown.stdout.splitlines() == [
        f"{queued.tracker} Processing: 0/3 processed, 0 created, 0 failed, 3 waiting to retry; batch 1/1",
        f"  next retry due at {due_at:%Y-%m-%d %H:%M:%S} UTC",
    ]
    as_json = cli(world, "status", queued.tracker, "--json", "--stall-timeout", "1")
    assert as_json.returncode == 0
    report = json.loads(as_json.stdout)
    assert set(report) == STATUS_KEYS | {"stuck", "next_retry_at", "unsent"}
    assert (report["stuck"], report["next_retry_at"], report["retry_queue"]) == (None, due_at.isoformat(), 3)

    with world.store.transaction():
        world.store.db.execute(
            update(requests_t)
            .where(requests_t.c.source_record == names[0])
            .values(next_retry_at=utc_now() - timedelta(seconds=1))
        )
    stuck = cli(world, "status", queued.tracker, "--stall-timeout", "1")
    assert stuck.returncode == 3
    (line,) = stuck.stderr.splitlines()
    assert stuck_line(queued.tracker, f"1 {DUE_BUT_NOBODY}").fullmatch(line), line
