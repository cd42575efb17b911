"""The one exception the validators raise."""


class InvalidValue(ValueError):
    """A value that cannot be accepted; ``code`` is stable for machines, ``message`` is for people."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message
