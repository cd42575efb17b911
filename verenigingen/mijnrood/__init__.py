"""Read Mijnrood CSV exports into validated member records with per-row errors and warnings."""

from verenigingen.mijnrood.errors import ExportError
from verenigingen.mijnrood.reader import MijnroodExport
from verenigingen.mijnrood.rows import MEMBER_FIELDS, Problem, RowResult

__all__ = ["MEMBER_FIELDS", "ExportError", "MijnroodExport", "Problem", "RowResult"]
