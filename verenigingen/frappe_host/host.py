"""The engine's Host on a Frappe site: the Frappe store, Frappe's job queue, a UTC clock."""

import os
import socket
import uuid
from datetime import datetime, timezone

from verenigingen.accounts.ports import Host
from verenigingen.frappe_host.queue import FrappeJobQueue
from verenigingen.frappe_host.settings import account_settings
from verenigingen.frappe_host.store import FrappeStore


def utc_now() -> datetime:
    """The engine's clock is UTC on Frappe too: leases must survive a daylight-saving change, and
    frappe.utils.now_datetime() is the site's time zone."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def frappe_host() -> Host:
    settings = account_settings()
    worker = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    return Host(FrappeStore(), FrappeJobQueue(settings), utc_now, settings, worker)
