"""A role an Account Creation Request grants to the user it creates."""

from frappe.model.document import Document


class AccountCreationRequestRole(Document):
    pass
