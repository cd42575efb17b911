"""One of the bulk batch slots: the engine's cap on concurrent batches, held under a lease."""

from frappe.model.document import Document


class VerenigingenBatchSlot(Document):
    pass
