from decimal import Decimal

import pytest

from verenigingen.dutch import InvalidValue
from verenigingen.dutch.membership import (
    BILLING_FREQUENCIES,
    UnknownMembershipType,
    clean_member_id,
    clean_mollie_id,
    parse_amount,
    parse_billing_frequency,
    parse_extra_types,
    parse_membership_type,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("12,50", "12.50"),
        ("12,5", "12.50"),
        ("12", "12.00"),
        ("€ 7,50", "7.50"),
        ("€7,50", "7.50"),
        ("1.234,56", "1234.56"),
        ("12.50", "12.50"),
        ("1.000", "1000.00"),
        ("0,00", "0.00"),
    ],
)
def test_amounts(raw, expected):
    assert parse_amount(raw) == Decimal(expected)


@pytest.mark.parametrize("raw", ["twaalf", "12,5,0", "-5,00", "12,505", "1,234.56", "12 50", "EUR"])
def test_invalid_amounts(raw):
    with pytest.raises(InvalidValue) as caught:
        parse_amount(raw)
    assert caught.value.code == "invalid_amount"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("maandelijks", "Monthly"),
        ("Kwartaal", "Quarterly"),
        ("halfjaar", "Semi-annually"),
        ("JAAR", "Annually"),
        ("per  maand", "Monthly"),
        ("jaarlijks", "Annually"),
    ],
)
def test_billing_frequencies(raw, expected):
    assert parse_billing_frequency(raw) == expected


def test_every_billing_frequency_maps_to_one_of_four_values():
    assert set(BILLING_FREQUENCIES.values()) == {"Monthly", "Quarterly", "Semi-annually", "Annually"}


def test_unknown_billing_frequency():
    with pytest.raises(InvalidValue, match="maandelijks, kwartaal, halfjaar or jaar"):
        parse_billing_frequency("wekelijks")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("lid", ("Lid", "Active")),
        ("Aspirant", ("Aspirant", "Active")),
        ("opgezegd", (None, "Cancelled")),
        ("uitgeschreven", (None, "Unsubscribed")),
        ("geroyeerd", (None, "Expelled")),
        ("geschorst", (None, "Suspended")),
        ("OVERLEDEN", (None, "Deceased")),
    ],
)
def test_membership_types(raw, expected):
    assert parse_membership_type(raw) == expected


def test_an_unknown_membership_type_is_unknown_and_an_own_name_maps_to_its_status():
    with pytest.raises(UnknownMembershipType) as caught:
        parse_membership_type("erelid")
    assert caught.value.code == "unknown_membership_type"
    assert parse_membership_type(" ERELID ", {"Erelid": "Active"}) == ("Erelid", "Active")


@pytest.mark.parametrize("text", ["Erelid", "Erelid=Actief", "=Active", "Erelid=Active; Proeflid"])
def test_own_membership_types_need_a_known_status(text):
    with pytest.raises(InvalidValue, match="NAME=STATUS"):
        parse_extra_types(text)


def test_own_membership_types_parse():
    assert parse_extra_types("Erelid=Active; Proeflid = Active;\nOud-lid=Cancelled") == {
        "Erelid": "Active",
        "Proeflid": "Active",
        "Oud-lid": "Cancelled",
    }


@pytest.mark.parametrize("raw", ["12,50 €", "EUR 12,50", "€12,50", "12,50 EUR", "eur 12,50"])
def test_amounts_with_the_currency_before_or_after(raw):
    assert parse_amount(raw) == Decimal("12.50")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("driemaandelijks", "Quarterly"),
        ("monthly", "Monthly"),
        ("Quarterly", "Quarterly"),
        ("half-yearly", "Semi-annually"),
        ("yearly", "Annually"),
        ("annually", "Annually"),
    ],
)
def test_more_billing_period_spellings(raw, expected):
    assert parse_billing_frequency(raw) == expected


@pytest.mark.parametrize(("raw", "prefix"), [("cst_8uXkq2XsJk", "cst_"), ("sub_rVKGtNd6s3", "sub_")])
def test_mollie_ids(raw, prefix):
    assert clean_mollie_id(f" {raw} ", prefix) == raw


@pytest.mark.parametrize(
    ("raw", "prefix"),
    [
        ("cus_8uXkq2XsJk", "cst_"),
        ("cst_8uXkq2XsJk", "sub_"),
        ("cst_", "cst_"),
        ("cst_abc def", "cst_"),
        ("8uXkq2XsJk", "sub_"),
    ],
)
def test_invalid_mollie_ids(raw, prefix):
    with pytest.raises(InvalidValue, match=f"must be {prefix}"):
        clean_mollie_id(raw, prefix)


@pytest.mark.parametrize("raw", ["1001", "A-17", "0042"])
def test_member_ids(raw):
    assert clean_member_id(raw) == raw


@pytest.mark.parametrize("raw", ["12#4", "10 01", "x" * 31, "-12"])
def test_invalid_member_ids(raw):
    with pytest.raises(InvalidValue):
        clean_member_id(raw)
