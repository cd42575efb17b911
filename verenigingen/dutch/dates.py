"""Dates as Dutch exports write them: day first, never guessed month first."""

import re
from datetime import date, timedelta
from functools import lru_cache

from verenigingen.dutch.errors import InvalidValue
from verenigingen.text import Text

# dd-mm-yyyy, d-m-yyyy, dd/mm/yyyy, dd.mm.yyyy (one separator throughout), optional midnight time.
_DAY_FIRST = re.compile(r"(\d{1,2})([-/.])(\d{1,2})\2(\d{4})(?:[ T]\d{1,2}:\d{2}(?::\d{2})?)?")
_ISO = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:[ T]\d{1,2}:\d{2}(?::\d{2})?)?")
_YEAR_FIRST = re.compile(r"(\d{4})([/.])(\d{1,2})\2(\d{1,2})")
# A spreadsheet serial (days since 30-12-1899, the 1900 date system), with a time as a fraction:
# Mijnrood writes dates so, and a CSV saved from its workbook can keep the number.
_SERIAL = re.compile(r"(\d{4,5})(?:[.,]\d+)?")
_SERIAL_EPOCH = date(1899, 12, 30)
# Serials of 1910 to 2099 only: a bare year such as 1990 is never read as a day in 1905.
_SERIALS = range((date(1910, 1, 1) - _SERIAL_EPOCH).days, (date(2100, 1, 1) - _SERIAL_EPOCH).days)
EARLIEST = date(1900, 1, 1)


@lru_cache(maxsize=8192)  # members share birthdays and join dates: most look-ups repeat
def parse_date(value: str) -> date:
    """Parse a Dutch day-first, a year-first or a spreadsheet serial date; impossible dates and two-digit
    years are errors."""
    text = value.strip()
    if match := _ISO.fullmatch(text):
        year, month, day = (int(g) for g in match.groups())
    elif match := _YEAR_FIRST.fullmatch(text):
        year, month, day = int(match[1]), int(match[3]), int(match[4])
    elif (match := _SERIAL.fullmatch(text)) and int(match[1]) in _SERIALS:
        return _SERIAL_EPOCH + timedelta(days=int(match[1]))
    elif match := _DAY_FIRST.fullmatch(text):
        day, month, year = int(match[1]), int(match[3]), int(match[4])
    else:
        raise InvalidValue(
            "invalid_date", Text("not a date; use day-month-year (31-12-1990) or year-month-day (1990-12-31)")
        )
    try:
        parsed = date(year, month, day)
    except ValueError:
        raise InvalidValue(
            "invalid_date", Text("day {day} of month {month} of {year} does not exist", day=day, month=month, year=year)
        ) from None
    if parsed < EARLIEST:
        raise InvalidValue("invalid_date", Text("a date before {year} is not plausible", year=EARLIEST.year))
    return parsed


def parse_birth_date(value: str, today: date) -> date:
    """A birth date must be a real date and not in the future."""
    born = parse_date(value)
    if born > today:
        raise InvalidValue("future_date", Text("birth date lies in the future"))
    return born


def age_on(born: date, day: date) -> int:
    """Completed years of age on ``day``."""
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))
