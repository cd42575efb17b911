"""Validate one export row into a Member record, collecting every error and warning it has."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

from verenigingen.dutch import InvalidValue
from verenigingen.dutch.address import DEFAULT_COUNTRY, clean_country, clean_postcode
from verenigingen.dutch.bank import clean_iban, has_unknown_dutch_bank
from verenigingen.dutch.dates import age_on, parse_birth_date, parse_date
from verenigingen.dutch.emails import clean_email
from verenigingen.dutch.membership import (
    DOUBLE_REGISTRATION,
    PLAUSIBLE_MAXIMUM_AMOUNT,
    UnknownMembershipType,
    clean_member_id,
    clean_mollie_id,
    parse_amount,
    parse_billing_frequency,
    parse_membership_type,
    type_key,
)
from verenigingen.dutch.names import clean_name, clean_tussenvoegsel, full_name
from verenigingen.dutch.phone import clean_phone, phone_in_text
from verenigingen.mijnrood.columns import COLUMN_BY_FIELD, HeaderMap
from verenigingen.mijnrood.formulas import NEUTRALISER, RISKY_FIRST, is_formula, is_plain_number, neutralised
from verenigingen.text import Text

# The Member fields a record carries, in DocType order; paid/privacy_accepted are kept as given.
MEMBER_FIELDS = (
    "member_id",
    "first_name",
    "tussenvoegsel",
    "last_name",
    "full_name",
    "email",
    "birth_date",
    "member_since",
    "chapter",
    "phone",
    "address_line1",
    "city",
    "postcode",
    "country",
    "iban",
    "dues_amount",
    "billing_frequency",
    "mollie_customer_id",
    "mollie_subscription_id",
    "membership_type",
    "status",
    "paid",
    "privacy_accepted",
)
EMPTY_MARKERS = frozenset(
    {"", "-", "nb", "n/a", "null", "?", "n.v.t.", "nvt", "n.v.t", "onbekend", "unknown", "n.a.", "n.a"}
)
# Free text is kept as given, up to the length the Member fields hold.
TEXT_LIMITS = {"chapter": 140, "address_line1": 240, "city": 140, "paid": 40, "privacy_accepted": 40}
MINIMUM_VOLUNTEER_AGE = 16
# Columns where a leading sign is part of the value (+31 6 ..., -12,50); anywhere else it starts a formula.
SIGNED_FIELDS = frozenset({"phone", "dues_amount"})
_LONGEST_MARKER = max(map(len, EMPTY_MARKERS))
_CHECKED_FIRST = RISKY_FIRST | {NEUTRALISER}


@dataclass(frozen=True, slots=True)
class Problem:
    """An error (the row is rejected) or a warning (it is not) about one field of one row."""

    row: int
    field: str | None
    code: str
    message: str
    value: str | None

    def as_dict(self) -> dict:
        return {
            "row": self.row,
            "field": self.field,
            "code": self.code,
            "message": self.message,
            "value": self.value,
        }


@dataclass(slots=True)
class RowResult:
    """One member row: its cleaned values, and the record when no error rejected it."""

    row: int
    cells: list[str]
    values: dict = field(default_factory=dict)
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    skipped: Problem | None = None  # a row deliberately not imported: neither valid nor invalid

    @property
    def valid(self) -> bool:
        return not self.errors and self.skipped is None

    @property
    def record(self) -> dict | None:
        return self.values if self.valid else None

    def skip(self, field_name: str | None, code: str, message: str, value: str | None) -> None:
        self.skipped = Problem(self.row, field_name, code, message, value)

    def error(self, field_name: str | None, code: str, message: str, value: str | None) -> None:
        self.errors.append(Problem(self.row, field_name, code, message, value))

    def warn(self, field_name: str, code: str, message: str, value: str | None) -> None:
        self.warnings.append(Problem(self.row, field_name, code, message, value))


def match_key(value: str) -> str:
    """How Lidnr. and e-mail addresses compare, on every database: case and surrounding spaces do not count."""
    return value.strip().casefold()


def is_blank(cells: list[str]) -> bool:
    return not "".join(cells).strip()


def is_empty_marker(cell: str) -> bool:
    text = cell.strip()
    return len(text) <= _LONGEST_MARKER and text.lower() in EMPTY_MARKERS


def only_markers(cells: list[str]) -> bool:
    """A row of nothing but empty markers (-;-;-): nobody's row."""
    return all(map(is_empty_marker, cells))


