"""Telephone numbers in E.164 form (+31612345678).

phonenumbers decides every verdict. Parsing free text is its slow part, so Dutch numbers written
the usual ways (06..., +31 6..., 0031 6..., with spaces or dashes) skip the parser: their national
number is read off directly and handed to the library to validate. A property test keeps both
paths in agreement.
"""

import re

import phonenumbers
from phonenumbers import PhoneNumber

from verenigingen.dutch.errors import InvalidValue
from verenigingen.text import Text

_E164 = phonenumbers.PhoneNumberFormat.E164
_DUTCH_NUMBER = re.compile(r"(?:\+31|0031|0)([1-9]\d{8})")
_SEPARATORS = str.maketrans("", "", " -")


def _plain_dutch_number(value: str, region: str) -> PhoneNumber | None:
    """The number, if ``value`` is a Dutch number written plainly; None means: let the parser read it."""
    digits = value.translate(_SEPARATORS)
    match = _DUTCH_NUMBER.fullmatch(digits)
    if match is None or (region != "NL" and digits[0] != "+"):
        return None
    return PhoneNumber(country_code=31, national_number=int(match[1]))


def parse_phone(value: str, region: str = "NL") -> PhoneNumber:
    number = _plain_dutch_number(value, region)
    if number is None:
        try:
            number = phonenumbers.parse(value, region)
        except phonenumbers.NumberParseException:
            raise InvalidValue("invalid_phone", Text("not a telephone number")) from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidValue("invalid_phone", Text("not a valid telephone number for its country"))
    return number


def clean_phone(value: str, region: str = "NL") -> str:
    """Read 06..., +31 6..., 0031 6..., landlines and foreign numbers; return E.164."""
    return phonenumbers.format_number(parse_phone(value, region), _E164)


def phone_in_text(text: str, region: str = "NL") -> str | None:
    """The one valid number in free text ('0612345678 (mam)'), or None when there is none or several."""
    found = {
        phonenumbers.format_number(match.number, _E164)
        for match in phonenumbers.PhoneNumberMatcher(text, region)
        if phonenumbers.is_valid_number(match.number)
    }
    return found.pop() if len(found) == 1 else None
