"""A Mijnrood export attached for import: the counts, the rejected rows and the tracker of its accounts."""

from frappe.model.document import Document

from verenigingen.frappe_host.files import keep_export_private


class MijnroodCSVImport(Document):
    def on_update(self):
        keep_export_private(self)
