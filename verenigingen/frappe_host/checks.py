"""What an administrator should know before (and while) a bulk operation runs on this site: is the bulk queue
declared, does a worker serve it, and how fast does Frappe's limit on new users let it go.

An undeclared queue stops the operation before anything is written (Frappe refuses to enqueue on it); the
other two are warnings: the requests wait safely until a worker runs, or until the limit lets them through.
"""

import json
import math
from dataclasses import asdict, dataclass
from datetime import timedelta

import frappe
from frappe.utils import now_datetime
from frappe.utils.background_jobs import generate_qname, get_redis_conn
from rq import Queue, Worker

from verenigingen.accounts.config import AccountSettings
from verenigingen.accounts.errors import ValidationFailed
from verenigingen.frappe_host.store import throttle_limit
from verenigingen.standalone.queue import worker_alive


@dataclass(frozen=True)
class Check:
    code: str  # queue_not_declared, no_bulk_worker, throttle_limit
    message: str

    def as_dict(self) -> dict:
        return asdict(self)


def queue_declaration(settings: AccountSettings) -> str:
    """The line of sites/common_site_config.json that declares the bulk queue."""
    entry = {settings.bulk_queue: {"timeout": settings.batch_timeout, "background_workers": 5}}
    return f'"workers": {json.dumps(entry)}'


def bulk_queue_declared(settings: AccountSettings) -> bool:
    return settings.bulk_queue in (frappe.conf.get("workers") or {})


def require_bulk_queue(settings: AccountSettings) -> None:
    """Before anything is written: Frappe refuses to enqueue on a queue its bench does not declare."""
    if not bulk_queue_declared(settings):
        raise ValidationFailed(
            f'the queue "{settings.bulk_queue}" is not declared on this bench: add {queue_declaration(settings)} '
            "to sites/common_site_config.json and restart the workers (bench restart), then try again"
        )


# An idle RQ worker renews its registration every worker_ttl (420 s by default) less a minute.
WORKER_PATIENCE = 480


def bulk_workers(settings: AccountSettings) -> int:
    """Live workers that listen on the bulk queue (a plain `bench worker` does, too); one killed outright
    stays listed by RQ for minutes, and does not count."""
    queue = Queue(generate_qname(settings.bulk_queue), connection=get_redis_conn())
    return sum(worker_alive(worker, WORKER_PATIENCE) for worker in Worker.all(queue=queue))


def users_allowed_now() -> int:
    """New users Frappe lets through before its hourly limit stops it (throttle_user_limit)."""
    since = now_datetime() - timedelta(hours=1)
    created = frappe.db.count("User", {"creation": [">=", since]})
    return max(0, throttle_limit() - created + 1)


def pace(remaining: int) -> dict | None:
    """When Frappe's hourly limit on new users sets the pace: the limit and the hours the rest takes."""
    limit, allowed = throttle_limit(), users_allowed_now()
    if remaining <= allowed:
        return None
    hours = math.ceil((remaining - allowed) / max(limit, 1) * 10) / 10  # up to the next tenth: never "0.0"
    return {"new_users_an_hour": limit, "accounts_left": remaining, "hours_left": hours}


def account_checks(settings: AccountSettings, accounts: int) -> list[Check]:
    """Warnings for a bulk operation of ``accounts`` new users about to start (or running)."""
    checks = []
    if not bulk_queue_declared(settings):
        checks.append(Check("queue_not_declared", f"add {queue_declaration(settings)} to common_site_config.json"))
    elif bulk_workers(settings) == 0:
        checks.append(
            Check(
                "no_bulk_worker",
                f'no worker serves the queue "{settings.bulk_queue}": the accounts are made once one runs '
                f"(bench worker --queue {settings.bulk_queue}, or bench start / the supervisor's workers)",
            )
        )
    if (slow := pace(accounts)) is not None:
        site = frappe.local.site
        checks.append(
            Check(
                "throttle_limit",
                f"this site allows {slow['new_users_an_hour']} new users an hour (throttle_user_limit): "
                f"{accounts} accounts take about {slow['hours_left']} hours; for this run, raise it with "
                f"`bench --site {site} set-config throttle_user_limit {accounts + 100}`",
            )
        )
    return checks
