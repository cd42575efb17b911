"""Realistic Mijnrood exports for demos, tests and benchmarks, optionally with broken rows.

Same seed, same file. Each broken row carries one defect of a known kind, so that a generated
file with ``invalid_rate`` r has exactly round(r * members) rows the reader must reject.
"""

import csv
import random
import string
import unicodedata
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

from schwifty import IBAN

from verenigingen.dutch import InvalidValue
from verenigingen.dutch.address import clean_postcode
from verenigingen.dutch.names import clean_name
from verenigingen.mijnrood.columns import COLUMNS

# Column order as Mijnrood writes it; each column under its first-listed name.
HEADER = tuple(column.label for column in COLUMNS)
# Lower-case surname prefixes, longest first, so "van der Berg" splits as ("van der", "Berg").
TUSSENVOEGSELS = ("van der", "van den", "van het", "van de", "van 't", "uit de", "in 't", "op de")
TUSSENVOEGSELS += ("van", "den", "der", "ten", "ter", "de", "te", "'t", "le")
DUTCH_BANK_CODES = ("ABNA", "INGB", "RABO", "SNSB", "TRIO", "ASNB", "KNAB", "BUNQ", "RBRB")
CHAPTERS = ("Amsterdam", "Rotterdam", "Utrecht", "Den Haag", "Groningen", "Nijmegen", "Eindhoven", "Leiden")
MAIL_DOMAINS = ("gmail.com", "hotmail.com", "outlook.com", "ziggo.nl", "kpnmail.nl", "xs4all.nl", "live.nl")
MEMBERSHIP_WEIGHTS = {
    "lid": 80,
    "aspirant": 8,
    "opgezegd": 6,
    "uitgeschreven": 3,
    "geschorst": 1,
    "geroyeerd": 1,
    "overleden": 1,
}
PERIOD_WEIGHTS = {"maandelijks": 60, "kwartaal": 15, "halfjaar": 5, "jaar": 20}
AMOUNTS = ("5,00", "7,50", "10,00", "12,50", "15,00", "25,00")
# Fixed, so that the same seed gives the same file on any day.
BORN_FROM, BORN_UNTIL = date(1940, 1, 1), date(2011, 12, 31)
JOINED_UNTIL = date(2025, 6, 30)
DATE_FORMATS = ("{d:%d}-{d:%m}-{d.year}",) * 8 + (
    "{d.day}-{d.month}-{d.year}",
    "{d:%d}/{d:%m}/{d.year}",
    "{d:%d}.{d:%m}.{d.year}",
    "{d:%Y-%m-%d}",
)


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


class _ExportFaker:
    """Makes one member row at a time from a seeded Faker and a seeded Random."""

    def __init__(self, seed: int, first_member_id: int | None = None):
        from faker import Faker  # only the generator needs Faker: it is in the standalone extra

        self.rng = random.Random(seed)
        self.faker = Faker("nl_NL")
        self.faker.seed_instance(seed)
        self.emails: set[str] = set()
        self.next_member_id = first_member_id if first_member_id is not None else 10_000 + self.rng.randrange(1000)

    def date_between(self, start: date, end: date) -> date:
        return start + timedelta(days=self.rng.randrange((end - start).days + 1))

    def dutch_date(self, day: date) -> str:
        return self.rng.choice(DATE_FORMATS).format(d=day)

    def surname(self) -> tuple[str, str]:
        while True:
            last = self.faker.last_name()
            prefix = next((p for p in TUSSENVOEGSELS if last.startswith(p + " ")), "")
            last = last[len(prefix) :].strip()
            try:
                clean_name(last)
                clean_name(prefix or "x")
            except InvalidValue:
                continue
            return prefix, last

    def email(self, first: str, prefix: str, last: str) -> str:
        local = ".".join(_ascii(part).lower().replace(" ", "").replace("'", "") for part in (first, prefix + last))
        address, n = f"{local}@{self.rng.choice(MAIL_DOMAINS)}", 1
        while address in self.emails:
            n += 1
            address = f"{local}{n}@{address.split('@')[1]}"
        self.emails.add(address)
        return address

    def phone(self) -> str:
        digits = f"{self.rng.choice('12345')}{self.rng.randrange(10**7):07d}"
        return self.rng.choice(
            (
                f"06{digits}",
                f"06-{digits}",
                f"06 {digits[:4]} {digits[4:]}",
                f"+31 6 {digits}",
                f"+316{digits}",
                f"0031 6 {digits[:4]} {digits[4:]}",
            )
        )

    def postcode(self) -> str:
        while True:
            code = self.faker.postcode()
            try:
                clean_postcode(code, "NL")
            except InvalidValue:
                continue
            return code

    def iban(self) -> str:
        iban = IBAN.generate(
            "NL",
            bank_code=self.rng.choice(DUTCH_BANK_CODES),
            account_code=f"{self.rng.randrange(10**10):010d}",
        )
        return iban.formatted if self.rng.random() < 0.3 else iban.compact

    def mollie_id(self, prefix: str) -> str:
        return prefix + "".join(self.rng.choices(string.ascii_letters + string.digits, k=10))

    def weighted(self, weights: dict[str, int]) -> str:
        return self.rng.choices(tuple(weights), weights=tuple(weights.values()))[0]

    def row(self) -> dict[str, str]:
        rng = self.rng
        self.next_member_id += rng.randint(1, 3)
        first = self.faker.first_name()
        prefix, last = self.surname()
        born = self.date_between(BORN_FROM, BORN_UNTIL)
        joined = self.date_between(max(born + timedelta(days=10 * 365), date(1990, 1, 1)), JOINED_UNTIL)
        paying = rng.random() < 0.9
        return {
            "Lidnr.": str(self.next_member_id),
            "Voornaam": first,
            "Tussenvoegsel": prefix,
            "Achternaam": last,
            "Geboortedatum": self.dutch_date(born),
            "Inschrijfdatum": self.dutch_date(joined),
            "Groep": rng.choice(CHAPTERS),
            "E-mailadres": self.email(first, prefix, last) if rng.random() < 0.99 else "",
            "Telefoonnr.": self.phone() if rng.random() < 0.95 else rng.choice(("", "-", "nb")),
            "Adres": self.faker.street_address(),
            "Plaats": self.faker.city(),
            "Postcode": self.postcode(),
            "Landcode": rng.choice(("NL",) * 9 + ("",)),
            "IBAN": self.iban() if paying else "",
            "Contributiebedrag": rng.choice(AMOUNTS),
            "Betaalperiode": self.weighted(PERIOD_WEIGHTS),
            "Mollie CID": self.mollie_id("cst_") if paying else "",
            "Mollie SID": self.mollie_id("sub_") if paying else "",
            "Lidmaatschapstype": self.weighted(MEMBERSHIP_WEIGHTS),
            "Betaald": "ja" if paying else "nee",
            "Privacybeleid geaccepteerd": "ja",
        }


