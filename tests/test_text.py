"""Messages that keep their template: equal to their English text everywhere, translatable by template."""

import copy
import json
import pickle

from verenigingen.dutch import InvalidValue
from verenigingen.dutch.dates import parse_date
from verenigingen.text import Text, in_a_row, saved_text


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


def test_parts_in_a_row_stay_translatable_each():
    assert in_a_row([]) is None and in_a_row([None, ""]) is None
    assert in_a_row(["only"]) == "only"
    row = in_a_row([Text("{n} x gone", n=2), None, "plain", Text("late")])
    assert row == "2 x gone; plain; late"
    kept = Text.from_dict(json.loads(json.dumps(row.as_dict())))
    assert kept == row
    assert kept.values["first"].template == "{n} x gone"
    assert kept.values["rest"].values["rest"].template == "late"


def test_a_saved_text_comes_back_and_anything_else_leaves_the_english():
    text = Text("{count} retried", count=3)
    back = saved_text("3 retried", json.dumps(text.as_dict()))
    assert isinstance(back, Text) and (back, back.template, back.values) == (
        "3 retried",
        "{count} retried",
        {"count": 3},
    )
    assert saved_text("3 retried", text.as_dict()) == text
    for broken in (None, "", "not json", "{}", '{"values": {}}', "[1]"):
        assert saved_text("3 retried", broken) == "3 retried"
        assert not isinstance(saved_text("3 retried", broken), Text)
    assert saved_text(None, json.dumps(text.as_dict())) is None
