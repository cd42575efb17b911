"""Why a whole file cannot be read as a Mijnrood export."""


class ExportError(Exception):
    """The file is not a readable Mijnrood export; the message is one line for the administrator."""
