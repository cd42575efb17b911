"""RQ workers for the standalone host, with the periodic sweep in a process beside them."""

import logging
import os
import subprocess
import sys
import time

from rq import Worker

from verenigingen.accounts.config import AccountSettings
from verenigingen.accounts.sweeper import sweep
from verenigingen.standalone import jobs, resilient
from verenigingen.standalone.host import StandaloneHost
from verenigingen.standalone.problems import redis_named, safe_db_url
from verenigingen.standalone.processes import child_of_ours, end_children, registered_worker, signals_held
from verenigingen.standalone.queue import worker_alive

log = logging.getLogger(__name__)
RESTART_PAUSE = 10  # seconds before a command starts workers again when the ones it started stopped


def sweep_once(shost: StandaloneHost) -> bool:
    """Sweep unless another process did within the interval (a Redis lock that expires by itself)."""
    lock = f"verenigingen:sweep-lock:{shost.settings.bulk_queue}"
    if not shost.redis.set(lock, os.getpid(), nx=True, ex=shost.settings.sweep_interval):
        return False
    sweep(shost.host)
    return True


def sweep_loop(shost: StandaloneHost, parent: int | None = None) -> None:
    """Sweep every half interval; with ``parent``, only for as long as that process is our parent
    (a worker that died, even before this process got going, takes its sweeper with it). A sweep that
    keeps failing (Redis away) is said once, not at every interval."""
    failing = None
    while parent is None or os.getppid() == parent:
        try:
            sweep_once(shost)
            if failing:
                log.warning("verenigingen sweep: sweeping again")
            failing = None
        except Exception as exc:  # tried again at the next interval; the type only: no data in logs
            if type(exc).__name__ != failing:
                log.warning("verenigingen sweep: sweep failed (%s); trying again later", type(exc).__name__)
            failing = type(exc).__name__
        deadline = time.monotonic() + shost.settings.sweep_interval / 2
        while time.monotonic() < deadline and (parent is None or os.getppid() == parent):
            time.sleep(min(1.0, shost.settings.sweep_interval / 2))


def heartbeat_seconds(settings: AccountSettings) -> int:
    """How often a worker of ours beats: busy, every monitoring interval; idle, every RQ dequeue timeout,
    which is its worker_ttl minus 15 (see run_worker)."""
    return max(15, settings.job_monitoring_interval)


def listening_patience(settings: AccountSettings) -> float:
    return 3 * heartbeat_seconds(settings) + 5


def serving_line(shost: StandaloneHost, queues: list[str]) -> str:
    environment = shost.environment
    return (
        f"verenigingen worker: serving queues {', '.join(queues)}; "
        f"database {safe_db_url(environment.db_url)}; {redis_named(environment)}"
    )


def run_worker(shost: StandaloneHost, queues: list[str], burst: bool = False) -> None:
    """A worker that takes queues in the order given: individual requests before bulk batches.

    The sweep runs in a process of its own: a thread beside RQ's fork-per-job could hold a lock at
    the moment of a fork and leave the work horse waiting for it forever.
    """
    jobs.warm_up(shost)  # build the host once; every forked work horse inherits it
    print(serving_line(shost, queues), file=sys.stderr, flush=True)
    sweeper = None
    if not burst:
        command = [sys.executable, "-m", "verenigingen.standalone.cli", "sweep", "--loop", "--parent", str(os.getpid())]
        sweeper = subprocess.Popen(command, env=shost.environment.child_env(), preexec_fn=child_of_ours)
    try:
        with registered_worker(shost.environment.home):  # `verenigingen stop` finds it there
            resilient.work(shost, queues, burst, worker_ttl=heartbeat_seconds(shost.settings) + 15)
    finally:
        if sweeper is not None:
            end_children([sweeper], patience=5)


def bulk_workers_listening(shost: StandaloneHost) -> int:
    """Live workers on the bulk queue."""
    patience = listening_patience(shost.settings)
    workers = Worker.all(connection=shost.redis)
    return sum(shost.settings.bulk_queue in w.queue_names() and worker_alive(w, patience) for w in workers)


def start_worker_processes(shost: StandaloneHost, count: int) -> list[subprocess.Popen]:
    """Worker processes for the duration of a command (``import --wait`` with nobody listening)."""
    shost.redis  # noqa: B018 - an embedded Redis must be running before the workers look for it
    env = shost.environment.child_env()
    command = [sys.executable, "-m", "verenigingen.standalone.cli", "worker"]
    out = subprocess.DEVNULL
    return [subprocess.Popen(command, env=env, stdout=out, stderr=out, preexec_fn=child_of_ours) for _ in range(count)]


def stop_worker_processes(processes: list[subprocess.Popen]) -> None:
    end_children(processes)


class WorkerSupply:
    """Workers of a command's own while no live worker listens; decided again while it waits, so that
    workers that go away are replaced. Stops what it started, whatever ends the command."""

    def __init__(self, shost: StandaloneHost, count: int):
        self.shost = shost
        self.count = count
        self.processes: list[subprocess.Popen] = []
        self.started: float | None = None

    def ensure(self) -> None:
        if any(process.poll() is None for process in self.processes):
            return
        if self.started is not None and time.monotonic() - self.started < RESTART_PAUSE:
            return
        if bulk_workers_listening(self.shost):
            return
        self.shost.redis  # noqa: B018 - started (embedded) before signals are held: its server inherits no mask
        with signals_held():  # a signal now could leave a worker we started out of the list
            self.processes += start_worker_processes(self.shost, self.count)
        self.started = time.monotonic()

    def stop(self) -> None:
        with signals_held():
            end_children(self.processes)
