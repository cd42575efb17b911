"""Who may do what, in Desk terms, tested as the users themselves (never as Administrator: Frappe lets
Administrator and tests skip ``only_for``)."""

import frappe
from frappe.tests.utils import FrappeTestCase

from verenigingen.accounts.states import Roles
from verenigingen.tests.site import raise_user_limit

PREFIX = "perm-test-"


def make_user(email: str, *roles: str) -> str:
    if not frappe.db.exists("User", email):
        user = frappe.get_doc({"doctype": "User", "email": email, "first_name": email.split("@")[0]})
        user.append_roles(*roles)
        user.insert()
    return email


class TestPermissionMatrix(FrappeTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.addClassCleanup(raise_user_limit())
        cls.admin = make_user(f"{PREFIX}admin@vereniging.test", Roles.ADMINISTRATOR)
        cls.manager = make_user(f"{PREFIX}manager@vereniging.test", Roles.MANAGER)
        cls.volunteer = make_user(f"{PREFIX}volunteer@vereniging.test", Roles.VOLUNTEER)
        cls.member_user = make_user(f"{PREFIX}member@vereniging.test", Roles.MEMBER)
        cls.staff = make_user(f"{PREFIX}staff@vereniging.test", "System Manager")

    def setUp(self):
        self.test_runner_user = frappe.session.user

    def tearDown(self):
        frappe.set_user(self.test_runner_user)  # back to the user the test runner set up

    def new_member(self, suffix: str):
        return frappe.get_doc(
            {
                "doctype": "Member",
                "member_id": f"PT{suffix}",
                "first_name": "Anna",
                "tussenvoegsel": "ten",
                "last_name": "Boom",
                "email": f"{PREFIX}{suffix}@vereniging.test",
                "status": "Active",
                "iban": "NL91ABNA0417164300",
            }
        )

    def test_an_administrator_creates_a_members_account_with_verenigingen_roles(self):
        frappe.set_user(self.admin)
        member = self.new_member("a1").insert()
        self.assertEqual(member.full_name, "Anna ten Boom")
        user = frappe.get_doc({"doctype": "User", "email": member.email, "first_name": "Anna", "last_name": "Boom"})
        user.append_roles(Roles.MEMBER)
        user.insert()
        member.user = user.name
        member.save()
        self.assertTrue(frappe.has_permission("User", "write", user.name, user=self.admin))

    def test_an_administrator_who_opens_a_staff_user_is_not_permitted(self):
        frappe.set_user(self.admin)
        staff = frappe.get_doc("User", self.staff)
        self.assertFalse(frappe.has_permission("User", "read", staff, user=self.admin))
        self.assertRaises(frappe.PermissionError, staff.check_permission, "read")
        listed = frappe.get_list("User", filters={"name": self.staff}, pluck="name")
        self.assertEqual(listed, [])

    def test_an_administrator_cannot_grant_a_role_outside_the_verenigingen_set(self):
        frappe.set_user(self.admin)
        user = frappe.get_doc({"doctype": "User", "email": f"{PREFIX}escalate@vereniging.test", "first_name": "X"})
        user.append_roles("System Manager")
        self.assertRaises(frappe.PermissionError, user.insert)

    def test_an_administrator_cannot_change_a_user_who_is_no_member(self):
        frappe.set_user(self.admin)
        staff = frappe.get_doc("User", self.staff)
        staff.first_name = "Changed"
        self.assertRaises(frappe.PermissionError, staff.save)

    def test_a_manager_works_with_members_but_creates_no_users_and_deletes_nothing(self):
        frappe.set_user(self.manager)
        member = self.new_member("m1").insert()
        self.assertTrue(frappe.has_permission("Member", "read", member.name, user=self.manager))
        self.assertFalse(frappe.has_permission("Member", "delete", member.name, user=self.manager))
        self.assertFalse(frappe.has_permission("User", "create", user=self.manager))
        self.assertTrue(frappe.has_permission("Bulk Operation Tracker", "read", user=self.manager))
        self.assertFalse(frappe.has_permission("Verenigingen Settings", "write", user=self.manager))

    def test_a_volunteer_reads_members_but_not_their_bank_or_birth_details(self):
        frappe.set_user(self.volunteer)
        self.assertTrue(frappe.has_permission("Member", "read", user=self.volunteer))
        self.assertFalse(frappe.has_permission("Member", "write", user=self.volunteer))
        readable = frappe.get_meta("Member").get_permlevel_access("read", user=self.volunteer)
        self.assertEqual(readable, [0])

    def test_a_member_sees_none_of_the_administration(self):
        frappe.set_user(self.member_user)
        for doctype in (
            "Member",
            "Account Creation Request",
            "Bulk Operation Tracker",
            "Mijnrood CSV Import",
            "Verenigingen Settings",
        ):
            self.assertFalse(frappe.has_permission(doctype, "read", user=self.member_user), doctype)

    def test_an_administrator_cannot_link_a_member_to_a_staff_user(self):
        frappe.set_user(self.admin)
        member = self.new_member("s1")
        member.insert()
        member.user = self.staff
        self.assertRaises(frappe.PermissionError, member.save)

    def test_an_administrator_cannot_grant_itself_a_role_beyond_a_members(self):
        frappe.set_user(self.admin)
        own = frappe.get_doc("User", self.admin)
        own.append_roles("System Manager")
        self.assertRaises(frappe.PermissionError, own.save)

    def test_a_manager_cannot_link_a_member_to_a_staff_user_either(self):
        frappe.set_user(self.manager)
        member = self.new_member("s2")
        member.insert()
        member.user = self.staff
        self.assertRaises(frappe.PermissionError, member.save)

    def test_an_administrator_cannot_change_another_administrator_even_as_a_members_user(self):
        other = make_user(f"{PREFIX}other-admin@vereniging.test", Roles.ADMINISTRATOR)
        member = self.new_member("o1")
        member.insert()
        frappe.db.set_value("Member", member.name, "user", other)  # as the test runner: the setup, not the case
        frappe.set_user(self.admin)
        self.assertFalse(frappe.has_permission("User", "write", other, user=self.admin))
        account = frappe.get_doc("User", other)
        account.first_name = "Taken"
        self.assertRaises(frappe.PermissionError, account.save)

    def test_nobody_but_the_engine_writes_account_creation_requests(self):
        for user in (self.admin, self.manager):
            frappe.set_user(user)
            self.assertFalse(frappe.has_permission("Account Creation Request", "create", user=user), user)
            self.assertFalse(frappe.has_permission("Account Creation Request", "write", user=user), user)

    def test_an_administrator_sees_no_contact_but_those_of_members(self):
        staff_contact = frappe.get_doc(
            {"doctype": "Contact", "first_name": "Staff", "user": self.staff, "email_ids": []}
        ).insert()
        frappe.set_user(self.admin)
        self.assertFalse(frappe.has_permission("Contact", "read", staff_contact, user=self.admin))
        self.assertEqual(frappe.get_list("Contact", filters={"name": staff_contact.name}, pluck="name"), [])
