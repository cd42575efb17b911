"""What an import would do, before anything is written: the first members as they will be stored, what
happens to each member (new, changed, unchanged, refused), and every row's errors and warnings."""

from collections import Counter

import frappe
from frappe import _

from verenigingen.frappe_host.importer import FrappeImporter
from verenigingen.frappe_host.translate import translated
from verenigingen.mijnrood.rows import Problem
from verenigingen.mijnrood.updates import REFUSE

FIRST_ROWS = 20  # members shown as they will be stored
PROBLEMS_SHOWN = 1000  # errors and warnings listed; the counts are always complete
# The columns of the preview, in the order an administrator reads a member.
PREVIEW_FIELDS = (
    "member_id",
    "full_name",
    "email",
    "phone",
    "birth_date",
    "postcode",
    "city",
    "membership_type",
    "status",
    "member_since",
    "dues_amount",
    "iban",
)


def preview_import(import_name: str, path: str) -> dict:
    """Reads the whole file and the members it matches; writes nothing."""
    importer = FrappeImporter(import_name)
    export = importer.open(path)
    outcomes: Counter = Counter()
    first: list[dict] = []
    problems: list[dict] = []
    counts = Counter()

    def note(kind: str, problem: Problem) -> None:
        counts[kind] += 1
        if len(problems) < PROBLEMS_SHOWN:
            problems.append({"kind": kind, **problem.as_dict(), "message": translated(problem.message)})

    for problem in export.file_warnings:
        note("warning", problem)
    for row, decision in importer.plan(export):
        if row.skipped:
            outcomes["skipped"] += 1
            note("skipped", row.skipped)
            continue
        for problem in row.errors:
            note("error", problem)
        for problem in row.warnings:
            note("warning", problem)
        if decision is None:
            outcomes["rejected"] += 1
        elif decision.outcome == REFUSE:
            outcomes["rejected"] += 1
            note("error", Problem(row.row, decision.field, decision.code or "refused", decision.reason or "", None))
        else:
            outcomes[decision.outcome] += 1
            if len(first) < FIRST_ROWS:
                first.append({"row": row.row, "outcome": decision.outcome, **_shown(row.values)})
    first.sort(key=lambda r: r["row"])
    problems.sort(key=lambda p: (p["row"], p["kind"] != "error"))
    return {
        "file": export.description,
        "rows": sum(outcomes.values()),
        "outcomes": {key: outcomes.get(key, 0) for key in ("create", "update", "unchanged", "rejected", "skipped")},
        "columns": list(PREVIEW_FIELDS),
        "labels": _labels(),
        "ignored_columns": list(export.header.ignored),
        "first_rows": first,
        "problems": problems,
        "problem_counts": {key: counts.get(key, 0) for key in ("error", "warning", "skipped")},
    }


def _shown(values: dict) -> dict:
    return {key: values.get(key) for key in PREVIEW_FIELDS}


def _labels() -> dict[str, str]:
    """The Member form's labels, in the user's language, for the preview's columns and the problems' fields."""
    meta = frappe.get_meta("Member")
    labels = {field.fieldname: _(field.label) for field in meta.fields if field.label}
    return {**labels, "row": _("Row"), "outcome": _("Outcome")}
