"""Every label and message the Frappe app adds has a Dutch translation in its translation file, with the
same placeholders: a Dutch-speaking administrator gets the whole flow in Dutch."""

import csv
import json
import re
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[1] / "verenigingen"
DUTCH = APP / "translations" / "nl.csv"
JS_CALL = re.compile(r"""__\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'|`([^`$]*)`)""")
# _("..." '...') with the parts of a long message on lines of their own, in either quotes.
PY_STRING = r""""(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'"""
PY_CALL = re.compile(rf"\b_\(\s*((?:(?:{PY_STRING})\s*)+)\)")
# Text("...", value=...): the frappe-free code's messages, translated by their template.
TEXT_CALL = re.compile(rf"\bText\(\s*((?:(?:{PY_STRING})\s*)+)[,)]")
PY_PART = re.compile(r""""((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'""")
PLACEHOLDER = re.compile(r"\{[^{}]*\}")


def doctype_strings() -> set[str]:
    found: set[str] = set()
    for path in (APP / "verenigingen").rglob("*.json"):
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("doctype") != "DocType":
            continue
        found.add(doc["name"])
        for field in doc["fields"]:
            found.update(filter(None, (field.get("label"), field.get("description"))))
            if field["fieldtype"] == "Select":
                found.update(option.strip() for option in (field.get("options") or "").split("\n") if option.strip())
    return found


def code_strings() -> set[str]:
    found: set[str] = set()
    for path in APP.rglob("*.js"):
        for match in JS_CALL.finditer(path.read_text(encoding="utf-8")):
            found.add(next(group for group in match.groups() if group is not None).replace('\\"', '"'))
    for path in APP.rglob("*.py"):
        if path.name == "text.py":  # the Text class itself: its docstring's example is no message
            continue
        text = path.read_text(encoding="utf-8")
        found.update(_joined(match.group(1)) for match in PY_CALL.finditer(text))
        if "from verenigingen.text import Text" in text:  # not rich's Text of the terminal reports
            found.update(_joined(match.group(1)) for match in TEXT_CALL.finditer(text))
    return found


def _joined(parts: str) -> str:
    return "".join(double or single for double, single in PY_PART.findall(parts)).replace('\\"', '"')


def translations() -> dict[str, str]:
    with DUTCH.open(encoding="utf-8", newline="") as file:
        return {row[0]: row[1] for row in csv.reader(file) if row}


def test_the_extraction_finds_the_apps_strings():
    """The checks below would pass on nothing: they must see the forms' labels and the buttons."""
    strings = doctype_strings() | code_strings()
    assert {"Mijnrood CSV Import", "Lidnr.", "Completed with errors", "Retry failed", "Validate"} <= strings
    assert "{0} of {1} rows imported" in strings


@pytest.mark.parametrize("source", sorted(doctype_strings() | code_strings()))
def test_every_string_has_a_dutch_translation(source):
    dutch = translations().get(source)
    assert dutch, f"no Dutch for {source!r} in {DUTCH.name}"
    assert sorted(PLACEHOLDER.findall(dutch)) == sorted(PLACEHOLDER.findall(source)), source


def test_no_translation_is_left_over():
    """A string no longer in the app is removed from the file, so the file says what the app shows."""
    assert set(translations()) - doctype_strings() - code_strings() == set()
