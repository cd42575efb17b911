"""One bulk operation: counters move by atomic increments in the engine, never through this form."""

import frappe
from frappe.model.document import Document


class BulkOperationTracker(Document):
    @property
    def retry_queue(self) -> int:
        """What waits for a retry, derived from the requests (never a hand-kept list on this hot row)."""
        return frappe.db.count(
            "Account Creation Request",
            {"bulk_operation_tracker": self.name, "status": "Failed", "next_retry_at": ("is", "set")},
        )

    @property
    def next_retry_at(self):
        return frappe.db.get_value(
            "Account Creation Request",
            {"bulk_operation_tracker": self.name, "status": "Failed", "next_retry_at": ("is", "set")},
            "min(next_retry_at)",
        )
