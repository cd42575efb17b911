"""What tests need of the site beyond FrappeTestCase: another worker's connection, and room for new users."""

from collections.abc import Callable

import frappe
from frappe.database import get_db
from frappe.installer import update_site_config

TEST_USER_LIMIT = 1_000_000


def site_connection():
    """A second connection to the site's database: another worker's view, for races between workers."""
    conf = frappe.local.conf
    db = get_db(
        host=conf.db_host,
        port=conf.db_port,
        user=conf.db_user or conf.db_name,
        password=conf.db_password,
        cur_db_name=conf.db_name,
    )
    db.connect()
    return db


def set_user_limit(value: int | None) -> None:
    """Frappe's hourly limit on new users (throttle_user_limit), in the site's config and this process's."""
    update_site_config("throttle_user_limit", "None" if value is None else value)
    if value is None:
        frappe.local.conf.pop("throttle_user_limit", None)
    else:
        frappe.local.conf.throttle_user_limit = value


def raise_user_limit() -> Callable[[], None]:
    """Room for the users a test makes, whatever the site made this hour (a benchmark may have used the
    limit up); returns what puts the previous limit back."""
    previous = frappe.local.conf.get("throttle_user_limit")
    set_user_limit(TEST_USER_LIMIT)
    return lambda: set_user_limit(previous)
