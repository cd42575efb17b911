"""The import's reports as private File documents attached to its Mijnrood CSV Import: an operator downloads
them from the form. They hold personal data (the rejected rows keep every cell), so they are private and
the bytes never pass through a public folder; the temporary file is created readable by its owner only."""

import csv
import io
import os
import tempfile
from pathlib import Path

import frappe

from verenigingen.accounts.eligibility import Refusal
from verenigingen.frappe_host.translate import translated
from verenigingen.mijnrood.rejected import RejectedRow, write_rejected_rows
from verenigingen.text import Text

IMPORT = "Mijnrood CSV Import"
REFUSED_COLUMNS = ("Lidnr.", Text("member"), Text("code"), Text("reason"))  # as the standalone refused-members report


def save_file(content: bytes, file_name: str, doctype: str | None = None, name: str | None = None, field=None):
    """A private File, as the session user (its permission follows the document it is attached to)."""
    return frappe.get_doc(
        {
            "doctype": "File",
            "file_name": file_name,
            "content": content,
            "is_private": 1,
            "attached_to_doctype": doctype,
            "attached_to_name": name,
            "attached_to_field": field,
        }
    ).insert()


def rejected_rows_file(import_name: str, stem: str, header: list[str], rows: list[RejectedRow]) -> str:
    """Written with the shared writer (BOM, neutralised formulas), then stored as a File; its URL."""
    with tempfile.TemporaryDirectory() as folder:
        path = write_rejected_rows(Path(folder) / "rejected.csv", header, rows, say=translated)
        content = path.read_bytes()
    saved = save_file(content, f"{stem}-rejected-{import_name}.csv", IMPORT, import_name, "rejected_rows_file")
    return saved.file_url


def refused_accounts_file(import_name: str, stem: str, refusals: list[Refusal]) -> str:
    """One line per member that got no account request: Lidnr. and record name only, no personal data."""
    names = [refusal.member for refusal in refusals]
    ids = dict(frappe.get_list("Member", filters={"name": ["in", names]}, fields=["name", "member_id"], as_list=True))
    stream = io.StringIO()
    writer = csv.writer(stream, delimiter=";")
    writer.writerow([translated(column) for column in REFUSED_COLUMNS])
    for refusal in refusals:
        writer.writerow(
            [ids.get(refusal.member) or refusal.member, refusal.member, refusal.code, translated(refusal.message)]
        )
    content = stream.getvalue().encode("utf-8-sig")
    saved = save_file(content, f"{stem}-no-account-{import_name}.csv", IMPORT, import_name, "refused_accounts_file")
    return saved.file_url


def read_server_file(path: str) -> bytes:
    """The bytes of a file on the server (bench execute only); a clear one-line error otherwise."""
    if not os.path.isfile(path):
        raise frappe.ValidationError(f"no such file: {path}")
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise frappe.ValidationError(f"{path}: cannot be read ({exc.strerror})") from None


def keep_export_private(doc) -> None:
    """The export holds IBANs and birth dates: whichever way Desk uploaded it (public, or before the import
    was saved), the file of ``import_file`` becomes private and attached to this import. Only a file of
    this import, or one not attached to anything yet, is taken: never another document's file."""
    if not doc.import_file:
        return
    candidates = frappe.get_all(
        "File",
        filters={"file_url": doc.import_file},
        fields=["name", "attached_to_doctype", "attached_to_name"],
        order_by="creation desc",
    )
    ours = [f for f in candidates if (f.attached_to_doctype, f.attached_to_name) in ((IMPORT, doc.name), (None, None))]
    if not ours:
        return
    stored = frappe.get_doc("File", ours[0].name)
    if (stored.attached_to_doctype, stored.attached_to_name, stored.is_private) == (IMPORT, doc.name, 1):
        return
    stored.attached_to_doctype, stored.attached_to_name, stored.attached_to_field = IMPORT, doc.name, "import_file"
    stored.is_private = 1  # File moves the bytes into the private folder and changes its URL
    stored.save()
    if stored.file_url != doc.import_file:
        doc.db_set("import_file", stored.file_url, update_modified=False)
