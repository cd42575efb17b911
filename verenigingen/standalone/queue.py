"""The JobQueue port on RQ: one queue for individual requests (served first), one for bulk batches.

RQ 3.0 caps concurrent bulk batches across every worker with ``RateLimit`` (its slots are freed by
RQ's registry clean-up when a worker dies). Older RQ (the version a Frappe bench pins) has no such
cap: there the number of bulk workers is the cap.
"""

from datetime import datetime, timezone

from redis import Redis
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.registry import clean_registries

from verenigingen.accounts.config import AccountSettings
from verenigingen.accounts.ports import DEAD, ENQUEUED, LIVE, batch_job_id, individual_job_id

try:
    from rq import RateLimit
except ImportError:  # RQ < 3.0
    RateLimit = None

HAS_RATE_LIMIT = RateLimit is not None
_LIVE = {"queued", "started", "deferred", "scheduled", "rate_limited", "created", "ready_to_enqueue"}


class RqJobQueue:
    def __init__(self, redis: Redis, settings: AccountSettings):
        self.redis = redis
        self.settings = settings
        self.bulk = Queue(settings.bulk_queue, connection=redis)
        self.individual = Queue(settings.individual_queue, connection=redis)
        self.rate_limit_key = f"{settings.bulk_queue}-batches"  # shared by every host using this queue

    def state_of(self, job_id: str) -> str | None:
        """LIVE while a job waits or runs with a beating heart, DEAD when its worker stopped, else None."""
        try:
            job = Job.fetch(job_id, connection=self.redis)
        except NoSuchJobError:
            return None
        status = str(getattr(job.get_status(refresh=False), "value", job.get_status(refresh=False)))
        if status not in _LIVE:
            return None
        if status == "started":
            last_sign = job.last_heartbeat or job.started_at
            silence = (datetime.now(timezone.utc).replace(tzinfo=None) - last_sign.replace(tzinfo=None)).total_seconds()
            if silence > 3 * self.settings.job_monitoring_interval + 5:
                return DEAD
        return LIVE

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
        options = {}
        if HAS_RATE_LIMIT:
            options["rate_limit"] = RateLimit(self.rate_limit_key, self.settings.max_concurrent_batches)
        job_id = batch_job_id(tracker, batch_number, generation)
        function = "verenigingen.standalone.jobs.run_bulk_batch"
        return self._enqueue(
            self.bulk, job_id, function, (tracker, batch_number), self.settings.batch_timeout, **options
        )

    def enqueue_individual(self, request: str, generation: int = 0) -> str:
        job_id = individual_job_id(request, generation)
        function = "verenigingen.standalone.jobs.run_individual"
        return self._enqueue(self.individual, job_id, function, (request,), self.settings.individual_timeout)

    def clean_up(self) -> None:
        """RQ's registry clean-up: jobs of dead workers move to failed and free their rate-limit slots."""
        for queue in (self.individual, self.bulk):
            clean_registries(queue)
