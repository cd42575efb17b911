"""RQ workers for the standalone host, with the periodic sweep in a process beside them."""

import logging
import os
import subprocess
import sys
import time

from rq import Worker

from verenigingen.accounts.sweeper import sweep
from verenigingen.standalone import jobs
from verenigingen.standalone.host import StandaloneHost

log = logging.getLogger(__name__)


def sweep_once(shost: StandaloneHost) -> bool:
    """Sweep unless another process did within the interval (a Redis lock that expires by itself)."""
    lock = f"verenigingen:sweep-lock:{shost.settings.bulk_queue}"
    if not shost.redis.set(lock, os.getpid(), nx=True, ex=shost.settings.sweep_interval):
        return False
    sweep(shost.host)
    return True


def sweep_loop(shost: StandaloneHost, parent: int | None = None) -> None:
    """Sweep every half interval; with ``parent``, only for as long as that process is our parent
    (a worker that died, even before this process got going, takes its sweeper with it)."""
    while parent is None or os.getppid() == parent:
        try:
            sweep_once(shost)
        except Exception as exc:  # tried again at the next interval; the type only: no data in logs
            log.warning("sweep failed (%s); trying again later", type(exc).__name__)
        time.sleep(shost.settings.sweep_interval / 2)


def run_worker(shost: StandaloneHost, queues: list[str], burst: bool = False) -> None:
    """A worker that takes queues in the order given: individual requests before bulk batches.

    The sweep runs in a process of its own: a thread beside RQ's fork-per-job could hold a lock at
    the moment of a fork and leave the work horse waiting for it forever.
    """
    jobs.warm_up(shost)  # build the host once; every forked work horse inherits it
    worker = Worker(queues, connection=shost.redis, job_monitoring_interval=shost.settings.job_monitoring_interval)
    sweeper = None
    if not burst:
        command = [sys.executable, "-m", "verenigingen.standalone.cli", "sweep", "--loop", "--parent", str(os.getpid())]
        sweeper = subprocess.Popen(command, env=shost.environment.child_env())
    try:
        worker.work(burst=burst, logging_level="WARNING")
    finally:
        if sweeper is not None:
            stop_worker_processes([sweeper])


def bulk_workers_listening(shost: StandaloneHost) -> int:
    return sum(shost.settings.bulk_queue in w.queue_names() for w in Worker.all(connection=shost.redis))


def start_worker_processes(shost: StandaloneHost, count: int) -> list[subprocess.Popen]:
    """Worker processes for the duration of a command (``import --wait`` with nobody listening)."""
    shost.redis  # noqa: B018 - an embedded Redis must be running before the workers look for it
    env = shost.environment.child_env()
    command = [sys.executable, "-m", "verenigingen.standalone.cli", "worker"]
    return [
        subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(count)
    ]


def stop_worker_processes(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
