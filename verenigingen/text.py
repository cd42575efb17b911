"""Messages that keep their template and values, so that a host that speaks the user's language (the Frappe
app, through its translation files) can say them in Dutch; everywhere else they are the plain English
string they are equal to."""


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


def _rebuild(template: str, values: dict) -> Text:
    return Text(template, **values)
