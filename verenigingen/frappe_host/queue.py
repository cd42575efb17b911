"""The JobQueue port on Frappe's background jobs: frappe.enqueue with deterministic job ids.

Jobs are enqueued after the commit of the transaction that is running (``enqueue_after_commit``): the
rows a job reads are committed before it can start. Job ids carry the site, as Frappe makes them. The
liveness rules (a started job whose worker missed its heartbeats, or whose worker's process is gone from
this host, is dead; a queued job in no queue is dead) are those of the standalone RQ queue: Frappe's
workers are RQ workers.
"""

import frappe
from frappe.utils.background_jobs import create_job_id, generate_qname, get_redis_conn
from rq import Queue
from rq.registry import clean_registries

from verenigingen.accounts.config import AccountSettings
from verenigingen.accounts.ports import ENQUEUED, batch_job_id, individual_job_id
from verenigingen.standalone.queue import RqJobQueue

JOBS = "verenigingen.frappe_host.jobs"


class FrappeJobQueue(RqJobQueue):
    def __init__(self, settings: AccountSettings):
        redis = get_redis_conn()
        self.redis = redis
        self.settings = settings
        self.bulk = Queue(generate_qname(settings.bulk_queue), connection=redis)
        self.individual = Queue(generate_qname(settings.individual_queue), connection=redis)

    def state_of(self, job_id: str) -> str | None:
        return super().state_of(create_job_id(job_id))

    def _frappe_enqueue(self, queue: str, job_id: str, function: str, timeout: int, **kwargs) -> str:
        if state := self.state_of(job_id):
            return state
        frappe.enqueue(function, queue=queue, job_id=job_id, timeout=timeout, enqueue_after_commit=True, **kwargs)
        return ENQUEUED

    def enqueue_batch(self, tracker: str, batch_number: int, generation: int = 0) -> str:
        return self._frappe_enqueue(
            self.settings.bulk_queue,
            batch_job_id(tracker, batch_number, generation),
            f"{JOBS}.run_bulk_batch",
            self.settings.batch_timeout,
            tracker=tracker,
            batch_number=batch_number,
            generation=generation,
        )

    def enqueue_individual(self, request: str, generation: int = 0) -> str:
        return self._frappe_enqueue(
            self.settings.individual_queue,
            individual_job_id(request, generation),
            f"{JOBS}.run_individual",
            self.settings.individual_timeout,
            request=request,
        )

    def clean_up(self) -> None:
        for queue in (self.individual, self.bulk):
            clean_registries(queue)
