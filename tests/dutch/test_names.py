import pytest

from verenigingen.dutch import InvalidValue
from verenigingen.dutch.names import clean_name, clean_tussenvoegsel, full_name


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Anna ", "Anna"),
        ("Jan  Willem", "Jan Willem"),
        ("Zoë", "Zoë"),
        ("Ngọc", "Ngọc"),
        ("O'Neill", "O'Neill"),
        ("Smit-Verhoef", "Smit-Verhoef"),
        ("J.P.", "J.P."),
        ("Zoe\u0308", "Zoe\u0308"),  # a combining diaeresis is kept as written
    ],
)
def test_names_are_trimmed_and_keep_accents(raw, expected):
    assert clean_name(raw) == expected


@pytest.mark.parametrize("raw", ["Anna2", "Anna;Boom", "-", "...", "Anna_B", "Jan (Piet)"])
def test_names_with_characters_that_do_not_belong_are_rejected(raw):
    with pytest.raises(InvalidValue) as caught:
        clean_name(raw, "first name")
    assert caught.value.code == "invalid_name"
    assert "first name" in caught.value.message


def test_overlong_name_is_rejected():
    with pytest.raises(InvalidValue, match="longer than 140"):
        clean_name("A" * 141)


def test_tussenvoegsel_is_lower_case():
    assert clean_tussenvoegsel("Van  Der") == "van der"
    assert clean_tussenvoegsel("'T") == "'t"


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (("Anna", "ten", "Boom"), "Anna ten Boom"),
        (("Anna", None, "Boom"), "Anna Boom"),
        (("Piet", "van der", "Berg"), "Piet van der Berg"),
    ],
)
def test_full_name(parts, expected):
    assert full_name(*parts) == expected
