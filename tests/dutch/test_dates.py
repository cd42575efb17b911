from datetime import date

import pytest

from verenigingen.dutch import InvalidValue
from verenigingen.dutch.dates import age_on, parse_birth_date, parse_date

TODAY = date(2026, 6, 1)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("31-12-1990", date(1990, 12, 31)),
        ("1-2-1990", date(1990, 2, 1)),
        ("01/02/1990", date(1990, 2, 1)),
        ("01.02.1990", date(1990, 2, 1)),
        ("1990-02-01", date(1990, 2, 1)),
        ("01-02-1990 00:00", date(1990, 2, 1)),
        ("1990-02-01T00:00:00", date(1990, 2, 1)),
        ("29-02-2000", date(2000, 2, 29)),
    ],
)
def test_day_first_and_iso_dates(raw, expected):
    assert parse_date(raw) == expected


def test_day_first_is_never_guessed_month_first():
    # 02-01 is the 2nd of January, and 12/31 has no 31st month: never read as December 31st.
    assert parse_date("02-01-1990") == date(1990, 1, 2)
    with pytest.raises(InvalidValue, match="month 31"):
        parse_date("12/31/1990")


@pytest.mark.parametrize("raw", ["31-02-1990", "29-02-1900", "00-01-1990", "1990-13-01", "32-01-1990"])
def test_impossible_dates_are_errors(raw):
    with pytest.raises(InvalidValue) as caught:
        parse_date(raw)
    assert caught.value.code == "invalid_date"
    assert "does not exist" in caught.value.message


@pytest.mark.parametrize(
    "raw", ["1-2-90", "01-02/1990", "feb 1 1990", "19900201", "1990", "3653", "73051", "01-02-1990 abc", "1990/02-01"]
)
def test_unrecognised_formats_are_errors(raw):
    with pytest.raises(InvalidValue, match="not a date"):
        parse_date(raw)


def test_dates_before_1900_are_not_plausible():
    with pytest.raises(InvalidValue, match="before 1900"):
        parse_date("31-12-1899")


def test_birth_date_in_the_future_is_an_error_and_today_is_not():
    assert parse_birth_date("01-06-2026", TODAY) == TODAY
    with pytest.raises(InvalidValue) as caught:
        parse_birth_date("02-06-2026", TODAY)
    assert caught.value.code == "future_date"


@pytest.mark.parametrize(
    ("born", "age"),
    [(date(2010, 6, 1), 16), (date(2010, 6, 2), 15), (date(2000, 2, 29), 26), (date(2026, 6, 1), 0)],
)
def test_age_counts_completed_years(born, age):
    assert age_on(born, TODAY) == age


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("32967", date(1990, 4, 4)),
        ("44197,63542824", date(2021, 1, 1)),  # a date and a time, Dutch decimal comma
        ("44197.5", date(2021, 1, 1)),
        ("3654", date(1910, 1, 1)),
        ("73050", date(2099, 12, 31)),
    ],
)
def test_spreadsheet_serials_in_a_plausible_range_are_dates_of_the_1900_system(raw, expected):
    assert parse_date(raw) == expected


@pytest.mark.parametrize(("raw", "expected"), [("1990/01/15", date(1990, 1, 15)), ("1990.1.5", date(1990, 1, 5))])
def test_year_first_with_slashes_or_dots(raw, expected):
    assert parse_date(raw) == expected
