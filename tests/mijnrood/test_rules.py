"""Row rules: what rejects a row, what only warns, and what a valid record looks like."""

import pytest

from tests.conftest import TODAY, member_row
from verenigingen.mijnrood import MEMBER_FIELDS, MijnroodExport


def read(export_file, *rows, **options):
    return list(MijnroodExport(export_file(list(rows), **options), today=TODAY))


def codes(result):
    return [(problem.field, problem.code) for problem in result.errors]


def test_a_valid_row_becomes_a_normalised_member_record(export_file):
    (result,) = read(export_file, member_row())
    assert result.valid and result.warnings == []
    assert list(result.record) == list(MEMBER_FIELDS)
    assert result.record == {
        "member_id": "1001",
        "first_name": "Anna",
        "tussenvoegsel": "ten",
        "last_name": "Boom",
        "full_name": "Anna ten Boom",
        "email": "anna.tenboom@example.nl",
        "birth_date": "1990-04-15",
        "member_since": "2020-01-01",
        "chapter": "Amsterdam",
        "phone": "+31612345678",
        "address_line1": "Kerkstraat 1",
        "city": "Amsterdam",
        "postcode": "1234 AB",
        "country": "NL",
        "iban": "NL91ABNA0417164300",
        "dues_amount": pytest.approx(12.5),
        "billing_frequency": "Monthly",
        "mollie_customer_id": "cst_8uXkq2XsJk",
        "mollie_subscription_id": "sub_rVKGtNd6s3",
        "membership_type": "Lid",
        "status": "Active",
        "paid": "ja",
        "privacy_accepted": "ja",
    }


@pytest.mark.parametrize("marker", ["", "-", "nb", "NB", "n/a", "N/A", "null", "NULL", "?", "  -  "])
def test_empty_markers_mean_empty(export_file, marker):
    (result,) = read(export_file, member_row(**{"Telefoonnr.": marker, "IBAN": marker, "Groep": marker}))
    assert result.valid, result.errors
    assert (result.record["phone"], result.record["iban"], result.record["chapter"]) == (None, None, None)


@pytest.mark.parametrize(("column", "field"), [("Voornaam", "first_name"), ("Achternaam", "last_name")])
@pytest.mark.parametrize("value", ["", "  ", "-", "nb"])
def test_required_names_missing_reject_the_row(export_file, column, field, value):
    (result,) = read(export_file, member_row(**{column: value}))
    assert codes(result) == [(field, "required")]
    assert result.errors[0].value == value
    assert result.record is None


@pytest.mark.parametrize(
    "value", ["=1+1", "@SUM(A1)", "+cmd|' /C calc'!A0", "-foo", "\tAmsterdam", "\r=1", "  =1", "=", "+", "@"]
)
def test_values_that_would_run_as_formulas_are_rejected(export_file, value):
    (result,) = read(export_file, member_row(Plaats=value))
    assert codes(result) == [("city", "formula")]
    assert result.errors[0].value == value


@pytest.mark.parametrize(
    ("column", "value"), [("Telefoonnr.", "+31 6 12345678"), ("Contributiebedrag", "-12"), ("Telefoonnr.", "+3")]
)
def test_a_sign_before_a_number_is_not_a_formula_in_a_numeric_column(export_file, column, value):
    (result,) = read(export_file, member_row(**{column: value}))
    assert "formula" not in [code for _, code in codes(result)]


@pytest.mark.parametrize(
    ("column", "field", "value"),
    [
        ("Plaats", "city", "-2+3+cmd|' /C calc'!A0"),
        ("Plaats", "city", "+31 6 12345678"),
        ("Adres", "address_line1", "-12"),
        ("Telefoonnr.", "phone", "-2+3+cmd|' /C calc'!A0"),
        ("Contributiebedrag", "dues_amount", '+1+HYPERLINK("x")'),
        ("Plaats", "city", "'=1+1"),
        ("Voornaam", "first_name", "'@SUM(A1)"),
    ],
)
def test_a_sign_is_a_formula_outside_numeric_columns_and_a_neutralised_formula_is_no_value(
    export_file, column, field, value
):
    (result,) = read(export_file, member_row(**{column: value}))
    assert (field, "formula") in codes(result)


def test_an_apostrophe_that_neutralises_nothing_is_part_of_the_name(export_file):
    (result,) = read(export_file, member_row(Plaats="'s-Hertogenbosch"))
    assert result.valid
    assert result.record["city"] == "'s-Hertogenbosch"


@pytest.mark.parametrize(
    ("column", "value", "field", "code"),
    [
        ("E-mailadres", "jan@@x.nl", "email", "invalid_email"),
        ("Geboortedatum", "31-02-1990", "birth_date", "invalid_date"),
        ("Geboortedatum", "01-01-2099", "birth_date", "future_date"),
        ("Inschrijfdatum", "2020-31-01", "member_since", "invalid_date"),
        ("Postcode", "0123 AB", "postcode", "invalid_postcode"),
        ("Landcode", "XX", "country", "invalid_country"),
        ("IBAN", "NL91ABNA0417164301", "iban", "invalid_iban"),
        ("Contributiebedrag", "twaalf", "dues_amount", "invalid_amount"),
        ("Betaalperiode", "wekelijks", "billing_frequency", "invalid_billing_frequency"),
        ("Mollie CID", "sub_8uXkq2XsJk", "mollie_customer_id", "invalid_mollie_id"),
        ("Mollie SID", "cst_8uXkq2XsJk", "mollie_subscription_id", "invalid_mollie_id"),
        ("Lidnr.", "10#01", "member_id", "invalid_member_id"),
        ("Voornaam", "Anna3", "first_name", "invalid_name"),
        ("Tussenvoegsel", "v4n", "tussenvoegsel", "invalid_name"),
    ],
)
def test_each_invalid_value_rejects_the_row_naming_field_and_raw_value(export_file, column, value, field, code):
    (result,) = read(export_file, member_row(**{column: value}))
    assert codes(result) == [(field, code)]
    assert result.errors[0].row == 2
    assert result.errors[0].value == value
    assert result.errors[0].message


