"""Shared helpers: write small exports exactly as a test needs them."""

import csv
from datetime import date
from pathlib import Path

import pytest

from verenigingen.mijnrood.generator import HEADER

# A fixed "today" keeps age and future-date rules independent of the day the suite runs.
TODAY = date(2026, 6, 1)

VALID_ROW = {
    "Lidnr.": "1001",
    "Voornaam": "Anna",
    "Tussenvoegsel": "ten",
    "Achternaam": "Boom",
    "Geboortedatum": "15-04-1990",
    "Inschrijfdatum": "01-01-2020",
    "Groep": "Amsterdam",
    "E-mailadres": "Anna.tenBoom@Example.nl",
    "Telefoonnr.": "06 1234 5678",
    "Adres": "Kerkstraat 1",
    "Plaats": "Amsterdam",
    "Postcode": "1234ab",
    "Landcode": "NL",
    "IBAN": "NL91 ABNA 0417 1643 00",
    "Contributiebedrag": "12,50",
    "Betaalperiode": "maandelijks",
    "Mollie CID": "cst_8uXkq2XsJk",
    "Mollie SID": "sub_rVKGtNd6s3",
    "Lidmaatschapstype": "lid",
    "Betaald": "ja",
    "Privacybeleid geaccepteerd": "ja",
}


def member_row(**changes: str) -> dict[str, str]:
    """A valid row with some columns changed; keys are header names."""
    return {**VALID_ROW, **changes}


def write_export(
    path: Path,
    rows: list[dict[str, str]] | list[list[str]],
    header: list[str] | tuple[str, ...] = HEADER,
    encoding: str = "utf-8",
    delimiter: str = ";",
) -> Path:
    with path.open("w", encoding=encoding, newline="") as stream:
        writer = csv.writer(stream, delimiter=delimiter)
        writer.writerow(header)
        for row in rows:
            writer.writerow([row.get(column, "") for column in header] if isinstance(row, dict) else row)
    return path


@pytest.fixture
def export_file(tmp_path):
    """Call with rows (and write_export options) to get the path of a fresh export."""
    counter = iter(range(1_000_000))

    def make(rows, **options) -> Path:
        return write_export(tmp_path / f"export{next(counter)}.csv", rows, **options)

    return make
