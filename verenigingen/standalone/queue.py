"""The JobQueue port on RQ: one queue for individual requests (served first), one for bulk batches.

Transport only: the cap on concurrent bulk batches is the engine's (batch slots in the database), so it
holds on every RQ version, with any number of workers.
"""

import socket
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from redis import Redis
from rq import Queue, Worker
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.registry import clean_registries

from verenigingen.accounts.config import AccountSettings
from verenigingen.accounts.ports import DEAD, ENQUEUED, LIVE, JobQueue, batch_job_id, individual_job_id
from verenigingen.standalone.processes import pid_alive

if TYPE_CHECKING:
    from rq.worker import BaseWorker

_LIVE = {"queued", "started", "deferred", "scheduled", "rate_limited", "created", "ready_to_enqueue"}


def seconds_since(moment: datetime) -> float:
    return (datetime.now(timezone.utc).replace(tzinfo=None) - moment.replace(tzinfo=None)).total_seconds()


def died_here(worker: "BaseWorker") -> bool:
    """A worker of this host whose process is gone: killed outright, it could not tell RQ itself. Where
    containers share the host's name but not its processes, a live worker looks gone too."""
    pid = worker.pid
    return worker.hostname == socket.gethostname() and pid is not None and pid > 0 and not pid_alive(pid)


def worker_alive(worker: "BaseWorker", patience: float) -> bool:
    """RQ lists a worker killed outright for minutes after its death (until its key expires). A live worker
    taken for gone (see died_here) only makes ``import --wait`` start workers too many."""
    if died_here(worker):
        return False
    beat = worker.last_heartbeat
    return beat is not None and seconds_since(beat) <= patience


class RqJobQueue:
    def __init__(self, redis: Redis, settings: AccountSettings):
        self.redis = redis
        self.settings = settings
        self.bulk = Queue(settings.bulk_queue, connection=redis)
        self.individual = Queue(settings.individual_queue, connection=redis)

    def state_of(self, job_id: str) -> str | None:
        """LIVE while a job waits or runs with a beating heart, DEAD when its worker stopped, else None."""
        try:
            job = Job.fetch(job_id, connection=self.redis)
        except NoSuchJobError:
            return None
        status = str(getattr(job.get_status(refresh=False), "value", job.get_status(refresh=False)))
        if status not in _LIVE:
            return None
        patience = 3 * self.settings.job_monitoring_interval + 5
        if status == "started":
            return DEAD if self._started_and_dead(job) else LIVE
        # On RQ 1.15 a worker killed between taking a job and starting it leaves it "queued" in no queue
        # at all: it would count as alive for ever and hold back a slot's worth of work.
        waited = status == "queued" and job.enqueued_at is not None and seconds_since(job.enqueued_at) > patience
        if waited and Queue(job.origin, connection=self.redis).get_job_position(job_id) is None:
            return DEAD
        return LIVE

    def _started_and_dead(self, job: Job) -> bool:
        """Its worker missed three heartbeats; or one, and the worker's process is gone from this host. A worker
        killed between two members leaves no lease to run out, so this is how its batch goes on soon. The
        missed heartbeat keeps a live worker from being taken for dead where the host's name is shared: its
        worker beats every monitoring interval."""
        last_sign = job.last_heartbeat or job.started_at
        if last_sign is None:
            return False
        silent, interval = seconds_since(last_sign), self.settings.job_monitoring_interval
        if silent > 3 * interval + 5:
            return True
        return silent > interval + 5 and self._worker_died_here(job)

    def _worker_died_here(self, job: Job) -> bool:
        if not job.worker_name:
            return False
        worker = Worker.find_by_key(Worker.redis_worker_namespace_prefix + job.worker_name, connection=self.redis)
        return worker is not None and died_here(worker)

    def is_live(self, job_id: str) -> bool:
        return self.state_of(job_id) == LIVE

    def _enqueue(self, queue: Queue, job_id: str, function: str, args: tuple, timeout: int, **options) -> str:
        """Enqueue unless a job with this id is alive (LIVE) or lingers dead (DEAD)."""
        if state := self.state_of(job_id):
            return state
        queue.enqueue(
            function, *args, job_id=job_id, job_timeout=timeout, result_ttl=3600, failure_ttl=86400, **options
        )
        return ENQUEUED

    def enqueue_batch(self, tracker: str, batch_number: int, generation: int = 0) -> str:
        job_id = batch_job_id(tracker, batch_number, generation)
        function = "verenigingen.standalone.jobs.run_bulk_batch"
        args = (tracker, batch_number, generation)
        return self._enqueue(self.bulk, job_id, function, args, self.settings.batch_timeout)

    def enqueue_individual(self, request: str, generation: int = 0) -> str:
        job_id = individual_job_id(request, generation)
        function = "verenigingen.standalone.jobs.run_individual"
        return self._enqueue(self.individual, job_id, function, (request,), self.settings.individual_timeout)

    def clean_up(self) -> None:
        """RQ's registry clean-up: jobs of dead workers move to failed."""
        for queue in (self.individual, self.bulk):
            clean_registries(queue)


if TYPE_CHECKING:  # the type checker proves RqJobQueue keeps the engine's JobQueue contract

    def _keeps_the_contract(queue: RqJobQueue) -> JobQueue:
        return queue