def test_every_error_of_a_row_is_reported(export_file):
    (result,) = read(export_file, member_row(Voornaam="", Postcode="0000 AA", IBAN="NL00", **{"E-mailadres": "x"}))
    assert sorted(codes(result)) == sorted(
        [
            ("first_name", "required"),
            ("postcode", "invalid_postcode"),
            ("iban", "invalid_iban"),
            ("email", "invalid_email"),
        ]
    )


def test_foreign_postcode_and_phone_follow_the_country(export_file):
    (result,) = read(export_file, member_row(Landcode="BE", Postcode="1000", **{"Telefoonnr.": "0470 12 34 56"}))
    assert result.valid, result.errors
    assert (result.record["country"], result.record["postcode"], result.record["phone"]) == (
        "BE",
        "1000",
        "+32470123456",
    )


def test_missing_country_means_the_netherlands(export_file):
    (result,) = read(export_file, member_row(Landcode="", Postcode="0123 AB"))
    assert codes(result) == [("postcode", "invalid_postcode")]


class TestWarnings:
    def test_no_email_is_a_warning_not_an_error(self, export_file):
        (result,) = read(export_file, member_row(**{"E-mailadres": ""}))
        assert result.valid
        assert [(w.field, w.code) for w in result.warnings] == [("email", "no_email")]
        assert result.record["email"] is None

    @pytest.mark.parametrize(("born", "warned"), [("02-06-2010", True), ("01-06-2010", False), ("15-04-2020", True)])
    def test_younger_than_16_is_a_warning(self, export_file, born, warned):
        (result,) = read(export_file, member_row(Geboortedatum=born))
        assert result.valid
        assert [(w.field, w.code) for w in result.warnings] == ([("birth_date", "under_16")] if warned else [])

    def test_unknown_dutch_bank_code_is_a_warning(self, export_file):
        (result,) = read(export_file, member_row(IBAN="NL43ZZZZ0417164300"))
        assert result.valid
        assert [(w.field, w.code, w.value) for w in result.warnings] == [
            ("iban", "unknown_bank_code", "NL43ZZZZ0417164300")
        ]


class TestDuplicates:
    def test_a_second_row_with_the_same_lidnr_is_a_duplicate_of_the_first(self, export_file):
        first = member_row()
        second = member_row(**{"E-mailadres": "other@x.nl"})
        results = read(export_file, first, member_row(**{"Lidnr.": "1002", "E-mailadres": "b@x.nl"}), second)
        assert [r.valid for r in results] == [True, True, False]
        assert codes(results[2]) == [("member_id", "duplicate")]
        assert "the same Lidnr. 1001 as row 2" in results[2].errors[0].message

    def test_lidnr_in_other_case_is_the_same_member(self, export_file):
        results = read(
            export_file,
            member_row(**{"Lidnr.": "ab-12"}),
            member_row(**{"Lidnr.": "AB-12", "E-mailadres": "b@x.nl"}),
        )
        assert codes(results[1]) == [("member_id", "duplicate")]

    def test_the_same_email_in_other_case_is_a_duplicate(self, export_file):
        results = read(
            export_file,
            member_row(),
            member_row(**{"Lidnr.": "1002", "E-mailadres": "ANNA.TENBOOM@example.NL"}),
        )
        assert codes(results[1]) == [("email", "duplicate")]

    def test_a_duplicate_of_a_rejected_row_is_still_a_duplicate(self, export_file):
        results = read(export_file, member_row(Postcode="0000 AA"), member_row(**{"E-mailadres": "b@x.nl"}))
        assert codes(results[0]) == [("postcode", "invalid_postcode")]
        assert codes(results[1]) == [("member_id", "duplicate")]

    def test_rows_without_lidnr_or_email_are_not_duplicates_of_each_other(self, export_file):
        empty = member_row(**{"Lidnr.": "", "E-mailadres": ""})
        assert [r.valid for r in read(export_file, empty, empty)] == [True, True]


def test_blank_rows_are_ignored_but_keep_their_row_number(export_file):
    results = read(export_file, {}, member_row(), [" ", "", ""], member_row(**{"Lidnr.": "2", "E-mailadres": "b@x.nl"}))
    assert [r.row for r in results] == [3, 5]


def test_extra_cells_beyond_the_header_reject_the_row(export_file):
    cells = [*member_row().values(), "Amsterdam"]
    (result,) = read(export_file, cells)
    assert codes(result) == [(None, "extra_cells")]


def test_a_short_row_is_rejected_not_imported_with_empty_fields(export_file):
    cells = list(member_row().values())[:4]
    (result,) = read(export_file, cells)
    assert codes(result) == [(None, "short_row")]
    assert "4 cells but the header 21" in result.errors[0].message


def test_a_row_cut_in_two_by_an_unquoted_line_break_rejects_both_parts(tmp_path):
    cells = list(member_row().values())
    cells[9] = "Kerkstraat"  # Adres: the export wrote "Kerkstraat\n1" without quotes
    header = ";".join(member_row())
    first, rest = ";".join(cells[:10]), "1;" + ";".join(cells[10:])
    path = tmp_path / "cut.csv"
    path.write_text(f"{header}\n{first}\n{rest}\n", encoding="utf-8")
    results = list(MijnroodExport(path, today=TODAY))
    assert [codes(r) for r in results] == [[(None, "short_row")], [(None, "continued_row")]]
    assert "row 2" in results[1].errors[0].message
