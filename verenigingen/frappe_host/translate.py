"""The app's messages in the user's language. A Text of the frappe-free code is translated by its template
(the translation files hold the templates) and filled in with its values, each translated in turn; any
other message is Frappe's to translate as it is."""

from frappe import _

from verenigingen.text import Text, saved_text


def translated(message: str | None) -> str | None:
    if not isinstance(message, Text):
        return _(message) if message else message
    values = {key: translated(value) if isinstance(value, Text) else value for key, value in message.values.items()}
    return _(message.template).format(**values)


def reason_of(exc: Exception) -> str:
    """An exception's one-line reason, translated (its message may be a Text)."""
    return translated(exc.args[0]) if exc.args and isinstance(exc.args[0], str) else str(exc)


def stored_reason(english: str | None, text_json: str | dict | None) -> str | None:
    """A stored failure reason in the reader's language: by the template stored beside it, when there is one."""
    return translated(saved_text(english, text_json))
