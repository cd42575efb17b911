"""What a Verenigingen Administrator may do to users, and no more.

Creating a member's account needs create and write on User (and Contact). Frappe grants those per
DocType, for every user; these hooks narrow them down. A Verenigingen Administrator who is not a System
Manager changes only a new user, or the user of a member who holds member-level roles alone (Manager,
Member, Volunteer): never a staff user, never another administrator, never itself beyond its own fields.
It grants only those roles. Nobody but a System Manager links a member to a user with other roles.
Controllers can only deny in Frappe, so these checks cannot widen anything.
"""

import frappe
from frappe import _
from frappe.permissions import add_permission, update_permission_property

from verenigingen.accounts.states import Roles

# What a Verenigingen Administrator may grant, and the roles of the users it may change.
GRANTABLE_ROLES = frozenset({Roles.MANAGER, Roles.MEMBER, Roles.VOLUNTEER})
# Roles every user holds, which say nothing about what the user may do.
_AUTOMATIC_ROLES = frozenset({"All", "Guest", "Desk User"})
# permlevel 1 of User holds its roles and role profile.
_GRANTS = {"User": {0: ("read", "write", "create"), 1: ("read", "write")}, "Contact": {0: ("read", "write", "create")}}


def grant_account_permissions() -> None:
    """Custom DocPerms for the Verenigingen Administrator (added once; an administrator may adjust them)."""
    for doctype, levels in _GRANTS.items():
        for level, rights in levels.items():
            if frappe.db.exists("Custom DocPerm", {"parent": doctype, "role": Roles.ADMINISTRATOR, "permlevel": level}):
                continue
            add_permission(doctype, Roles.ADMINISTRATOR, level)
            for right in rights:
                update_permission_property(doctype, Roles.ADMINISTRATOR, level, right, 1, validate=False)


def _narrowed(user: str) -> bool:
    """Does this user manage users only through the Verenigingen Administrator role?"""
    if user == "Administrator":
        return False
    roles = frappe.get_roles(user)
    return Roles.ADMINISTRATOR in roles and Roles.SYSTEM_MANAGER not in roles


def _is_member_user(name: str) -> bool:
    if not name:
        return False
    return frappe.db.exists("Member", {"user": name}) is not None or bool(frappe.db.get_value("User", name, "member"))


def _holds_member_roles_only(user: str) -> bool:
    stored = frappe.get_all("Has Role", filters={"parent": user, "parenttype": "User"}, pluck="role")
    return set(stored) <= GRANTABLE_ROLES | _AUTOMATIC_ROLES


def _manageable(name: str) -> bool:
    """A user a narrowed administrator may change: a member's, with member-level roles only."""
    return _is_member_user(name) and _holds_member_roles_only(name)


def _is_system_manager(user: str) -> bool:
    return user == "Administrator" or Roles.SYSTEM_MANAGER in frappe.get_roles(user)


def guard_member_link(member) -> None:
    """Only a System Manager links a member to a user with more than member-level roles: a staff user or
    an administrator of the same e-mail address is never brought under another administrator's control."""
    if not member.user or not member.has_value_changed("user") or _is_system_manager(frappe.session.user):
        return
    if not _holds_member_roles_only(member.user):
        frappe.throw(
            _("User {0} has roles beyond those of a member; only a System Manager can link it to a member.").format(
                member.user
            ),
            frappe.PermissionError,
        )


def user_has_permission(doc, ptype=None, user=None, debug=False) -> bool:
    """A narrowed administrator: a new user, their own, or a manageable member's user; any other user is
    not permitted."""
    user = user or frappe.session.user
    if not _narrowed(user) or doc.name == user or doc.is_new():
        return True
    return _manageable(doc.name)


def user_query_conditions(user=None) -> str:
    """The list view of a narrowed administrator shows members' users (and their own) only."""
    user = user or frappe.session.user
    if not _narrowed(user):
        return ""
    own = frappe.db.escape(user)  # Frappe's hook wants SQL text: the one value in it is escaped
    return (
        f"(`tabUser`.`name` in (select `user` from `tabMember` where `user` is not null) or `tabUser`.`name` = {own})"  # noqa: S608
    )


def guard_user(doc, method=None) -> None:
    """Before a narrowed administrator saves a user: a manageable member's user (or its own), and no role
    added beyond a member's, also to itself."""
    if not _narrowed(frappe.session.user):
        return
    own = doc.name == frappe.session.user
    if not own and not doc.is_new() and not _manageable(doc.name):
        frappe.throw(_("You may only change the users of members."), frappe.PermissionError)
    before = doc.get_doc_before_save()
    previous = {r.role for r in before.get("roles")} if before else set()
    added = {r.role for r in doc.get("roles")} - previous
    if outside := sorted(added - GRANTABLE_ROLES):
        frappe.throw(
            _("You may only grant the roles of members, not {0}.").format(", ".join(outside)), frappe.PermissionError
        )


def contact_has_permission(doc, ptype=None, user=None, debug=False) -> bool:
    """A narrowed administrator: a new contact, or the contact of a member's user; no other contact."""
    user = user or frappe.session.user
    if not _narrowed(user) or doc.is_new():
        return True
    return bool(doc.user) and _manageable(doc.user)


def contact_query_conditions(user=None) -> str:
    user = user or frappe.session.user
    if not _narrowed(user):
        return ""
    return "(`tabContact`.`user` in (select `user` from `tabMember` where `user` is not null))"