def _broken_iban(row: dict, earlier: list[dict], rng: random.Random) -> None:
    compact = IBAN.generate("NL", bank_code="INGB", account_code=f"{rng.randrange(10**10):010d}").compact
    row["IBAN"] = compact[:-1] + str((int(compact[-1]) + 1) % 10)


def _duplicate_of_earlier(column: str) -> Callable:
    def breaker(row: dict, earlier: list[dict], rng: random.Random) -> None:
        candidates = [r[column] for r in earlier[-50:] if r[column]]
        row[column] = rng.choice(candidates).upper() if candidates else "=" + row[column]

    return breaker


def _set(column: str, *values: str) -> Callable:
    def breaker(row: dict, earlier: list[dict], rng: random.Random) -> None:
        row[column] = rng.choice(values)

    return breaker


# One defect per broken row; each one is something real exports contain and the reader must reject.
DEFECTS: dict[str, Callable] = {
    "missing_first_name": _set("Voornaam", "", "-"),
    "missing_last_name": _set("Achternaam", ""),
    "bad_postcode": _set("Postcode", "0123 AB", "1234 SA", "12345", "AB 1234"),
    "bad_iban": _broken_iban,
    "bad_email": _set("E-mailadres", "jan.jansen@@ziggo.nl", "jan jansen@ziggo.nl", "jansen.ziggo.nl", "a@b"),
    "impossible_date": _set("Geboortedatum", "31-02-1990", "12/31/1985", "1990-13-01", "00-01-1970"),
    "future_birth_date": _set("Geboortedatum", "01-01-2099", "2098-06-15"),
    "bad_country": _set("Landcode", "XX", "Nederlandt", "Atlantis"),
    "formula": _set("Plaats", '=HYPERLINK("http://x")', "@SUM(A1)", "+cmd|' /C calc'!A0", "\tAmsterdam"),
    "bad_mollie_id": _set("Mollie CID", "cus_8uXkq2XsJk", "8uXkq2XsJk"),
    "bad_amount": _set("Contributiebedrag", "twaalf", "12,5,0", "-5,00"),
    "bad_member_id": _set("Lidnr.", "12 34", "#1234", "1234/5"),
    "bad_billing_frequency": _set("Betaalperiode", "wekelijks", "dagelijks"),
    "duplicate_member_id": _duplicate_of_earlier("Lidnr."),
    "duplicate_email": _duplicate_of_earlier("E-mailadres"),
}


def _encodable(text: str, encoding: str) -> str:
    try:
        text.encode(encoding)
    except UnicodeEncodeError:
        return _ascii(text)
    return text


def generate_export(
    path: str | Path,
    members: int,
    seed: int = 0,
    invalid_rate: float = 0.0,
    encoding: str = "utf-8",
    delimiter: str = ";",
    first_member_id: int | None = None,
) -> int:
    """Write an export of ``members`` rows; return how many rows were broken on purpose.

    ``first_member_id`` fixes where Lidnr. numbering starts (exports of different seeds may overlap)."""
    if members < 0 or not 0.0 <= invalid_rate <= 1.0:
        raise ValueError("members must be >= 0 and invalid_rate between 0 and 1")
    maker = _ExportFaker(seed, first_member_id)
    broken = set(maker.rng.sample(range(members), round(members * invalid_rate)))
    defects = tuple(DEFECTS.values())
    earlier: list[dict] = []
    with Path(path).open("w", encoding=encoding, newline="") as stream:
        writer = csv.writer(stream, delimiter=delimiter)
        writer.writerow(HEADER)
        for index in range(members):
            row = maker.row()
            if index in broken:
                maker.rng.choice(defects)(row, earlier, maker.rng)
            else:
                earlier.append(row)
                del earlier[:-50]
            writer.writerow([_encodable(row[column], encoding) for column in HEADER])
    return len(broken)
