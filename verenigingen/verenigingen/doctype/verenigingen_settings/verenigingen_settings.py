"""The bulk account settings of the site: read by the engine as AccountSettings."""

import frappe
from frappe import _
from frappe.model.document import Document

from verenigingen.dutch import InvalidValue
from verenigingen.dutch.membership import parse_extra_types


class VerenigingenSettings(Document):
    def validate(self):
        for field in ("batch_size", "max_concurrent_batches", "batch_timeout"):
            if (self.get(field) or 0) < 1:
                frappe.throw(_("{0} must be at least 1").format(self.meta.get_label(field)))
        try:
            backoff = [int(s) for s in (self.retry_backoff or "").split(",")]
        except ValueError:
            backoff = []
        if not backoff or min(backoff) < 1:
            frappe.throw(_("Retry Backoff must be whole seconds, comma-separated, such as 300,600,1200"))
        try:
            parse_extra_types(self.membership_types or "")
        except InvalidValue as exc:
            frappe.throw(_("Membership Types Of Our Own: {0}").format(exc.message))
