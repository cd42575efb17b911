"""Verenigingen: membership administration for Dutch associations."""

__version__ = "0.1.0"
