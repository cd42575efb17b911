"""The JobQueue port on RQ: one queue for individual requests (served first), one for bulk batches.

RQ 3.0 caps concurrent bulk batches across every worker with ``RateLimit`` (its slots are freed by
RQ's registry clean-up when a worker dies). Older RQ (the version a Frappe bench pins) has no such
cap: there the number of bulk workers is the cap.
"""

from redis import Redis
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.registry import clean_registries

from verenigingen.accounts.config import AccountSettings
from verenigingen.accounts.ports import batch_job_id, individual_job_id

try:
    from rq import RateLimit
except ImportError:  # RQ < 3.0
    RateLimit = None

HAS_RATE_LIMIT = RateLimit is not None
BULK_RATE_LIMIT_KEY = "verenigingen-bulk-batches"
_LIVE = {"queued", "started", "deferred", "scheduled", "rate_limited", "created", "ready_to_enqueue"}


class RqJobQueue:
    def __init__(self, redis: Redis, settings: AccountSettings):
        self.redis = redis
        self.settings = settings
        self.bulk = Queue(settings.bulk_queue, connection=redis)
        self.individual = Queue(settings.individual_queue, connection=redis)

    def is_live(self, job_id: str) -> bool:
        try:
            status = Job.fetch(job_id, connection=self.redis).get_status(refresh=False)
        except NoSuchJobError:
            return False
        return str(getattr(status, "value", status)) in _LIVE

    def enqueue_batch(self, tracker: str, batch_number: int, attempt: int = 0) -> bool:
        job_id = batch_job_id(tracker, batch_number, attempt)
        if self.is_live(job_id):
            return False
        options = {}
        if HAS_RATE_LIMIT:
            options["rate_limit"] = RateLimit(BULK_RATE_LIMIT_KEY, self.settings.max_concurrent_batches)
        self.bulk.enqueue(
            "verenigingen.standalone.jobs.run_bulk_batch",
            tracker,
            batch_number,
            job_id=job_id,
            job_timeout=self.settings.batch_timeout,
            result_ttl=3600,
            failure_ttl=86400,
            **options,
        )
        return True

    def enqueue_individual(self, request: str, attempt: int = 0) -> bool:
        job_id = individual_job_id(request, attempt)
        if self.is_live(job_id):
            return False
        self.individual.enqueue(
            "verenigingen.standalone.jobs.run_individual",
            request,
            job_id=job_id,
            job_timeout=self.settings.individual_timeout,
            result_ttl=3600,
            failure_ttl=86400,
        )
        return True

    def clean_up(self) -> None:
        """RQ's registry clean-up: jobs of dead workers move to failed and free their rate-limit slots."""
        for queue in (self.individual, self.bulk):
            clean_registries(queue)
