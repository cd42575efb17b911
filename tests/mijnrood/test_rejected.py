"""The rejected-rows file: safe to open in a spreadsheet, complete, and its owner's only."""

import csv
import stat

import pytest

from verenigingen.mijnrood.formulas import neutralise
from verenigingen.mijnrood.rejected import NEUTRALISED_NOTE, RejectedRow, write_rejected_rows


@pytest.mark.parametrize(
    "cell",
    [
        "=cmd|' /C calc'!A0",
        "@SUM(A1)",
        "+cmd|' /C calc'!A0",
        '=HYPERLINK("http://x","klik")',
        "-2+3+cmd|' /C calc'!A0",
        "\t=1",
        "\r=1",
        "  =1+1",
    ],
)
def test_formulas_are_written_neutralised(tmp_path, cell):
    path = write_rejected_rows(tmp_path / "r.csv", ["Plaats"], [RejectedRow(7, [cell], ["Plaats: formula"])])
    (_, row) = list(csv.reader(path.open(encoding="utf-8-sig", newline=""), delimiter=";"))
    assert row[2] == "'" + cell
    assert row[:2] == ["7", f"Plaats: formula; {NEUTRALISED_NOTE}"]


@pytest.mark.parametrize("cell", ["+31 6 1234 5678", "-12,50", "Amsterdam", "'s-Hertogenbosch", ""])
def test_harmless_cells_are_written_as_they_were(cell):
    assert neutralise(cell) == cell


def test_extra_cells_are_kept_and_the_file_is_its_owners_only(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("old")
    path.chmod(0o644)
    write_rejected_rows(path, ["Voornaam", "Achternaam"], [RejectedRow(3, ["Jan", "Jansen", "extra", "=1"], ["x"])])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    rows = list(csv.reader(path.open(encoding="utf-8-sig", newline=""), delimiter=";"))
    assert rows == [
        ["Row", "Reason rejected", "Voornaam", "Achternaam"],
        ["3", f"x; {NEUTRALISED_NOTE}", "Jan", "Jansen", "extra", "'=1"],
    ]


def test_the_files_own_words_are_said_by_the_host_and_the_cells_are_left_as_they_were(tmp_path):
    """On Frappe the column names, reasons and note are said in the reader's language; the export's header and
    cells are the operator's own and stay as they were."""
    rows = [RejectedRow(4, ["Jan", "=1"], ["Voornaam: too short"])]
    path = write_rejected_rows(tmp_path / "r.csv", ["Voornaam", "Plaats"], rows, say=str.upper)
    header, row = list(csv.reader(path.open(encoding="utf-8-sig", newline=""), delimiter=";"))
    assert header == ["ROW", "REASON REJECTED", "Voornaam", "Plaats"]
    assert row == ["4", f"VOORNAAM: TOO SHORT; {NEUTRALISED_NOTE.upper()}", "Jan", "'=1"]
