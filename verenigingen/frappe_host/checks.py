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
from frappe import _
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
            _(
                'the queue "{0}" is not declared on this bench: add {1} to sites/common_site_config.json and '
                "restart the workers (bench restart), then try again"
            ).format(settings.bulk_queue, queue_declaration(settings))
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
        message = _("add {0} to common_site_config.json").format(queue_declaration(settings))
        checks.append(Check("queue_not_declared", message))
    elif bulk_workers(settings) == 0:
        checks.append(
            Check(
                "no_bulk_worker",
                _(
                    'no worker serves the queue "{0}": the accounts are made once one runs (bench worker --queue '
                    "{0}, or bench start / the supervisor's workers)"
                ).format(settings.bulk_queue),
            )
        )
    if (slow := pace(accounts)) is not None:
        site = frappe.local.site
        checks.append(
            Check(
                "throttle_limit",
                _(
                    "this site allows {0} new users an hour (throttle_user_limit): {1} accounts take about {2} "
                    "hours; for this run, raise it with `bench --site {3} set-config throttle_user_limit {4}`"
                ).format(slow["new_users_an_hour"], accounts, slow["hours_left"], site, accounts + 100),
            )
        )
    return checks
