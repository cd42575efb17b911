"""The engine's AccountSettings, read from the site's Verenigingen Settings."""

from dataclasses import replace

import frappe

from verenigingen.accounts.config import DEFAULT_SETTINGS, AccountSettings
from verenigingen.dutch.membership import parse_extra_types

# Frappe's workers run without RQ's scheduler and sweep from the scheduler once a minute.
SWEEP_INTERVAL = 60
# A member's account takes about half a second on Frappe: a batch looks for due approvals before every
# member (one indexed query), so an approval is made by the next batch between two members at once.
INDIVIDUAL_CHECK_SECONDS = 0.0
# Bulk members take turns to make their users (store.py, _wait_for_turn), so an approval waits for one of
# them at most: batches need not hold back while it runs.
APPROVAL_YIELD_SECONDS = 0.0


def account_settings() -> AccountSettings:
    """Defaults where the settings leave a field empty; validated on save by the settings DocType."""
    doc = frappe.get_cached_doc("Verenigingen Settings")
    backoff = tuple(int(s) for s in (doc.retry_backoff or "").split(",") if s.strip())
    return replace(
        DEFAULT_SETTINGS,
        batch_size=doc.batch_size or DEFAULT_SETTINGS.batch_size,
        max_concurrent_batches=doc.max_concurrent_batches or DEFAULT_SETTINGS.max_concurrent_batches,
        batch_timeout=doc.batch_timeout or DEFAULT_SETTINGS.batch_timeout,
        retry_backoff=backoff or DEFAULT_SETTINGS.retry_backoff,
        bulk_queue=doc.bulk_queue or DEFAULT_SETTINGS.bulk_queue,
        individual_queue=doc.individual_queue or "short",
        bulk_priority=doc.bulk_priority or DEFAULT_SETTINGS.bulk_priority,
        default_role=doc.default_role or DEFAULT_SETTINGS.default_role,
        membership_types=tuple(parse_extra_types(doc.membership_types or "").items()),
        sweep_interval=SWEEP_INTERVAL,
        individual_check_seconds=INDIVIDUAL_CHECK_SECONDS,
        approval_yield_seconds=APPROVAL_YIELD_SECONDS,
    )
