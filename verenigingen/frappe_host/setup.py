"""What installing (and migrating) the app sets up on a site: the Verenigingen roles and role profile."""

import frappe

from verenigingen.accounts.states import Roles
from verenigingen.frappe_host.permissions import grant_account_permissions

# Desk access: administrators and managers work in Desk; members and volunteers use the portal.
ROLES = {
    Roles.ADMINISTRATOR: 1,
    Roles.MANAGER: 1,
    Roles.MEMBER: 0,
    Roles.VOLUNTEER: 0,
}
MEMBER_PROFILE = "Verenigingen Member"
SETTINGS = "Verenigingen Settings"


def before_install() -> None:
    # Installing saves the settings single (its default role is a link to a role) before after_install.
    ensure_roles()


def after_install() -> None:
    ensure_roles()
    grant_account_permissions()
    # Syncing the DocTypes made the roles their permissions name, all with Desk access: set it once.
    for role, desk_access in ROLES.items():
        frappe.db.set_value("Role", role, "desk_access", desk_access)


def after_migrate() -> None:
    ensure_roles()
    grant_account_permissions()
    fill_empty_settings()


def fill_empty_settings() -> None:
    """A settings field left empty (an install that stopped half-way) gets its default; never changes a value
    an administrator set."""
    meta = frappe.get_meta(SETTINGS)
    for field in meta.fields:
        if field.default and frappe.db.get_single_value(SETTINGS, field.fieldname) in (None, "", 0):
            frappe.db.set_single_value(SETTINGS, field.fieldname, field.default)


def ensure_roles() -> None:
    """Create what is missing; never change what an administrator adjusted since."""
    for role, desk_access in ROLES.items():
        if not frappe.db.exists("Role", role):
            frappe.get_doc({"doctype": "Role", "role_name": role, "desk_access": desk_access}).insert()
    if not frappe.db.exists("Role Profile", MEMBER_PROFILE):
        profile = frappe.get_doc({"doctype": "Role Profile", "role_profile": MEMBER_PROFILE})
        profile.append("roles", {"role": Roles.MEMBER})
        profile.insert()
