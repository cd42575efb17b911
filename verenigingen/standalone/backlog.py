"""What is still to happen to account requests, and what will not happen by itself.

Requests wait in the database; Redis only carries jobs. When Redis was down as work was queued (or lost
its jobs since), due requests have no job until a sweep: an operator must be told so, and what to run,
instead of seeing "0 requested" while requests wait. Likewise when no worker listens at all.
"""

import json
from dataclasses import dataclass
from datetime import datetime

import click

from verenigingen.accounts.errors import classify
from verenigingen.accounts.ports import batch_job_id, individual_job_id
from verenigingen.accounts.states import ErrorCategory, RequestStatus
from verenigingen.standalone.host import StandaloneHost
from verenigingen.standalone.queue import RqJobQueue
from verenigingen.standalone.store import OpenGroup
from verenigingen.standalone.worker import bulk_workers_listening

STATES = ("requested", "due", "retry", "processing", "abandoned")
NO_WORKER = "no worker is listening: start one with `verenigingen worker`"


def is_request_name(name: str | None) -> bool:
    return bool(name) and str(name).startswith("ACR-")


def _redis_down(exc: Exception) -> bool:
    return classify(exc) == ErrorCategory.RETRYABLE


@dataclass(frozen=True)
class Unsent:
    requests: int = 0  # due requests that no job brings to a worker before the next sweep
    redis_down: bool = False  # Redis could not be asked: every due request counts


def unsent(shost: StandaloneHost, tracker: str | None = None) -> Unsent:
    """Due requests without a live job (of one tracker, or all). Bulk batches beyond the batch-slot cap
    legitimately wait in the database for a finishing batch to hand its slot on; they count only when
    fewer batches have a live job than the cap allows, i.e. nothing will hand on."""
    store, now = shost.store, shost.host.clock()
    with store.transaction(readonly=True):
        due = [g for g in store.open_request_groups(now) if g.state == "due" and g.tracker]
        singles = store.due_individual_requests(now) if tracker is None else []
    jobs = RqJobQueue(shost.redis, shost.settings)
    try:
        live = {
            (g.tracker, g.batch) for g in due if jobs.is_live(batch_job_id(str(g.tracker), g.batch or 0, g.generation))
        }
        lost_singles = sum(not jobs.is_live(individual_job_id(name, gen)) for name, gen in singles)
    except Exception as exc:
        if not _redis_down(exc):
            raise
        return Unsent(sum(g.requests for g in due if tracker in (None, g.tracker)) + len(singles), redis_down=True)
    if len(live) >= min(shost.settings.max_concurrent_batches, len(due)):
        return Unsent(lost_singles)  # every due batch, or as many as may run, has its job: the rest is handed on
    stranded = sum(g.requests for g in due if (g.tracker, g.batch) not in live and tracker in (None, g.tracker))
    return Unsent(stranded + lost_singles)


def unsent_line(shost: StandaloneHost, found: Unsent) -> str | None:
    if not found.requests:
        return None
    are = "account request is" if found.requests == 1 else "account requests are"
    every = f"a worker sweeps every {shost.settings.sweep_interval} s"
    if found.redis_down:
        return (
            f"{found.requests} {are} waiting to be sent to the workers, but Redis cannot be reached: "
            f"once it is back, run `verenigingen sweep` ({every})"
        )
    return f"{found.requests} {are} waiting to be sent to the workers: run `verenigingen sweep` ({every})"


def no_worker_warning(shost: StandaloneHost) -> str | None:
    """None while a worker listens, or when Redis cannot be asked (the unsent requests say that)."""
    try:
        return None if bulk_workers_listening(shost) else NO_WORKER
    except Exception as exc:
        if not _redis_down(exc):
            raise
        return None


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def waiting(shost: StandaloneHost) -> dict:
    """Open requests per bulk operation and for the individual path, by state, with the next retry."""
    store = shost.store
    with store.transaction(readonly=True):
        groups = store.open_request_groups(shost.host.clock())
        statuses = {t: getattr(store.get_tracker(t), "status", None) for t in {g.tracker for g in groups if g.tracker}}
    totals: dict[str | None, list[OpenGroup]] = {}
    for group in groups:
        totals.setdefault(group.tracker, []).append(group)
    report = []
    for tracker in sorted(totals, key=lambda t: (t is not None, t or "")):  # the individual path first
        counts = {state: sum(g.requests for g in totals[tracker] if g.state == state) for state in STATES}
        next_retry = min(filter(None, (g.next_retry_at for g in totals[tracker])), default=None)
        entry = {"tracker": tracker, "status": statuses.get(tracker) if tracker else None}
        report.append({**entry, "open": sum(counts.values()), **counts, "next_retry_at": _iso(next_retry)})
    return {"waiting": report, "unsent": unsent(shost).requests}


