"""One member's account request: its state moves only through the engine (verenigingen.accounts)."""

from frappe.model.document import Document

from verenigingen.frappe_host.translate import stored_reason


class AccountCreationRequest(Document):
    def onload(self):
        """The failure reason in the reader's language, for the form (the field keeps the English)."""
        self.set_onload("failure_reason", stored_reason(self.failure_reason, self.failure_text))
