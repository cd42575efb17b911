"""Cells a spreadsheet would run as a formula (CSV injection): spotted on reading, neutralised on writing.

A spreadsheet evaluates a cell that starts with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return
before one), so ``=HYPERLINK(...)`` or ``+cmd|' /C calc'!A0`` in a file the operator opens can run
commands. A sign followed by nothing but digits and number punctuation (``+31 6 1234 5678``,
``-12,50``) holds no function, reference or command and is harmless.
"""

import re

RISKY_FIRST = frozenset("=+-@\t\r")
_FULLWIDTH = frozenset("＝＋－＠")  # some spreadsheets read these as their ASCII forms
NEUTRALISER = "'"  # a leading apostrophe makes spreadsheets show the cell as text
_PLAIN_NUMBER = re.compile(r"[+-][\d\s+\-.,()/]*")


def is_plain_number(text: str) -> bool:
    """A signed number such as a phone number or an amount: no letters, references or operators beyond + and -."""
    return _PLAIN_NUMBER.fullmatch(text) is not None


def is_formula(cell: str) -> bool:
    """Would a spreadsheet treat this cell as a formula (ignoring leading white space, as some do)?"""
    text = cell.lstrip()
    return bool(text) and (text[0] in RISKY_FIRST or text[0] in _FULLWIDTH or cell[:1] in ("\t", "\r"))


def neutralised(text: str) -> bool:
    """A formula written out neutralised earlier (``'=...``): still not a value to store."""
    return text[:1] == NEUTRALISER and is_formula(text[1:])


def neutralise(cell: str) -> str:
    """The cell as text a spreadsheet will not run; harmless numbers stay as they are."""
    text = cell.strip()
    if not is_formula(cell) or is_plain_number(text):
        return cell
    return NEUTRALISER + cell
