"""Messages that keep their template: equal to their English text everywhere, translatable by template."""

import copy
import json
import pickle

from verenigingen.dutch import InvalidValue
from verenigingen.dutch.dates import parse_date
from verenigingen.text import Text


def test_a_text_is_its_english_string_with_its_template_and_values():
    text = Text("day {day} of month {month} does not exist", day=31, month=2)
    assert text == "day 31 of month 2 does not exist"
    assert (text.template, text.values) == ("day {day} of month {month} does not exist", {"day": 31, "month": 2})
    assert json.dumps({"message": text}) == '{"message": "day 31 of month 2 does not exist"}'


def test_a_text_survives_a_pickle_and_a_copy_with_its_template():
    text = Text("the same Lidnr. {value} as row {row}", value="12", row=4)
    for again in (pickle.loads(pickle.dumps(text)), copy.deepcopy(text)):  # noqa: S301 - our own bytes
        assert again == text and again.template == text.template and again.values == text.values


def test_the_validators_give_their_reasons_as_texts():
    try:
        parse_date("31-02-1990")
    except InvalidValue as exc:
        assert isinstance(exc.message, Text)
        assert exc.message.template == "day {day} of month {month} of {year} does not exist"
        assert exc.message == "day 31 of month 2 of 1990 does not exist"
    else:
        raise AssertionError("31 February was accepted")
