"""E-mail addresses, checked for syntax only (no DNS: imports must work offline and fast).

Almost every address in an export is plain ASCII like ``jan.jansen@ziggo.nl``. Those that match a
deliberately narrow pattern are accepted at once; everything else (and every rejection) is decided
by email-validator. A property test keeps the narrow pattern a subset of what the library accepts.
"""

import re

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

from verenigingen.dutch.errors import InvalidValue
from verenigingen.text import Text

_PLAIN_ADDRESS = re.compile(
    r"(?=.{6,254}$)"  # the whole address fits the length limits
    r"[a-z0-9_+](?:[a-z0-9_+-]|\.(?!\.)){0,62}(?<!\.)"  # local part: a dot-atom of at most 64
    r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+"  # domain labels
    r"[a-z]{2,24}"  # an alphabetic top-level domain
)
MAX_LOCAL_PART = 64  # RFC 5321; mail servers refuse longer ones
_SPECIAL_USE = tuple("." + name for name in SPECIAL_USE_DOMAIN_NAMES)


def is_plain_address(address: str) -> bool:
    """True for ASCII addresses so ordinary that email-validator would accept them unchanged."""
    return (
        _PLAIN_ADDRESS.fullmatch(address) is not None
        and "--" not in address.partition("@")[2]
        and not address.endswith(_SPECIAL_USE)
    )


def clean_email(value: str) -> str:
    """Trim, lower-case and syntax-check an address."""
    address = value.strip().lower()
    if is_plain_address(address):
        return address
    if len(address.rpartition("@")[0]) > MAX_LOCAL_PART:
        raise InvalidValue(
            "invalid_email",
            Text("not a valid e-mail address: more than {limit} characters before the @", limit=MAX_LOCAL_PART),
        )
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidValue("invalid_email", Text("not a valid e-mail address: {reason}", reason=str(exc))) from None
    return address
