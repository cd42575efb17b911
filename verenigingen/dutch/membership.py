"""Membership terms as Mijnrood writes them: dues, payment period, membership type, Mollie ids."""

import re
from decimal import Decimal
from functools import lru_cache

from verenigingen.dutch.errors import InvalidValue

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
}

# Lidmaatschapstype -> (membership_type, status). Only "Active" members may get an account.
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

_AMOUNT = re.compile(r"(?:€\s*)?(\d{1,3}(?:\.\d{3})+|\d+)(?:,(\d{1,2}))?")
_AMOUNT_DOT_DECIMAL = re.compile(r"(?:€\s*)?(\d+)\.(\d{1,2})")
_MOLLIE_ID = re.compile(r"(cst|sub)_[A-Za-z0-9]{4,64}")


@lru_cache(maxsize=1024)  # a handful of dues amounts repeat through a whole export
def parse_amount(value: str) -> Decimal:
    """'12,50', '€ 12,50', '1.234,56' and '12.50' -> Decimal('12.50'); negatives are errors."""
    text = value.strip()
    if match := _AMOUNT.fullmatch(text):
        whole, cents = match[1].replace(".", ""), match[2] or "0"
    elif match := _AMOUNT_DOT_DECIMAL.fullmatch(text):
        whole, cents = match[1], match[2]
    else:
        raise InvalidValue("invalid_amount", "not an amount in euros (e.g. 12,50)")
    return Decimal(f"{whole}.{cents.ljust(2, '0')}")


def parse_billing_frequency(value: str) -> str:
    """'maandelijks' -> 'Monthly', and so on for kwartaal, halfjaar and jaar."""
    try:
        return BILLING_FREQUENCIES[" ".join(value.lower().split())]
    except KeyError:
        raise InvalidValue(
            "invalid_billing_frequency", "unknown payment period; use maandelijks, kwartaal, halfjaar or jaar"
        ) from None


def parse_membership_type(value: str) -> tuple[str | None, str]:
    """'lid' -> ('Lid', 'Active'); 'opgezegd' -> (None, 'Cancelled'); ... ."""
    try:
        return MEMBERSHIP_TYPES[" ".join(value.lower().split())]
    except KeyError:
        raise InvalidValue(
            "invalid_membership_type",
            "unknown membership type; use lid, aspirant, opgezegd, uitgeschreven, geroyeerd, geschorst or overleden",
        ) from None


def clean_mollie_id(value: str, prefix: str) -> str:
    """Mollie customer ids start with cst_, subscription ids with sub_."""
    text = value.strip()
    if not text.startswith(prefix) or not _MOLLIE_ID.fullmatch(text):
        raise InvalidValue(
            "invalid_mollie_id",
            f"must be {prefix} followed by 4 to 64 letters or digits (e.g. {prefix}8uXkq2XsJk)",
        )
    return text


_MEMBER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,29}")


def clean_member_id(value: str) -> str:
    """Lidnr.: letters, digits, '-' or '_', at most 30 characters."""
    text = value.strip()
    if not _MEMBER_ID.fullmatch(text):
        raise InvalidValue("invalid_member_id", "a member number has only letters, digits, '-' or '_'")
    return text