def waiting_lines(shost: StandaloneHost, report: dict) -> list[str]:
    if not report["waiting"]:
        return ["No account request is waiting."]
    lines = []
    for entry in report["waiting"]:
        what = f"bulk operation {entry['tracker']} ({entry['status']})" if entry["tracker"] else "individual requests"
        counts = ", ".join(f"{entry[state]} {_STATE_WORDS[state]}" for state in STATES if entry[state])
        retry = f"; next retry due at {entry['next_retry_at']} UTC" if entry["next_retry_at"] else ""
        lines.append(f"{what}: {entry['open']} open: {counts}{retry}")
    return lines + list(filter(None, [unsent_line(shost, Unsent(report["unsent"]))]))


_STATE_WORDS = {
    "requested": "being prepared",
    "due": "due now",
    "retry": "waiting to retry",
    "processing": "being processed",
    "abandoned": "held by workers that stopped",
}


def request_report(shost: StandaloneHost, name: str) -> dict | None:
    with shost.store.transaction(readonly=True):
        row = shost.store.request_status(name)
    if row is None:
        return None
    queued = row["status"] == RequestStatus.QUEUED
    return {
        "request": row["name"],
        "status": row["status"],
        "stage": row["pipeline_stage"],
        "member": row["source_record"],
        "member_id": row["member_id"],
        "tracker": row["bulk_operation_tracker"],
        "batch": row["batch_number"],
        "attempts": row["attempts"],
        "retries": row["retry_count"],
        "max_retries": shost.settings.max_retries,
        "error_category": row["error_category"],
        "failure_reason": row["failure_reason"],
        "next_retry_at": _iso(row["next_retry_at"]) if queued else None,
        "processed_by": row["processed_by"] if row["status"] == RequestStatus.PROCESSING else None,
        "lease_expires_at": _iso(row["lease_expires_at"]) if row["status"] == RequestStatus.PROCESSING else None,
        "created": _iso(row["creation"]),
        "completed_at": _iso(row["completed_at"]),
    }


def request_lines(report: dict) -> list[str]:
    member = f"member {report['member']}" + (f" (Lidnr. {report['member_id']})" if report["member_id"] else "")
    where = f"bulk operation {report['tracker']}, batch {report['batch']}" if report["tracker"] else "individual"
    stage = f" ({report['stage']})" if report["stage"] not in (None, report["status"]) else ""
    lines = [f"{report['request']} {report['status']}{stage}: {member}; {where}"]
    retry = f"; next retry due at {report['next_retry_at']} UTC" if report["next_retry_at"] else ""
    lines.append(f"  attempts {report['attempts']}, retries {report['retries']} of {report['max_retries']}{retry}")
    if report["processed_by"]:
        lines.append(f"  held by worker {report['processed_by']} until {report['lease_expires_at']} UTC")
    if report["failure_reason"]:
        failure = "failed" if report["status"] == RequestStatus.FAILED else "last failure"
        lines.append(f"  {failure} ({report['error_category']}): {report['failure_reason']}")
    return lines


def show_request(shost: StandaloneHost, name: str, as_json: bool) -> bool:
    """``status ACR-…``: False when there is no such request."""
    report = request_report(shost, name)
    if report is None:
        return False
    click.echo(json.dumps(report) if as_json else "\n".join(request_lines(report)))
    return True


def show_waiting(shost: StandaloneHost, as_json: bool) -> None:
    report = waiting(shost)
    click.echo(json.dumps(report) if as_json else "\n".join(waiting_lines(shost, report)))