def _formula_problem(field_name: str, raw: str, text: str) -> str | None:
    """Why a spreadsheet would run this cell as a formula (CSV injection), or None when it would not."""
    if neutralised(text):
        return Text("a formula neutralised with a leading ' (in a rejected-rows file); remove it or correct the value")
    if not is_formula(raw) and not is_formula(text):
        return None
    if field_name in SIGNED_FIELDS and is_plain_number(text):
        return None
    return Text("starts like a spreadsheet formula; remove the leading character")


class _RowValidator:
    """Applies the field rules to one row; kept as a class so each rule reads as one line."""

    def __init__(self, result: RowResult, raw: dict[str, str]):
        self.result = result
        self.raw = raw
        self.text: dict[str, str] = {}
        for name, value in raw.items():
            text = value.strip()
            if len(text) <= _LONGEST_MARKER and text.lower() in EMPTY_MARKERS:  # is_empty_marker, inlined: hot
                continue
            risky = value[0] in _CHECKED_FIRST or text[0] in _CHECKED_FIRST
            if risky and (why := _formula_problem(name, value, text)):
                result.error(name, "formula", why, value)
                continue
            self.text[name] = text

    def clean(self, name: str, cleaner, *args):
        text = self.text.get(name)
        if text is None:
            return None
        try:
            return cleaner(text, *args)
        except InvalidValue as exc:
            self.result.error(name, exc.code, exc.message, self.raw[name])
            return None

    def free_text(self, name: str) -> str | None:
        text = self.text.get(name)
        if text is not None and len(text) > TEXT_LIMITS[name]:
            too_long = Text("longer than {limit} characters", limit=TEXT_LIMITS[name])
            self.result.error(name, "too_long", too_long, self.raw[name])
            return None
        return text

    def phone(self, country: str) -> str | None:
        """Mijnrood's phone is free text: a number that cannot be read costs the member nothing but it."""
        text = self.text.get("phone")
        if text is None:
            return None
        try:
            return clean_phone(text, country)
        except InvalidValue:
            found = phone_in_text(text, country)
        if found:
            kept = Text("the one telephone number in the text is kept")
            self.result.warn("phone", "phone_from_text", kept, text)
        else:
            self.result.warn(
                "phone", "unreadable_phone", Text("no telephone number in it: the member is imported without one"), text
            )
        return found

    def membership(self, extra: Mapping[str, str] | None) -> tuple[str | None, str | None]:
        text = self.text.get("membership_type")
        if text is None:
            return None, None
        try:
            return parse_membership_type(text, extra)
        except UnknownMembershipType as exc:
            self.result.warn("membership_type", exc.code, exc.message, self.raw["membership_type"])
            return None, None

    def chapter(self) -> str | None:
        text = self.free_text("chapter")
        if text is not None and text.endswith("*"):
            marker = Text("the trailing * is not part of the chapter's name")
            self.result.warn("chapter", "chapter_marker", marker, text)
            text = text.rstrip("* ") or None
        return text

    def require(self, name: str) -> None:
        if name not in self.text and not any(p.field == name for p in self.result.errors):
            required = Text("{column} is required", column=COLUMN_BY_FIELD[name].label)
            self.result.error(name, "required", required, self.raw.get(name))


