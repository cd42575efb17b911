"""A Mijnrood export, opened: detected format, header map, and a stream of validated rows."""

from collections.abc import Iterator
from datetime import date
from pathlib import Path

from verenigingen.mijnrood.columns import HeaderMap
from verenigingen.mijnrood.errors import ExportError
from verenigingen.mijnrood.rows import RowResult, is_blank, match_key, validate_row
from verenigingen.mijnrood.source import delimiter_name, detect_delimiter, detect_encoding, read_rows


class MijnroodExport:
    """Open an export once to learn its format; iterate it (as often as needed) for RowResults.

    Iteration streams: memory stays flat apart from the Lidnr. and e-mail keys kept to spot
    duplicates. A file that cannot be read at all raises :class:`ExportError`.
    """

    def __init__(self, path: str | Path, encoding: str | None = None, today: date | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise ExportError(f"no such file: {self.path}")
        self.encoding = detect_encoding(self.path, encoding)
        self.delimiter = detect_delimiter(self.path, self.encoding)
        self.today = today or date.today()
        rows = read_rows(self.path, self.encoding, self.delimiter)
        _, header_cells = next(rows)
        rows.close()
        self.header = HeaderMap.from_header(header_cells)
        self.header_cells = header_cells

    @property
    def description(self) -> str:
        encoding = (
            "UTF-8"
            if self.encoding.startswith("utf")
            else "Windows-1252"
            if self.encoding == "cp1252"
            else self.encoding
        )
        return f"{encoding}, {delimiter_name(self.delimiter)}-separated"

    def _member_rows(self) -> Iterator[tuple[int, list[str]]]:
        rows = read_rows(self.path, self.encoding, self.delimiter)
        next(rows)
        return ((number, cells) for number, cells in rows if not is_blank(cells))

    def __iter__(self) -> Iterator[RowResult]:
        """Validated rows in file order; a later row with an earlier row's Lidnr. or e-mail is a duplicate."""
        first_row_with: dict[str, dict[str, int]] = {"member_id": {}, "email": {}}
        short: tuple[int, int] | None = None  # (row, cells) of the last row with too few cells
        for number, cells in self._member_rows():
            result = validate_row(number, cells, self.header, self.today)
            if short and short[0] == number - 1 and short[1] + len(cells) - 1 == self.header.width:
                result.errors.clear()  # its cells sit in the wrong columns: any other finding is noise
                result.warnings.clear()
                result.error(
                    None,
                    "continued_row",
                    f"the rest of row {short[0]}, cut off by a line break inside a value without quotes; "
                    f"join the two rows into one",
                    None,
                )
            short = (number, len(cells)) if len(cells) < self.header.width else None
            for field, seen in first_row_with.items():
                value = result.values.get(field)
                if value is None:
                    continue
                key = match_key(value)
                if key in seen:
                    what = f"Lidnr. {value}" if field == "member_id" else "e-mail address"
                    result.error(
                        field,
                        "duplicate",
                        f"the same {what} as row {seen[key]}; if this is another person, give them their own",
                        value,
                    )
                else:
                    seen[key] = result.row
            yield result
