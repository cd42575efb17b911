"""What a Verenigingen Administrator may do to users, and no more.

Creating a member's account needs create and write on User (and Contact). Frappe grants those per
DocType, for every user; these hooks narrow them down: a Verenigingen Administrator who is not a System
Manager sees and changes only the users of members (and their own), and grants no role outside the
Verenigingen set. Controllers can only deny in Frappe, so these checks cannot widen anything.
"""

import frappe
from frappe import _
from frappe.permissions import add_permission, update_permission_property

from verenigingen.accounts.states import Roles

VERENIGINGEN_ROLES = frozenset({Roles.ADMINISTRATOR, Roles.MANAGER, Roles.MEMBER, Roles.VOLUNTEER})
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


# Roles every user holds, which say nothing about what the user may do.
_AUTOMATIC_ROLES = frozenset({"All", "Guest", "Desk User"})


def guard_member_link(member) -> None:
    """A narrowed administrator links a member only to a user who holds Verenigingen roles alone: a staff
    user of the same e-mail address is never brought under the administrator's control."""
    if not member.user or not member.has_value_changed("user") or not _narrowed(frappe.session.user):
        return
    other = set(frappe.get_roles(member.user)) - VERENIGINGEN_ROLES - _AUTOMATIC_ROLES
    if other:
        frappe.throw(
            _("User {0} has roles outside Verenigingen; only a System Manager can link it to a member.").format(
                member.user
            ),
            frappe.PermissionError,
        )


def user_has_permission(doc, ptype=None, user=None, debug=False) -> bool:
    """A narrowed administrator: a new user, their own, or a member's user; any other user is not permitted."""
    user = user or frappe.session.user
    if not _narrowed(user) or doc.name == user or doc.is_new():
        return True
    return _is_member_user(doc.name)


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
    """Before a narrowed administrator saves a user: a member's user, and Verenigingen roles only."""
    if not _narrowed(frappe.session.user) or doc.name == frappe.session.user:
        return
    if not doc.is_new() and not _is_member_user(doc.name):
        frappe.throw(_("You may only change the users of members."), frappe.PermissionError)
    before = doc.get_doc_before_save()
    previous = {r.role for r in before.get("roles")} if before else set()
    added = {r.role for r in doc.get("roles")} - previous
    if outside := sorted(added - VERENIGINGEN_ROLES):
        frappe.throw(
            _("You may only grant Verenigingen roles, not {0}.").format(", ".join(outside)), frappe.PermissionError
        )