def validate_row(
    number: int, cells: list[str], header: HeaderMap, today: date, membership_types: Mapping[str, str] | None = None
) -> RowResult:
    """Check every rule for one row; the result is valid only when no rule found an error.

    ``membership_types`` maps the association's own membership names to statuses ({'Erelid': 'Active'})."""
    result = RowResult(number, cells)
    raw = {name: (cells[index] if index < len(cells) else "") for name, index in header.positions.items()}
    if type_key(raw.get("membership_type", "")) == DOUBLE_REGISTRATION:
        result.skip(
            "membership_type",
            "double_registration",
            Text("a double registration (Dubbel) in Mijnrood: only the member's own row is imported"),
            raw["membership_type"],
        )
        return result
    check = _RowValidator(result, raw)
    if len(cells) > header.width and not is_blank(cells[header.width :]):
        result.error(
            None,
            "extra_cells",
            Text(
                "the row has {cells} cells but the header {width}; does a value need quotes?",
                cells=len(cells),
                width=header.width,
            ),
            None,
        )
    elif len(cells) < header.width:
        result.error(
            None,
            "short_row",
            Text(
                "the row has {cells} cells but the header {width}: a line break inside a value without quotes cuts "
                "a row in two; join the parts into one row",
                cells=len(cells),
                width=header.width,
            ),
            None,
        )
    check.require("first_name")
    check.require("last_name")

    first_name = check.clean("first_name", clean_name, "first name")
    tussenvoegsel = check.clean("tussenvoegsel", clean_tussenvoegsel)
    last_name = check.clean("last_name", clean_name, "last name")
    email = check.clean("email", clean_email)
    birth_date = check.clean("birth_date", parse_birth_date, today)
    member_since = check.clean("member_since", parse_date)
    country = check.clean("country", clean_country) or DEFAULT_COUNTRY
    iban = check.clean("iban", clean_iban)
    membership_type, status = check.membership(membership_types)
    dues_amount = check.clean("dues_amount", parse_amount)
    if dues_amount is not None and dues_amount > PLAUSIBLE_MAXIMUM_AMOUNT:
        result.warn(
            "dues_amount",
            "implausible_amount",
            Text("more than {amount} euros per period: is it a typo?", amount=PLAUSIBLE_MAXIMUM_AMOUNT),
            raw["dues_amount"],
        )

    if email is None and "email" not in check.text:
        result.warn("email", "no_email", "no e-mail address: the member is imported but gets no account", None)
    if birth_date is not None and age_on(birth_date, today) < MINIMUM_VOLUNTEER_AGE:
        young = Text("younger than 16: cannot become a volunteer")
        result.warn("birth_date", "under_16", young, raw["birth_date"])
    if iban is not None and has_unknown_dutch_bank(iban):
        unknown = Text("no Dutch bank uses code {code}", code=iban.bank_code)
        result.warn("iban", "unknown_bank_code", unknown, raw["iban"])

    result.values = {
        "member_id": check.clean("member_id", clean_member_id),
        "first_name": first_name,
        "tussenvoegsel": tussenvoegsel,
        "last_name": last_name,
        "full_name": full_name(first_name, tussenvoegsel, last_name),
        "email": email,
        "birth_date": birth_date.isoformat() if birth_date else None,
        "member_since": member_since.isoformat() if member_since else None,
        "chapter": check.chapter(),
        "phone": check.phone(country),
        "address_line1": check.free_text("address_line1"),
        "city": check.free_text("city"),
        "postcode": check.clean("postcode", clean_postcode, country),
        "country": country,
        "iban": iban.compact if iban is not None else None,
        "dues_amount": dues_amount,
        "billing_frequency": check.clean("billing_frequency", parse_billing_frequency),
        "mollie_customer_id": check.clean("mollie_customer_id", clean_mollie_id, "cst_"),
        "mollie_subscription_id": check.clean("mollie_subscription_id", clean_mollie_id, "sub_"),
        "membership_type": membership_type,
        "status": status,
        "paid": check.free_text("paid"),
        "privacy_accepted": check.free_text("privacy_accepted"),
    }
    return result
