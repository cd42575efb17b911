"""One member's account request: its state moves only through the engine (verenigingen.accounts)."""

from frappe.model.document import Document


class AccountCreationRequest(Document):
    pass
