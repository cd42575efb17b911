"""Membership terms as Mijnrood writes them: dues, payment period, membership type, Mollie ids."""

import re
from collections.abc import Mapping
from decimal import Decimal
from functools import lru_cache

from verenigingen.dutch.errors import InvalidValue
from verenigingen.text import Text

# Select values of the Member DocType, keyed by the Dutch words exports use.
BILLING_FREQUENCIES = {
    "maandelijks": "Monthly",
    "maand": "Monthly",
    "per maand": "Monthly",
    "kwartaal": "Quarterly",
    "per kwartaal": "Quarterly",
    "halfjaar": "Semi-annually",
    "halfjaarlijks": "Semi-annually",
    "per halfjaar": "Semi-annually",
    "jaar": "Annually",
    "jaarlijks": "Annually",
    "per jaar": "Annually",
    "driemaandelijks": "Quarterly",
    "per drie maanden": "Quarterly",
    "monthly": "Monthly",
    "quarterly": "Quarterly",
    "half-yearly": "Semi-annually",
    "semi-annually": "Semi-annually",
    "semiannually": "Semi-annually",
    "annually": "Annually",
    "yearly": "Annually",
}

# The statuses of the Member DocType; only "Active" members may get an account.
STATUSES = ("Active", "Cancelled", "Unsubscribed", "Expelled", "Suspended", "Deceased")
# Mijnrood marks a member registered twice with this status: the row is not a member of its own.
DOUBLE_REGISTRATION = "dubbel"
# Lidmaatschapstype -> (membership_type, status). Associations add names of their own (see extra_types).
MEMBERSHIP_TYPES = {
    "lid": ("Lid", "Active"),
    "aspirant": ("Aspirant", "Active"),
    "aspirant-lid": ("Aspirant", "Active"),
    "aspirantlid": ("Aspirant", "Active"),
    "opgezegd": (None, "Cancelled"),
    "uitgeschreven": (None, "Unsubscribed"),
    "geroyeerd": (None, "Expelled"),
    "geschorst": (None, "Suspended"),
    "overleden": (None, "Deceased"),
}

_CURRENCY = re.compile(r"^(?:€|eur)\s*|\s*(?:€|eur)$", re.IGNORECASE)
_AMOUNT = re.compile(r"(\d{1,3}(?:\.\d{3})+|\d+)(?:,(\d{1,2}))?")
_AMOUNT_DOT_DECIMAL = re.compile(r"(\d+)\.(\d{1,2})")
PLAUSIBLE_MAXIMUM_AMOUNT = Decimal(1000)  # dues above this per period are almost certainly a typo
_MOLLIE_ID = re.compile(r"(cst|sub)_[A-Za-z0-9]{4,64}")


@lru_cache(maxsize=1024)  # a handful of dues amounts repeat through a whole export
def parse_amount(value: str) -> Decimal:
    """'12,50', '€ 12,50', '12,50 €', 'EUR 12,50', '1.234,56' and '12.50' -> Decimal('12.50'); negatives
    are errors."""
    text = _CURRENCY.sub("", value.strip(), count=1)
    if match := _AMOUNT.fullmatch(text):
        whole, cents = match[1].replace(".", ""), match[2] or "0"
    elif match := _AMOUNT_DOT_DECIMAL.fullmatch(text):
        whole, cents = match[1], match[2]
    else:
        raise InvalidValue("invalid_amount", Text("not an amount in euros (e.g. 12,50)"))
    return Decimal(f"{whole}.{cents.ljust(2, '0')}")


def parse_billing_frequency(value: str) -> str:
    """'maandelijks' -> 'Monthly', and so on for kwartaal, halfjaar and jaar."""
    try:
        return BILLING_FREQUENCIES[" ".join(value.lower().split())]
    except KeyError:
        raise InvalidValue(
            "invalid_billing_frequency", Text("unknown payment period; use maandelijks, kwartaal, halfjaar or jaar")
        ) from None


class UnknownMembershipType(InvalidValue):
    """A name the association made up: not an error in the row, a member without a status."""


def type_key(value: str) -> str:
    return " ".join(value.lower().split())


def parse_membership_type(value: str, extra: Mapping[str, str] | None = None) -> tuple[str | None, str | None]:
    """'lid' -> ('Lid', 'Active'); 'opgezegd' -> (None, 'Cancelled'); a name of the association's own
    (``extra``: name -> status, e.g. {'Erelid': 'Active'}) -> ('Erelid', 'Active'). An unknown name is
    an UnknownMembershipType: the member is kept, without a status."""
    key = type_key(value)
    if key in MEMBERSHIP_TYPES:
        return MEMBERSHIP_TYPES[key]
    for name, status in (extra or {}).items():
        if type_key(name) == key:
            return name.strip(), status
    raise UnknownMembershipType(
        "unknown_membership_type",
        Text(
            "unknown membership type: the member is imported without a status, so gets no account; "
            "map the name to a status in the settings (VERENIGINGEN_MEMBERSHIP_TYPES) if it should"
        ),
    )


def parse_extra_types(text: str) -> dict[str, str]:
    """'Erelid=Active; Proeflid=Active' -> {'Erelid': 'Active', 'Proeflid': 'Active'}."""
    types = {}
    for item in filter(str.strip, re.split(r"[;\n]", text)):
        name, _, status = item.partition("=")
        if not name.strip() or status.strip() not in STATUSES:
            raise InvalidValue(
                "invalid_membership_types",
                Text(
                    "{item!r} is not NAME=STATUS with a status among {statuses}",
                    item=item.strip(),
                    statuses=", ".join(STATUSES),
                ),
            )
        types[name.strip()] = status.strip()
    return types


def clean_mollie_id(value: str, prefix: str) -> str:
    """Mollie customer ids start with cst_, subscription ids with sub_."""
    text = value.strip()
    if not text.startswith(prefix) or not _MOLLIE_ID.fullmatch(text):
        raise InvalidValue(
            "invalid_mollie_id",
            Text("must be {prefix} followed by 4 to 64 letters or digits (e.g. {prefix}8uXkq2XsJk)", prefix=prefix),
        )
    return text


_MEMBER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,29}")


def clean_member_id(value: str) -> str:
    """Lidnr.: letters, digits, '-' or '_', at most 30 characters."""
    text = value.strip()
    if not _MEMBER_ID.fullmatch(text):
        raise InvalidValue("invalid_member_id", Text("a member number has only letters, digits, '-' or '_'"))
    return text
