"""Personal names: first name, tussenvoegsel (Dutch surname prefix) and last name."""

import re
import unicodedata
from functools import lru_cache

from verenigingen.dutch.errors import InvalidValue
from verenigingen.text import Text

MAX_NAME_LENGTH = 140
NAME = Text("name")
_SPACES = re.compile(r"\s+")
_ALLOWED_PUNCTUATION = frozenset(" -'’‘.")
_PLAIN_NAME = re.compile(r"(?:[^\W\d_]|[ \-'’‘.])+")  # letters (any script) and name punctuation


@lru_cache(maxsize=16384)  # first names and surnames repeat a great deal within an export
def clean_name(value: str, what: str = NAME) -> str:
    """Collapse inner whitespace; accept letters (accents included) and the punctuation names use."""
    name = _SPACES.sub(" ", value.strip())
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidValue(
            "too_long", Text("{what} is longer than {limit} characters", what=what, limit=MAX_NAME_LENGTH)
        )
    if _PLAIN_NAME.fullmatch(name) and any(ch.isalpha() for ch in name):
        return name
    if not any(ch.isalpha() for ch in name):
        raise InvalidValue("invalid_name", Text("{what} contains no letters", what=what))
    for ch in name:
        if not (ch.isalpha() or ch in _ALLOWED_PUNCTUATION or unicodedata.category(ch).startswith("M")):
            raise InvalidValue(
                "invalid_name", Text("{what} contains {ch!r}, which does not belong in a name", what=what, ch=ch)
            )
    return name


def clean_tussenvoegsel(value: str) -> str:
    """A tussenvoegsel ("van der", "ten", "'t") is written in lower case inside a full name."""
    return clean_name(value, Text("tussenvoegsel")).lower()


def full_name(first_name: str | None, tussenvoegsel: str | None, last_name: str | None) -> str:
    """'Anna', 'ten', 'Boom' -> 'Anna ten Boom'."""
    return " ".join(part for part in (first_name, tussenvoegsel, last_name) if part)
