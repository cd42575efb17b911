"""The audit trail on a document's timeline, in the reader's language. The engine writes its entries in
English, each with its template (store.add_audit), as comments that Frappe's timeline leaves out; this hook
puts them back in, said for whoever reads them."""

import frappe
from frappe.utils import escape_html

from verenigingen.frappe_host.store import AUDIT_COMMENT
from verenigingen.frappe_host.translate import stored_reason


def audit_entries(doctype: str, docname: str) -> list[dict]:
    """Frappe's ``additional_timeline_content`` hook, for the documents the engine writes audit entries on."""
    frappe.has_permission(doctype, "read", docname, throw=True)
    comment = frappe.qb.DocType("Comment")
    rows = (
        frappe.qb.from_(comment)
        .select(comment.creation, comment.content, comment.subject)
        .where(comment.reference_doctype == doctype)
        .where(comment.reference_name == docname)
        .where(comment.comment_type == AUDIT_COMMENT)
        .orderby(comment.creation)
        .orderby(comment.name)
        .run(as_dict=True)
    )
    return [
        {
            "creation": row.creation,
            "content": escape_html(stored_reason(row.content, row.subject) or ""),
            "is_card": False,
        }
        for row in rows
    ]
