"""The app on a real site: roles, role profile and DocTypes as installing it leaves them."""

import frappe
from frappe.tests.utils import FrappeTestCase

from verenigingen.frappe_host.setup import MEMBER_PROFILE, ROLES


class TestInstall(FrappeTestCase):
    def test_the_roles_exist_with_the_desk_access_they_need(self):
        for role, desk_access in ROLES.items():
            self.assertEqual(frappe.db.get_value("Role", role, "desk_access"), desk_access, role)

    def test_the_member_role_profile_grants_the_member_role(self):
        profile = frappe.get_doc("Role Profile", MEMBER_PROFILE)
        self.assertEqual([r.role for r in profile.roles], ["Verenigingen Member"])

    def test_the_doctypes_are_in_the_app_module(self):
        for doctype in (
            "Member",
            "Account Creation Request",
            "Bulk Operation Tracker",
            "Mijnrood CSV Import",
            "Verenigingen Settings",
        ):
            self.assertEqual(frappe.db.get_value("DocType", doctype, "module"), "Verenigingen", doctype)

    def test_settings_carry_the_bulk_defaults(self):
        settings = frappe.get_single("Verenigingen Settings")
        self.assertEqual(
            (settings.batch_size, settings.max_concurrent_batches, settings.batch_timeout, settings.retry_backoff),
            (50, 5, 1800, "300,600,1200"),
        )
        self.assertEqual((settings.bulk_queue, settings.bulk_priority), ("bulk", "Low"))
