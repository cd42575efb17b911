"""Bank accounts: IBAN (ISO 13616) and whether a Dutch bank code is known."""

from schwifty import IBAN
from schwifty.exceptions import (
    InvalidChecksumDigits,
    InvalidCountryCode,
    InvalidLength,
    SchwiftyException,
)

from verenigingen.dutch.errors import InvalidValue
from verenigingen.text import Text

_REASONS = {
    InvalidChecksumDigits: Text("its check digits do not match (a typing error?)"),
    InvalidLength: Text("its length is wrong for its country"),
    InvalidCountryCode: Text("it does not start with a known country code"),
}


def clean_iban(value: str) -> IBAN:
    """Validate country, length, structure and mod-97 check digits; return the parsed IBAN."""
    try:
        return IBAN(value)
    except SchwiftyException as exc:
        reason = _REASONS.get(type(exc), Text("its structure is wrong for its country"))
        raise InvalidValue("invalid_iban", Text("not a valid IBAN: {reason}", reason=reason)) from None


_bank_code_known: dict[str, bool] = {}


def has_unknown_dutch_bank(iban: IBAN) -> bool:
    """A Dutch IBAN whose bank code no registered bank uses (worth a warning, not a rejection)."""
    if iban.country_code != "NL":
        return False
    known = _bank_code_known.get(iban.bank_code)
    if known is None:  # the registry look-up is slow; a handful of Dutch bank codes repeat endlessly
        known = _bank_code_known[iban.bank_code] = iban.bank is not None
    return not known
