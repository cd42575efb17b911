import pytest

from verenigingen.dutch import InvalidValue
from verenigingen.dutch.address import clean_country, clean_postcode


@pytest.mark.parametrize(
    ("raw", "expected"), [("1234AB", "1234 AB"), ("1234 ab", "1234 AB"), (" 9999  zz ", "9999 ZZ")]
)
def test_dutch_postcodes_are_formatted(raw, expected):
    assert clean_postcode(raw, "NL") == expected


@pytest.mark.parametrize("raw", ["0123 AB", "1234 SA", "1234 SD", "1234 SS", "12345", "AB 1234", "1234 A", "123 AB"])
def test_invalid_dutch_postcodes_are_errors(raw):
    with pytest.raises(InvalidValue) as caught:
        clean_postcode(raw, "NL")
    assert caught.value.code == "invalid_postcode"


@pytest.mark.parametrize(("raw", "country"), [("1000", "BE"), ("SW1A 1AA", "GB"), ("10115", "DE")])
def test_other_countries_keep_their_postcode_as_given(raw, country):
    assert clean_postcode(raw, country) == raw


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("NL", "NL"),
        ("nl", "NL"),
        ("be", "BE"),
        ("Nederland", "NL"),
        ("België", "BE"),
        ("Germany", "DE"),
        ("NLD", "NL"),
    ],
)
def test_countries_become_iso_codes(raw, expected):
    assert clean_country(raw) == expected


@pytest.mark.parametrize("raw", ["XX", "Holland-Zuid", "N"])
def test_unknown_countries_are_errors(raw):
    with pytest.raises(InvalidValue) as caught:
        clean_country(raw)
    assert caught.value.code == "invalid_country"
