"""A Mijnrood export, opened: detected format, header map, and a stream of validated rows."""

from collections.abc import Iterator, Mapping
from datetime import date
from pathlib import Path

from verenigingen.mijnrood.columns import HeaderMap
from verenigingen.mijnrood.errors import ExportError
from verenigingen.mijnrood.rows import Problem, RowResult, is_blank, match_key, only_markers, validate_row
from verenigingen.mijnrood.source import delimiter_name, detect_delimiter, detect_encoding, read_rows
from verenigingen.text import Text


class MijnroodExport:
    """Open an export once to learn its format; iterate it (as often as needed) for RowResults.

    Iteration streams: memory stays flat apart from the Lidnr. and e-mail keys kept to spot
    duplicates. A file that cannot be read at all raises :class:`ExportError`.
    """

    def __init__(
        self,
        path: str | Path,
        encoding: str | None = None,
        today: date | None = None,
        membership_types: Mapping[str, str] | None = None,
    ):
        """``membership_types``: the association's own membership names and their status ({'Erelid': 'Active'})."""
        self.path = Path(path)
        if not self.path.is_file():
            raise ExportError(Text("no such file: {path}", path=str(self.path)))
        self.encoding = detect_encoding(self.path, encoding)
        self.delimiter = detect_delimiter(self.path, self.encoding)
        self.today = today or date.today()
        rows = read_rows(self.path, self.encoding, self.delimiter)
        _, header_cells = next(rows)
        rows.close()
        self.header = HeaderMap.from_header(header_cells)
        self.header_cells = header_cells
        self.membership_types = dict(membership_types or {})
        self.file_warnings: list[Problem] = []
        if "membership_type" not in self.header.positions:
            self.file_warnings.append(
                Problem(
                    1,
                    "membership_type",
                    "no_status_column",
                    Text(
                        "the file has no Lidmaatschapstype column: the members are imported without a status, so "
                        "nobody gets an account until a status is known"
                    ),
                    None,
                )
            )

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
            if only_markers(cells):
                result = RowResult(number, cells)
                nobody = Text("only empty markers (such as - or n.v.t.): nobody's row")
                result.skip(None, "empty_row", nobody, None)
                yield result
                continue
            result = validate_row(number, cells, self.header, self.today, self.membership_types)
            if result.skipped:
                short = None
                yield result  # never a duplicate of the member's own row, nor the first of its keys
                continue
            if short and short[0] == number - 1 and short[1] + len(cells) - 1 == self.header.width:
                result.errors.clear()  # its cells sit in the wrong columns: any other finding is noise
                result.warnings.clear()
                result.error(
                    None,
                    "continued_row",
                    Text(
                        "the rest of row {row}, cut off by a line break inside a value without quotes; join the two "
                        "rows into one",
                        row=short[0],
                    ),
                    None,
                )
            short = (number, len(cells)) if len(cells) < self.header.width else None
            for field, seen in first_row_with.items():
                value = result.values.get(field)
                if value is None:
                    continue
                key = match_key(value)
                if key in seen:
                    if field == "member_id":
                        same = Text(
                            "the same Lidnr. {value} as row {row}; if this is another person, give them their own",
                            value=value,
                            row=seen[key],
                        )
                    else:
                        same = Text(
                            "the same e-mail address as row {row}; if this is another person, give them their own",
                            row=seen[key],
                        )
                    result.error(field, "duplicate", same, value)
                else:
                    seen[key] = result.row
            yield result
