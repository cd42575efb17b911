"""A member's account in Frappe's terms: the User's names and picture, and the Contact Frappe makes for it.

Frappe creates a Contact for every new user in a job of its own (``create_contact``, one per user on the
default queue); the hooks here complete that Contact with what the member record knows: the Dutch name
parts, the phone, and a link to the member (and the member's link back to it). No job of ours is added.

Members' users get the app's neutral picture. Without one, every new user costs a second default-queue job
(``update_gravatar``) and, like every Contact without an image, a request to gravatar.com with a hash of
the member's e-mail address: 9,400 outgoing calls for 4,700 members, each up to 5 s where the network
blocks them. A member may upload a picture of their own at any time.
"""

import frappe
import phonenumbers

MEMBER_PICTURE = "/assets/verenigingen/images/member.svg"


def member_names(member: str) -> dict:
    """A member's User names. Frappe's User joins only first and last name into its full name, so the
    tussenvoegsel goes with the last name there ("Anna", "ten Boom"); the Contact keeps it apart."""
    row = frappe.db.get_value("Member", member, ["first_name", "tussenvoegsel", "last_name"], as_dict=True) or {}
    last = " ".join(part for part in (row.get("tussenvoegsel"), row.get("last_name")) if part)
    return {"first_name": row.get("first_name"), "last_name": last or None}


def _member_of(user: str | None) -> dict | None:
    """The member whose user this is: linked from the member, or (while the account is being made, before
    the member is linked to it) named by the user."""
    if not user:
        return None
    name = frappe.db.get_value("Member", {"user": user}) or frappe.db.get_value("User", user, "member")
    if not name:
        return None
    fields = ["name", "first_name", "tussenvoegsel", "last_name", "phone", "contact"]
    return frappe.db.get_value("Member", name, fields, as_dict=True)


def complete_member_contact(doc, method=None) -> None:
    """Contact before_insert: the member's name parts, phone and a link to the member."""
    member = _member_of(doc.user)
    if member is None:
        return
    doc.first_name = member.first_name or doc.first_name
    doc.middle_name = member.tussenvoegsel or None
    doc.last_name = member.last_name or None
    if member.phone and not any(row.phone == member.phone for row in doc.phone_nos):
        mobile = _is_mobile(member.phone)
        doc.add_phone(member.phone, is_primary_phone=not mobile, is_primary_mobile_no=mobile)
    if not any(row.link_doctype == "Member" and row.link_name == member.name for row in doc.links):
        doc.append("links", {"link_doctype": "Member", "link_name": member.name})
    if not doc.image:  # Contact.validate would otherwise ask gravatar.com
        doc.image = frappe.db.get_value("User", doc.user, "user_image") or None


def link_member_to_contact(doc, method=None) -> None:
    """Contact after_insert: the member links back to its contact, where the session user may say so."""
    member = _member_of(doc.user)
    if member is None or member.contact:
        return
    record = frappe.get_doc("Member", member.name)
    if record.has_permission("write"):
        record.contact = doc.name
        record.save()


def _is_mobile(number: str) -> bool:
    try:
        parsed = phonenumbers.parse(number, "NL")
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.number_type(parsed) == phonenumbers.PhoneNumberType.MOBILE
