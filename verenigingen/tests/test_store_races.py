"""Races between workers that only a real site shows: two new users given the same user name at once."""

import threading
import uuid

import frappe
from frappe.tests.utils import FrappeTestCase

from verenigingen.accounts.errors import ConflictError, is_conflict
from verenigingen.accounts.states import Roles
from verenigingen.frappe_host.store import FrappeStore
from verenigingen.tests.site import raise_user_limit, site_connection


class TestUserNameRace(FrappeTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.addClassCleanup(raise_user_limit())

    def test_two_workers_creating_the_same_first_name_at_once_is_a_conflict_tried_again(self):
        """Frappe gives a new user the user name of its first name after checking that it is free; a second
        worker's user of the same first name, not yet committed, takes it first. That is a passing conflict
        (tried again in place), never 'a user with this e-mail address already exists'."""
        run = uuid.uuid4().hex[:8]
        first, domain = f"Vgrace{run}", f"race-{run}.test"
        runner = frappe.session.user
        member = frappe.get_doc(
            {"doctype": "Member", "first_name": first, "last_name": "Twee", "email": f"two@{domain}"}
        ).insert()
        other = site_connection()
        self.addCleanup(_clean_up, domain, member.name, other)
        # The other worker's new user, holding the user name, commits a second later.
        other.sql(
            "INSERT INTO `tabUser` (name, email, first_name, username, enabled, user_type, creation, modified, owner, "
            "modified_by, docstatus, idx) VALUES (%s, %s, %s, %s, 1, 'Website User', NOW(), NOW(), %s, %s, 0, 0)",
            (f"one@{domain}", f"one@{domain}", first, frappe.scrub(first), runner, runner),
        )
        # The driver's own commit: Frappe's would log the query through this thread's (absent) site.
        committing = threading.Timer(1.0, other._conn.commit)
        committing.start()
        store = FrappeStore()
        with self.assertRaises(ConflictError) as caught, store.transaction():
            store.create_user(f"two@{domain}", f"{first} Twee", (Roles.MEMBER,), None, member.name, runner)
        committing.join()
        self.assertTrue(is_conflict(caught.exception))
        self.assertNotIn("already exists", str(caught.exception))
        with store.transaction():  # tried again: the name is taken now, so Frappe gives this user none
            user = store.create_user(f"two@{domain}", f"{first} Twee", (Roles.MEMBER,), None, member.name, runner)
        self.assertEqual(user, f"two@{domain}")
        self.assertFalse(frappe.db.get_value("User", user, "username"))


def _clean_up(domain: str, member: str, other) -> None:
    other.close()
    frappe.db.rollback()
    for user in frappe.get_all("User", {"name": ["like", f"%@{domain}"]}, pluck="name"):
        for contact in frappe.get_all("Contact", {"user": user}, pluck="name"):
            frappe.delete_doc("Contact", contact, force=True)
        frappe.delete_doc("User", user, force=True)
    frappe.delete_doc("Member", member, force=True, ignore_missing=True)
    frappe.db.commit()
