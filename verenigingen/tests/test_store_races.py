"""Races between workers that only a real site shows: two new users given the same user name at once."""

import threading
import time
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


class TestTurnsForNewUsers(FrappeTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.addClassCleanup(raise_user_limit())

    def test_a_bulk_member_takes_the_turn_until_its_transaction_ends_and_an_approval_never_waits(self):
        """Users are made one at a time on Frappe (a site-wide row lock): bulk members queue for a turn of
        their own first, so that an approval finds at most one of them ahead of it."""
        run = uuid.uuid4().hex[:8]
        domain, runner = f"turn-{run}.test", frappe.session.user
        other = site_connection()
        members = []
        self.addCleanup(_clean_up_turns, domain, members, other)
        for kind, tracker in (("bulk", f"BOT-turn-{run}"), ("approval", None), ("waiting", f"BOT-turn-{run}")):
            member = frappe.get_doc(
                {"doctype": "Member", "first_name": f"Turn{kind}", "last_name": run, "email": f"{kind}@{domain}"}
            ).insert()
            members.append(member.name)
            frappe.db.sql(
                "INSERT INTO `tabAccount Creation Request` (name, source_record, status, bulk_operation_tracker, "
                "creation, modified, owner, modified_by, docstatus, idx) "
                "VALUES (%s, %s, 'Processing', %s, NOW(), NOW(), %s, %s, 0, 0)",
                (f"ACR-turn-{kind}-{run}", member.name, tracker, runner, runner),
            )
        frappe.db.commit()
        turn = f"verenigingen-new-user-{frappe.conf.db_name}"
        holder = lambda: other.sql("SELECT IS_USED_LOCK(%s)", (turn,))[0][0]  # noqa: E731
        store = FrappeStore()
        with store.transaction():
            store.create_user(f"approval@{domain}", f"Turnapproval {run}", (Roles.MEMBER,), None, members[1], runner)
            self.assertIsNone(holder(), "an approval takes no turn")
        with store.transaction():
            store.create_user(f"bulk@{domain}", f"Turnbulk {run}", (Roles.MEMBER,), None, members[0], runner)
            mine = frappe.db.sql("SELECT CONNECTION_ID()")[0][0]
            self.assertEqual(holder(), mine, "a bulk member holds the turn until its transaction ends")
        self.assertIsNone(holder(), "the turn is given back when the transaction ends")
        self.assertTrue(frappe.db.exists("User", f"bulk@{domain}"))

        # Another worker holding the turn makes the bulk member wait; a rollback gives the turn back too.
        self.assertEqual(other.sql("SELECT GET_LOCK(%s, 0)", (turn,))[0][0], 1)
        started = time.monotonic()
        release = threading.Timer(1.0, lambda: other._conn.cursor().execute("SELECT RELEASE_LOCK(%s)", (turn,)))
        release.start()
        with self.assertRaises(RuntimeError), store.transaction():
            store.create_user(f"waiting@{domain}", f"Turnwaiting {run}", (Roles.MEMBER,), None, members[2], runner)
            self.assertGreaterEqual(time.monotonic() - started, 0.9, "it waited for the other worker's turn")
            raise RuntimeError("rolled back")
        release.join()
        self.assertIsNone(holder())
        self.assertFalse(frappe.db.exists("User", f"waiting@{domain}"))


def _clean_up_turns(domain: str, members: list[str], other) -> None:
    other.close()
    frappe.db.rollback()
    frappe.db.delete("Account Creation Request", {"source_record": ["in", members or [""]]})
    for user in frappe.get_all("User", {"name": ["like", f"%@{domain}"]}, pluck="name"):
        for contact in frappe.get_all("Contact", {"user": user}, pluck="name"):
            frappe.delete_doc("Contact", contact, force=True)
        frappe.delete_doc("User", user, force=True)
    for member in members:
        frappe.delete_doc("Member", member, force=True, ignore_missing=True)
    frappe.db.commit()


def _clean_up(domain: str, member: str, other) -> None:
    other.close()
    frappe.db.rollback()
    for user in frappe.get_all("User", {"name": ["like", f"%@{domain}"]}, pluck="name"):
        for contact in frappe.get_all("Contact", {"user": user}, pluck="name"):
            frappe.delete_doc("Contact", contact, force=True)
        frappe.delete_doc("User", user, force=True)
    frappe.delete_doc("Member", member, force=True, ignore_missing=True)
    frappe.db.commit()
