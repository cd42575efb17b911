"""The Frappe store under the contract, on a real site: ``VERENIGINGEN_FRAPPE_SITE`` names it, run from the
bench's ``sites`` folder (or ``VERENIGINGEN_FRAPPE_SITES_PATH``) with the bench's Python. scripts/frappe-test
runs it after ``run-tests``.

The contract seeds fixed names (MEM-m000, …@vereniging.test): every test starts and ends by removing what
such names left on the site, so a test never sees another's rows."""

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import frappe

from tests.contract.conftest import START, Backend, Clock
from verenigingen.accounts.config import AccountSettings
from verenigingen.accounts.ports import AuditEntry, JobQueue, Store
from verenigingen.accounts.states import Roles
from verenigingen.frappe_host.store import AUDIT_COMMENT, FROM_NOTHING, FrappeStore, engine_time
from verenigingen.tests.site import raise_user_limit, site_connection

SITE = os.environ.get("VERENIGINGEN_FRAPPE_SITE", "")
SITES_PATH = os.environ.get("VERENIGINGEN_FRAPPE_SITES_PATH", ".")
TEST_DOMAINS = ("%@vereniging.test", "%@elders.test")
# The role profiles the contract names, with the roles its tests give alongside them: Frappe gives a user
# with a role profile exactly that profile's roles.
PROFILES = {"Board": (Roles.MEMBER, Roles.MANAGER), "Lid": (Roles.MEMBER, Roles.MANAGER)}
AUDIT = re.compile(r"^(?P<from>.+?) → (?P<to>.+?) by (?P<by>\S+?)(?: on (?P<worker>\S+?))?(?:: (?P<reason>.*))?$", re.S)


def _connect() -> None:
    """Once per process: the site, as a bench command would open it (as Administrator, for seeding)."""
    if getattr(frappe.local, "site", None) == SITE and getattr(frappe.local, "db", None):
        return
    frappe.init(site=SITE, sites_path=str(Path(SITES_PATH).resolve()))
    frappe.connect()
    # As under run-tests: a User's save runs its follow-up jobs (contact) at once instead of queueing them on
    # the bench's Redis, and skips the gravatar look-up (an HTTP call).
    frappe.flags.in_test = True


class FrappeBackend(Backend):
    def __init__(self, jobs: JobQueue, clock: Clock, settings: AccountSettings):
        super().__init__(FrappeStore(), jobs, clock, settings)
        self._members: list[str] = []
        self._others: list = []

    def second_store(self) -> Store:
        db = site_connection()
        self._others.append(db)
        return FrappeStore(db)

    def add_member(self, name: str, email: str | None, full_name: str, status: str = "Active") -> None:
        first, _, last = full_name.partition(" ")
        doc = frappe.get_doc(
            {
                "doctype": "Member",
                "member_id": name[4:],
                "first_name": first,
                "last_name": last,
                "email": email,
                "status": status,
            }
        )
        doc.insert(set_name=name)
        frappe.db.commit()
        self._members.append(name)

    def change_member(self, name: str, **values: str | None) -> None:
        frappe.db.set_value("Member", name, values)
        frappe.db.commit()

    def remove_member(self, name: str) -> None:
        frappe.db.delete("Member", {"name": name})
        frappe.db.commit()

    def add_user(self, email: str, full_name: str, roles: tuple[str, ...], member: str | None = None) -> None:
        first, _, last = full_name.strip().partition(" ")
        doc = frappe.new_doc("User")
        doc.update({"email": email, "first_name": first, "last_name": last.strip() or None, "send_welcome_email": 0})
        doc.update({"member": member})
        for role in roles:
            doc.append("roles", {"role": role})
        doc.insert()
        frappe.db.commit()

    def role_profile(self, user: str) -> str | None:
        frappe.db.rollback()  # a fresh snapshot
        return frappe.db.get_value("User", user, "role_profile_name") or None

    def audit_trail(self, docname: str) -> list[tuple[AuditEntry, datetime]]:
        frappe.db.rollback()
        rows = frappe.db.sql(
            "SELECT reference_doctype, content, creation FROM `tabComment` WHERE reference_name = %s "
            "AND comment_type = %s ORDER BY creation, name",
            (docname, AUDIT_COMMENT),
        )
        trail = []
        for doctype, content, creation in rows:
            part = AUDIT.match(content).groupdict()
            before = None if part["from"] == FROM_NOTHING else part["from"]
            entry = AuditEntry(doctype, docname, before, part["to"], part["by"], part["reason"] or "", part["worker"])
            trail.append((entry, engine_time(creation)))  # Frappe's creation is on the site's clock
        return trail

    def close(self) -> None:
        for db in self._others:
            db.close()
        clean_up(self._members)


