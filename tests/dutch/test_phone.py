import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from verenigingen.dutch import InvalidValue
from verenigingen.dutch.phone import clean_phone


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("0612345678", "NL", "+31612345678"),
        ("06-12345678", "NL", "+31612345678"),
        ("06 1234 5678", "NL", "+31612345678"),
        ("+31 6 12345678", "NL", "+31612345678"),
        ("+31612345678", "BE", "+31612345678"),
        ("0031 6 1234 5678", "NL", "+31612345678"),
        ("020-1234567", "NL", "+31201234567"),
        ("(020) 123 45 67", "NL", "+31201234567"),
        ("+32 470 12 34 56", "NL", "+32470123456"),
        ("0470 12 34 56", "BE", "+32470123456"),
        ("+49 30 1234567", "NL", "+49301234567"),
    ],
)
def test_numbers_become_e164(raw, region, expected):
    assert clean_phone(raw, region) == expected


@pytest.mark.parametrize("raw", ["06-123", "0800", "bellen", "+31 6 1234", "0612345678901", "06 1234 567x"])
def test_invalid_numbers_are_errors(raw):
    with pytest.raises(InvalidValue) as caught:
        clean_phone(raw, "NL")
    assert caught.value.code == "invalid_phone"


def _library_only(raw: str, region: str) -> str | None:
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    return (
        phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        if phonenumbers.is_valid_number(number)
        else None
    )


def _ours(raw: str, region: str) -> str | None:
    try:
        return clean_phone(raw, region)
    except InvalidValue:
        return None


_DUTCH_LOOKING = st.builds(
    lambda prefix, digits, sep: prefix + sep.join([digits[:3], digits[3:]]),
    st.sampled_from(["0", "+31", "0031", "+31 ", "0031 ", "00", "+32", "+"]),
    st.text(alphabet="0123456789", min_size=7, max_size=11),
    st.sampled_from(["", " ", "-"]),
)


@given(_DUTCH_LOOKING, st.sampled_from(["NL", "BE", "DE", "US"]))
def test_fast_path_agrees_with_phonenumbers(raw, region):
    assert _ours(raw, region) == _library_only(raw, region)
