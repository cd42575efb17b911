"""Messages that keep their template and values, so that a host that speaks the user's language (the Frappe
app, through its translation files) can say them in Dutch; everywhere else they are the plain English
string they are equal to."""

import json


class Text(str):
    """``Text("{count} rows", count=3) == "3 rows"``, with ``.template`` and ``.values`` kept."""

    template: str
    values: dict

    def __new__(cls, template: str, **values) -> "Text":
        text = super().__new__(cls, template.format(**values))
        text.template, text.values = template, values
        return text

    def __reduce__(self):  # pickled (a job's arguments, a copy) as what it is, template included
        return _rebuild, (self.template, self.values)

    def as_dict(self) -> dict:
        """For storing beside the English text (JSON), so that it can be translated when it is shown."""
        values = {key: value.as_dict() if isinstance(value, Text) else value for key, value in self.values.items()}
        return {"template": self.template, "values": values}

    @classmethod
    def from_dict(cls, data: dict) -> "Text":
        values = {
            key: cls.from_dict(value) if isinstance(value, dict) and "template" in value else value
            for key, value in (data.get("values") or {}).items()
        }
        return cls(data["template"], **values)


def saved_text(english: str | None, saved: str | dict | None) -> str | None:
    """The Text that ``as_dict`` saved (as JSON) beside ``english``; the English itself when nothing usable was."""
    if not english or not saved:
        return english
    try:
        return Text.from_dict(json.loads(saved) if isinstance(saved, str) else saved)
    except (ValueError, KeyError, TypeError, AttributeError):  # not what this app saved: the English stands
        return english


def in_a_row(parts: list[str | None]) -> str | None:
    """'a; b; c' (None when there is nothing to say), nested as '{first}; {rest}' so that every part that is
    a Text is still translated in turn."""
    said = [part for part in parts if part]
    if not said:
        return None
    text = said[-1]
    for part in reversed(said[:-1]):
        text = Text("{first}; {rest}", first=part, rest=text)
    return text


def _rebuild(template: str, values: dict) -> Text:
    return Text(template, **values)
