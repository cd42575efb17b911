"""Postal addresses: country codes and Dutch postcodes."""

import pycountry
from stdnum.exceptions import ValidationError
from stdnum.nl import postcode as nl_postcode

from verenigingen.dutch.errors import InvalidValue
from verenigingen.text import Text

DEFAULT_COUNTRY = "NL"
_ALPHA_2 = frozenset(country.alpha_2 for country in pycountry.countries)
# Dutch spellings pycountry does not know, for the countries members actually live in.
_DUTCH_COUNTRY_NAMES = {
    "nederland": "NL",
    "belgie": "BE",
    "belgië": "BE",
    "duitsland": "DE",
    "frankrijk": "FR",
    "luxemburg": "LU",
    "verenigd koninkrijk": "GB",
    "spanje": "ES",
    "uk": "GB",  # not an ISO code, but how people write the United Kingdom
    "engeland": "GB",
}


def clean_country(value: str) -> str:
    """Return the ISO 3166 alpha-2 code for a code or country name."""
    text = value.strip()
    if text.upper() in _ALPHA_2 and text.upper() != "UK":
        return text.upper()
    if code := _DUTCH_COUNTRY_NAMES.get(text.lower()):
        return code
    try:
        return pycountry.countries.lookup(text).alpha_2
    except LookupError:
        raise InvalidValue("invalid_country", Text("not a country code (use two letters, e.g. NL)")) from None


def clean_postcode(value: str, country: str) -> str:
    """Dutch postcodes become '1234 AB' (no leading 0, not SA/SD/SS); others are kept as given."""
    if country != "NL":
        return value.strip()
    try:
        return nl_postcode.validate(value)
    except ValidationError:
        raise InvalidValue(
            "invalid_postcode",
            Text(
                "not a Dutch postcode (four digits, not starting with 0, then two letters, not SA, SD or SS, "
                "e.g. 1234 AB)"
            ),
        ) from None
