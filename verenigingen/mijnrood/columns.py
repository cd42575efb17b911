"""The columns of a Mijnrood export and the Member fields they fill."""

import re
from dataclasses import dataclass

from verenigingen.mijnrood.errors import ExportError
from verenigingen.text import Text


@dataclass(frozen=True)
class Column:
    field: str
    headers: tuple[str, ...]
    required: bool = False

    @property
    def label(self) -> str:
        return self.headers[0]


COLUMNS = (
    Column("member_id", ("Lidnr.", "Lidnr", "Lidnummer")),
    Column("first_name", ("Voornaam",), required=True),
    Column("tussenvoegsel", ("Tussenvoegsel",)),
    Column("last_name", ("Achternaam",), required=True),
    Column("birth_date", ("Geboortedatum",)),
    Column("member_since", ("Inschrijfdatum", "Inschrijfdataum")),
    Column("chapter", ("Groep", "Afdeling")),
    Column("email", ("E-mailadres", "E-mail")),
    Column("phone", ("Telefoonnr.", "Telefoonnummer")),
    Column("address_line1", ("Adres",)),
    Column("city", ("Plaats",)),
    Column("postcode", ("Postcode",)),
    Column("country", ("Landcode", "Land")),
    Column("iban", ("IBAN",)),
    Column("dues_amount", ("Contributiebedrag",)),
    Column("billing_frequency", ("Betaalperiode",)),
    Column("mollie_customer_id", ("Mollie CID",)),
    Column("mollie_subscription_id", ("Mollie SID",)),
    Column("membership_type", ("Lidmaatschapstype", "Lidmaatschapsstatus")),
    Column("paid", ("Betaald",)),
    Column("privacy_accepted", ("Privacybeleid geaccepteerd",)),
)
COLUMN_BY_FIELD = {column.field: column for column in COLUMNS}

_IGNORED_IN_HEADERS = re.compile(r"[\s._\-\ufeff]+")


def header_key(text: str) -> str:
    """'  E-mail adres ' and 'e-mailadres' compare equal: case, spaces, dots and dashes do not count."""
    return _IGNORED_IN_HEADERS.sub("", text).lower()


_FIELD_BY_HEADER = {header_key(header): column.field for column in COLUMNS for header in column.headers}
# Mijnrood's export of support members (donors): a list of people who are not members.
_SUPPORTER_HEADERS = frozenset({header_key("Steunlidnr."), header_key("Steunlidnummer")})


def recognised_count(cells: list[str]) -> int:
    """How many cells name a Mijnrood column (used to detect the delimiter)."""
    return sum(header_key(cell) in _FIELD_BY_HEADER for cell in cells)


@dataclass(frozen=True)
class HeaderMap:
    """Where each Member field sits in a row, and which header cells were not understood."""

    positions: dict[str, int]
    width: int
    ignored: tuple[str, ...]

    @classmethod
    def from_header(cls, cells: list[str]) -> "HeaderMap":
        if any(header_key(cell) in _SUPPORTER_HEADERS for cell in cells):
            raise ExportError(
                Text(
                    "this is an export of support members (it has a column 'Steunlidnr.'), not of members; "
                    "supporters are not imported as members"
                )
            )
        positions: dict[str, int] = {}
        ignored = []
        for index, cell in enumerate(cells):
            field = _FIELD_BY_HEADER.get(header_key(cell))
            if field is None:
                if cell.strip():
                    ignored.append(cell.strip())
                continue
            if field in positions:
                raise ExportError(
                    Text(
                        "columns {first} and {second} are both '{column}'; keep one of them",
                        first=positions[field] + 1,
                        second=index + 1,
                        column=COLUMN_BY_FIELD[field].label,
                    )
                )
            positions[field] = index
        missing = [column.label for column in COLUMNS if column.required and column.field not in positions]
        if missing:
            names = " and ".join(repr(label) for label in missing)
            if len(missing) == 1:
                raise ExportError(Text("required column {names} is missing", names=names))
            raise ExportError(Text("required columns {names} are missing", names=names))
        return cls(positions, len(cells), tuple(ignored))
