import pytest
from schwifty import IBAN

from verenigingen.dutch import InvalidValue
from verenigingen.dutch.bank import clean_iban, has_unknown_dutch_bank
from verenigingen.mijnrood.generator import DUTCH_BANK_CODES


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("NL91 ABNA 0417 1643 00", "NL91ABNA0417164300"),
        ("nl91abna0417164300", "NL91ABNA0417164300"),
        ("DE89 3704 0044 0532 0130 00", "DE89370400440532013000"),
        ("BE68539007547034", "BE68539007547034"),
    ],
)
def test_valid_ibans_are_compact_upper_case(raw, expected):
    assert clean_iban(raw).compact == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("NL91ABNA0417164301", "check digits"),  # one digit off: mod-97 fails
        ("NL91ABNA041716430", "length"),
        ("XX91ABNA0417164300", "country code"),
        ("NL91ABNA04171643OO", "structure"),
    ],
)
def test_invalid_ibans_name_the_reason(raw, reason):
    with pytest.raises(InvalidValue) as caught:
        clean_iban(raw)
    assert caught.value.code == "invalid_iban"
    assert reason in caught.value.message


def test_unknown_dutch_bank_code_is_detected_but_valid():
    unknown = IBAN.generate("NL", bank_code="ZZZZ", account_code="0417164300")
    iban = clean_iban(unknown.compact)
    assert has_unknown_dutch_bank(iban)
    assert not has_unknown_dutch_bank(clean_iban("NL91ABNA0417164300"))
    assert not has_unknown_dutch_bank(clean_iban("DE89370400440532013000"))


@pytest.mark.parametrize("bank_code", DUTCH_BANK_CODES)
def test_generator_uses_only_real_dutch_bank_codes(bank_code):
    iban = IBAN.generate("NL", bank_code=bank_code, account_code="0417164300")
    assert not has_unknown_dutch_bank(clean_iban(iban.compact))
