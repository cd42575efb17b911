"""A Mijnrood export attached for import: the counts, the rejected rows and the tracker of its accounts."""

from frappe.model.document import Document


class MijnroodCSVImport(Document):
    pass
