"""Normalise and validate Dutch member data: names, e-mail, dates, address, bank, phone, membership.

Every function takes a non-empty, trimmed string and returns the normalised value, or raises
:class:`InvalidValue` with a machine code and a message fit for an administrator.
"""

from verenigingen.dutch.errors import InvalidValue

__all__ = ["InvalidValue"]
