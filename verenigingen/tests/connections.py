"""A second connection to the site's database: another worker's view, for tests of races between workers."""

import frappe
from frappe.database import get_db


def site_connection():
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
