"""The rejected-rows file: the rows an import did not take, as they were, with the reason, to fix and import again.

It is opened in a spreadsheet, so no cell may run as a formula there: such cells are written with a
leading ``'`` (and the reason says so). A row keeps every cell it had, also those beyond the header
(often the very cells its reason asks to fix). The reasons come first, so that those extra cells
still line up. The file is created readable by its owner only: it holds IBANs and birth dates.
"""

import csv
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from verenigingen.mijnrood.formulas import neutralise
from verenigingen.text import Text

ROW_COLUMN = Text("Row")
REASON_COLUMN = Text("Reason rejected")
NEUTRALISED_NOTE = Text("cells that would run as a spreadsheet formula are written with a leading ' (remove it)")


@dataclass(frozen=True)
class RejectedRow:
    row: int  # the row number in the imported file
    cells: list[str]
    reasons: list[str]


def rejected_cells(rejected: RejectedRow, say: Callable[[str], str] = str) -> list[str]:
    """One line of the file: row number, reasons (each said by ``say``), then every cell, neutralised where
    needed."""
    cells = [neutralise(cell) for cell in rejected.cells]
    reasons = list(rejected.reasons)
    if cells != rejected.cells:
        reasons.append(NEUTRALISED_NOTE)
    return [str(rejected.row), "; ".join(say(reason) for reason in reasons), *cells]


def write_rejected_rows(
    path: Path, header: list[str], rows: Iterable[RejectedRow], delimiter: str = ";", say: Callable[[str], str] = str
) -> Path:
    """Write the file (UTF-8 with BOM, as Excel opens it) with owner-only permissions from the first byte. Its
    own words (column names, reasons) are said by ``say``: in one language, the reader's on Frappe."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600)
    os.fchmod(descriptor, 0o600)  # an older file of the same name keeps its mode through O_TRUNC
    with open(descriptor, "w", encoding="utf-8-sig", newline="") as stream:
        writer = csv.writer(stream, delimiter=delimiter)
        writer.writerow([say(ROW_COLUMN), say(REASON_COLUMN), *(neutralise(cell) for cell in header)])
        for rejected in rows:
            writer.writerow(rejected_cells(rejected, say))
    return path