def clean_up(members: list[str]) -> None:
    """Remove every row the contract's names left: members, test users and what hangs off them, requests,
    trackers, audit comments and the slot pools the tests use."""
    db = frappe.db
    db.rollback()
    users = [u for domain in TEST_DOMAINS for u in db.sql_list("SELECT name FROM tabUser WHERE name LIKE %s", domain)]
    requests = db.sql_list(
        "SELECT name FROM `tabAccount Creation Request` WHERE requested_by LIKE %s OR requested_by LIKE %s",
        TEST_DOMAINS,
    )
    trackers = db.sql_list(
        "SELECT name FROM `tabBulk Operation Tracker` WHERE requested_by LIKE %s OR requested_by LIKE %s",
        TEST_DOMAINS,
    )
    for domain in TEST_DOMAINS:
        db.delete("Comment", {"comment_email": ("like", domain)})
    if requests:
        db.delete("Account Creation Request Role", {"parent": ("in", requests)})
        db.delete("Account Creation Request", {"name": ("in", requests)})
    if trackers:
        db.delete("Bulk Operation Tracker", {"name": ("in", trackers)})
    db.sql("DELETE FROM `tabVerenigingen Batch Slot` WHERE pool IN ('bulk', 'other') OR pool LIKE 'contract-%%'")
    member_names = set(members) | set(
        db.sql_list("SELECT name FROM tabMember WHERE name LIKE 'MEM-%%' AND email LIKE '%%@vereniging.test'")
    )
    if member_names:
        db.delete("Member", {"name": ("in", list(member_names))})
    if users:
        contacts = db.sql_list("SELECT name FROM tabContact WHERE user IN %s", [users])
        for child in ("Contact Email", "Contact Phone", "Dynamic Link"):
            if contacts:
                db.delete(child, {"parent": ("in", contacts)})
        if contacts:
            db.delete("Contact", {"name": ("in", contacts)})
        for child in ("Has Role", "User Social Login", "DefaultValue", "Block Module", "User Email"):
            db.delete(child, {"parent": ("in", users)})
        db.delete("Version", {"ref_doctype": "User", "docname": ("in", users)})
        db.delete("Notification Settings", {"name": ("in", users)})
        db.delete("User", {"name": ("in", users)})
    db.commit()


def ensure_profiles() -> None:
    for profile, roles in PROFILES.items():
        if not frappe.db.exists("Role Profile", profile):
            doc = frappe.get_doc({"doctype": "Role Profile", "role_profile": profile})
            for role in roles:
                doc.append("roles", {"role": role})
            doc.insert()
    frappe.db.commit()


@contextmanager
def frappe_backend(_tmp_path: Path, jobs: JobQueue, clock: Clock, settings: AccountSettings) -> Iterator[Backend]:
    _connect()
    put_back = raise_user_limit()
    clean_up([])
    ensure_profiles()
    assert clock.now == START  # the contract's times, far from the site's own clock
    backend = FrappeBackend(jobs, clock, settings)
    try:
        yield backend
    finally:
        backend.close()
        put_back()
