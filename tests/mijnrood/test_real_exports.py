"""Exports as Mijnrood deployments really write them: Excel NL CSV, other headers, serial dates, free text."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import TODAY, member_row
from verenigingen.mijnrood import ExportError, MijnroodExport
from verenigingen.mijnrood.summary import ValidationSummary

# A deployment that calls the chapter Afdeling and the status Lidmaatschapsstatus.
AFDELING_HEADER = [
    "Lidnr.",
    "Voornaam",
    "Tussenvoegsel",
    "Achternaam",
    "Geboortedatum",
    "Inschrijfdatum",
    "Afdeling",
    "E-mailadres",
    "Telefoonnr.",
    "Postcode",
    "Lidmaatschapsstatus",
]


def excel_nl(tmp_path, rows, header=AFDELING_HEADER, name="Export Ledendatabase.csv"):
    """Semicolons, Windows-1252 and CRLF: what Excel (Dutch) writes when the workbook is saved as CSV."""
    lines = [";".join(header), *(";".join(row) for row in rows)]
    path = tmp_path / name
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("cp1252"))
    return path


def row(
    *,
    member_id="1001",
    first="José",
    last="Müller",
    born="32967",
    joined="44197,63542824",
    chapter="Utrecht",
    email="jose.muller@example.nl",
    phone="0612345678",
    postcode="3511 AB",
    status="Lid",
):
    return [member_id, first, "", last, born, joined, chapter, email, phone, postcode, status]


def read(path, **options):
    export = MijnroodExport(path, today=TODAY, **options)
    return export, list(export)


def warnings_of(result):
    return [(w.field, w.code) for w in result.warnings]


def test_an_excel_nl_export_of_another_deployment_reads_with_serial_dates(tmp_path):
    export, (result,) = read(excel_nl(tmp_path, [row()]))
    assert export.encoding == "cp1252" and export.delimiter == ";"
    assert result.valid, result.errors
    values = result.record
    assert (values["first_name"], values["last_name"], values["chapter"]) == ("José", "Müller", "Utrecht")
    assert (values["birth_date"], values["member_since"]) == ("1990-04-04", "2021-01-01")
    assert (values["membership_type"], values["status"]) == ("Lid", "Active")
    assert export.header.ignored == ()


@pytest.mark.parametrize(
    ("phone", "stored", "code"),
    [
        ("n.v.t.", None, None),
        ("0612345678 (mam)", "+31612345678", "phone_from_text"),
        ("061234567", None, "unreadable_phone"),
        ("bellen via moeder", None, "unreadable_phone"),
        ("06 12345678 of 020 1234567", None, "unreadable_phone"),
    ],
)
def test_a_phone_in_free_text_never_costs_the_member(tmp_path, phone, stored, code):
    _, (result,) = read(excel_nl(tmp_path, [row(phone=phone)]))
    assert result.valid
    assert result.record["phone"] == stored
    assert warnings_of(result) == ([("phone", code)] if code else [])
    if code:
        assert result.warnings[0].value == phone


def test_an_unknown_status_keeps_the_member_without_a_status_unless_mapped(tmp_path):
    path = excel_nl(tmp_path, [row(status="Erelid")])
    _, (result,) = read(path)
    assert result.valid and result.record["status"] is None
    assert warnings_of(result) == [("membership_type", "unknown_membership_type")]
    _, (mapped,) = read(path, membership_types={"erelid": "Active"})
    assert (mapped.record["membership_type"], mapped.record["status"], mapped.warnings) == ("erelid", "Active", [])


def test_a_double_registration_is_skipped_and_never_collides_with_the_member(tmp_path):
    rows = [row(status="Dubbel"), row(), row(member_id="1002", status="dubbel", email="")]
    _, results = read(excel_nl(tmp_path, rows))
    assert [(r.valid, r.errors, r.skipped and r.skipped.code) for r in results] == [
        (False, [], "double_registration"),
        (True, [], None),
        (False, [], "double_registration"),
    ]


@pytest.mark.parametrize("markers", [["-"] * 11, ["n.v.t."] * 11, ["onbekend", "unknown", "n.a.", "-"] + [""] * 7])
def test_rows_of_empty_markers_are_skipped(tmp_path, markers):
    _, results = read(excel_nl(tmp_path, [markers, row()]))
    assert [r.skipped.code if r.skipped else "valid" for r in results] == ["empty_row", "valid"]


def test_an_export_without_a_status_column_reads_with_one_warning_for_the_file(tmp_path):
    header = [h for h in AFDELING_HEADER if h != "Lidmaatschapsstatus"]
    export, results = read(excel_nl(tmp_path, [row()[:-1], row(member_id="2", email="b@x.nl")[:-1]], header))
    assert all(r.valid and r.record["status"] is None and not r.warnings for r in results)
    assert [(w.row, w.code) for w in export.file_warnings] == [(1, "no_status_column")]


@pytest.mark.parametrize("column", ["Steunlidnr.", "steunlidnummer"])
def test_a_support_member_export_is_refused(tmp_path, column):
    header = [column, *AFDELING_HEADER[1:]]
    with pytest.raises(ExportError, match="support members"):
        MijnroodExport(excel_nl(tmp_path, [row()], header))


def test_a_trailing_star_on_the_chapter_names_the_same_chapter(tmp_path):
    _, (result,) = read(excel_nl(tmp_path, [row(chapter="Amsterdam*")]))
    assert result.record["chapter"] == "Amsterdam"
    assert warnings_of(result) == [("chapter", "chapter_marker")]


def test_smaller_spellings_a_person_would_type(export_file):
    rows = [
        member_row(Contributiebedrag="12,50 €", Betaalperiode="driemaandelijks", Landcode="UK", Postcode="SW1A 1AA"),
        member_row(**{"Lidnr.": "2", "E-mailadres": "b@x.nl", "Contributiebedrag": "EUR 12,50"}),
        member_row(**{"Lidnr.": "3", "E-mailadres": "c@x.nl", "Geboortedatum": "1990/01/15"}),
        member_row(**{"Lidnr.": "4", "E-mailadres": "d@x.nl", "Betaalperiode": "yearly"}),
    ]
    results = list(MijnroodExport(export_file(rows), today=TODAY))
    assert all(r.valid for r in results), [r.errors for r in results]
    first = results[0].record
    assert (str(first["dues_amount"]), first["billing_frequency"], first["country"]) == ("12.50", "Quarterly", "GB")
    assert str(results[1].record["dues_amount"]) == "12.50"
    assert results[2].record["birth_date"] == "1990-01-15"
    assert results[3].record["billing_frequency"] == "Annually"


def test_an_email_local_part_over_64_characters_is_invalid(export_file):
    (result,) = MijnroodExport(export_file([member_row(**{"E-mailadres": "a" * 65 + "@example.nl"})]), today=TODAY)
    assert [(e.field, e.code) for e in result.errors] == [("email", "invalid_email")]
    (ok,) = MijnroodExport(export_file([member_row(**{"E-mailadres": "a" * 64 + "@example.nl"})]), today=TODAY)
    assert ok.valid


def test_an_implausible_amount_is_a_warning(export_file):
    (result,) = MijnroodExport(export_file([member_row(Contributiebedrag="1.250,00")]), today=TODAY)
    assert result.valid and warnings_of(result) == [("dues_amount", "implausible_amount")]


def test_free_text_longer_than_the_member_holds_is_rejected_not_cut(export_file):
    (result,) = MijnroodExport(export_file([member_row(Plaats="x" * 141)]), today=TODAY)
    assert [(e.field, e.code) for e in result.errors] == [("city", "too_long")]


def test_every_row_is_valid_invalid_or_skipped_in_the_summary(tmp_path):
    rows = [row(), row(member_id="2", email="b@x.nl", status="Dubbel"), ["-"] * 11, row(member_id="3", postcode="0000")]
    summary = ValidationSummary()
    for result in MijnroodExport(excel_nl(tmp_path, rows), today=TODAY):
        summary.add(result)
    assert (summary.rows, summary.valid, summary.invalid, len(summary.skipped)) == (4, 1, 1, 2)


def test_validate_json_lists_skipped_rows_and_reads_the_mapping_from_the_settings(tmp_path):
    path = excel_nl(tmp_path, [row(status="Erelid"), row(member_id="2", email="b@x.nl", status="Dubbel")])
    env = {**os.environ, "VERENIGINGEN_MEMBERSHIP_TYPES": "Erelid=Active"}
    done = subprocess.run(
        [sys.executable, "-m", "verenigingen.standalone.cli", "validate", "--json", str(path)],
        capture_output=True,
        text=True,
        env=env,
    )
    report = json.loads(done.stdout)
    assert (report["rows"], report["valid"], report["invalid"]) == (2, 1, 0)
    assert report["skipped"] == [{"row": 3, "code": "double_registration", "message": report["skipped"][0]["message"]}]
    assert report["records"][0]["status"] == "Active" and report["warnings"] == []
    refused = subprocess.run(
        [sys.executable, "-m", "verenigingen.standalone.cli", "validate", str(path)],
        capture_output=True,
        text=True,
        env={**env, "VERENIGINGEN_MEMBERSHIP_TYPES": "Erelid=Actief"},
    )
    assert refused.returncode == 2 and "VERENIGINGEN_MEMBERSHIP_TYPES" in refused.stderr
    assert "Traceback" not in refused.stderr
