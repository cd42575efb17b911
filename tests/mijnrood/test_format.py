"""Encodings, delimiters, quoting and headers: reading any real export, refusing what is not one."""

import codecs

import pytest

from tests.conftest import TODAY, VALID_ROW, member_row
from verenigingen.mijnrood import ExportError, MijnroodExport


def records(path, **options):
    return [result for result in MijnroodExport(path, today=TODAY, **options)]


@pytest.mark.parametrize(
    ("encoding", "detected"), [("utf-8", "utf-8-sig"), ("utf-8-sig", "utf-8-sig"), ("cp1252", "cp1252")]
)
def test_encodings_are_detected_and_accents_survive(export_file, encoding, detected):
    path = export_file(
        [member_row(Voornaam="Zoë", Achternaam="Çelik-Brontë", Plaats="’s-Hertogenbosch")], encoding=encoding
    )
    export = MijnroodExport(path, today=TODAY)
    (result,) = export
    assert export.encoding == detected
    assert result.valid, result.errors
    assert result.record["full_name"] == "Zoë ten Çelik-Brontë"
    assert result.record["city"] == "’s-Hertogenbosch"
    assert result.record["member_id"] == "1001"  # no BOM left on the first header


def test_utf8_that_also_decodes_as_1252_is_read_as_utf8(export_file):
    # "Ã«" is what UTF-8 "ë" looks like when mis-decoded as Windows-1252: it must never come out.
    path = export_file([member_row(Voornaam="Zoë")], encoding="utf-8")
    (result,) = records(path)
    assert result.record["first_name"] == "Zoë"


def test_a_single_1252_byte_late_in_a_large_file_makes_it_1252(export_file):
    rows = [member_row(**{"Lidnr.": str(n), "E-mailadres": f"m{n}@x.nl"}) for n in range(3000)]
    rows[-1]["Voornaam"] = "Zoë"
    path = export_file(rows, encoding="cp1252")
    results = records(path)
    assert results[-1].record["first_name"] == "Zoë"


def test_explicit_encoding_is_honoured(export_file):
    path = export_file([member_row(Voornaam="Zoë")], encoding="cp1252")
    (result,) = records(path, encoding="windows-1252")
    assert result.record["first_name"] == "Zoë"
    # The same bytes read as latin-1 give the same letter; as UTF-8 they are refused.
    with pytest.raises(ExportError, match="line 2 is not valid utf-8"):
        MijnroodExport(path, encoding="utf-8")


def test_unknown_explicit_encoding(export_file):
    with pytest.raises(ExportError, match="unknown encoding 'klingon'"):
        MijnroodExport(export_file([VALID_ROW]), encoding="klingon")


@pytest.mark.parametrize("delimiter", [";", ",", "\t"])
def test_delimiters_are_detected(export_file, delimiter):
    path = export_file([member_row(Adres="Kerkstraat 1, achterom", Contributiebedrag="12,50")], delimiter=delimiter)
    export = MijnroodExport(path, today=TODAY)
    (result,) = export
    assert export.delimiter == delimiter
    assert result.valid, result.errors
    assert result.record["address_line1"] == "Kerkstraat 1, achterom"


def test_quoted_fields_with_embedded_newlines_keep_spreadsheet_row_numbers(export_file):
    rows = [
        member_row(Adres="Kerkstraat 1\nachterom"),
        {},
        member_row(**{"Lidnr.": "1002", "E-mailadres": "b@x.nl"}),
    ]
    results = records(export_file(rows))
    assert [r.row for r in results] == [2, 4]  # the blank row 3 still occupies its number
    assert results[0].record["address_line1"] == "Kerkstraat 1\nachterom"


def test_headers_match_whatever_their_case_and_spacing(export_file):
    header = ["LIDNR", " voornaam ", "Tussen voegsel", "achternaam", "E-mail adres", "inschrijfdataum"]
    path = export_file([["7", "Piet", "van der", "Berg", "p@x.nl", "1-1-2020"]], header=header)
    (result,) = records(path)
    assert result.valid, result.errors
    assert result.record["full_name"] == "Piet van der Berg"
    assert result.record["member_since"] == "2020-01-01"


def test_unknown_columns_are_ignored_and_listed(export_file):
    path = export_file([["Piet", "Berg", "x"]], header=["Voornaam", "Achternaam", "Schoenmaat"])
    export = MijnroodExport(path, today=TODAY)
    assert export.header.ignored == ("Schoenmaat",)
    assert [r.valid for r in export] == [True]


def test_header_only_gives_no_rows(export_file):
    assert records(export_file([])) == []


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (["Lidnr.", "Voornaam", "E-mailadres"], "required column 'Achternaam' is missing"),
        (["Lidnr.", "E-mailadres"], "required columns 'Voornaam' and 'Achternaam' are missing"),
        (
            ["Voornaam", "Achternaam", "Inschrijfdatum", "Inschrijfdataum"],
            "columns 3 and 4 are both 'Inschrijfdatum'",
        ),
        (["naam", "woonplaats"], "no header: the first line names none of the Mijnrood columns"),
    ],
)
def test_unusable_headers_are_refused_with_a_clear_reason(export_file, header, message):
    with pytest.raises(ExportError, match=message):
        MijnroodExport(export_file([], header=header))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"\n" + ";".join(VALID_ROW).encode(), "no header: the first line of the file is empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a text file"),
        (codecs.BOM_UTF16_LE + "Voornaam;Achternaam".encode("utf-16-le"), "the file is UTF-16"),
        (b"Voornaam;Achternaam\r\nJan;\x81\x8d\r\n", "not text in a supported encoding"),
    ],
)
def test_files_that_are_not_exports_are_refused(tmp_path, content, message):
    path = tmp_path / "x.csv"
    path.write_bytes(content)
    with pytest.raises(ExportError, match=message):
        MijnroodExport(path)


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(ExportError, match="no such file"):
        MijnroodExport(tmp_path / "absent.csv")


def test_an_unterminated_quote_is_reported_with_its_row(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text('Voornaam;Achternaam\nJan;Berg\n"Piet' + "x" * 200_000 + "\n", encoding="utf-8")
    export = MijnroodExport(path)
    with pytest.raises(ExportError, match="row 3 cannot be read as CSV"):
        list(export)
