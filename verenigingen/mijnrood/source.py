"""Turn an export file into rows of text: encoding, delimiter and CSV quoting.

Encoding detection never guesses: a file that decodes as UTF-8 from start to end is UTF-8
(with or without BOM); anything else must decode as Windows-1252 or the file is refused.
"""

import codecs
import csv
from collections.abc import Iterator
from pathlib import Path

from verenigingen.mijnrood.columns import recognised_count
from verenigingen.mijnrood.errors import ExportError
from verenigingen.text import Text

DELIMITERS = (";", ",", "\t")
_CHUNK = 1 << 20
_UNSUPPORTED_BOMS = {
    codecs.BOM_UTF32_LE: "UTF-32",
    codecs.BOM_UTF32_BE: "UTF-32",
    codecs.BOM_UTF16_LE: "UTF-16",
    codecs.BOM_UTF16_BE: "UTF-16",
}
_DELIMITER_NAMES = {";": "semicolon", ",": "comma", "\t": "tab"}


def delimiter_name(delimiter: str) -> str:
    return _DELIMITER_NAMES[delimiter]


def _first_undecodable(path: Path, encoding: str) -> int | None:
    """Byte offset of the first byte ``encoding`` cannot decode, or None; reads in chunks."""
    decoder = codecs.getincrementaldecoder(encoding)()
    offset = 0
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            if b"\0" in chunk:
                raise ExportError(Text("not a text file: it contains NUL bytes"))
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                return offset + exc.start
            offset += len(chunk)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            return offset + exc.start
    return None


def _line_of(path: Path, offset: int) -> int:
    with path.open("rb") as stream:
        return stream.read(offset).count(b"\n") + 1


def detect_encoding(path: Path, encoding: str | None = None) -> str:
    """Return the codec to read ``path`` with, or raise ExportError saying why it cannot be read."""
    with path.open("rb") as stream:
        head = stream.read(4)
    for bom, name in _UNSUPPORTED_BOMS.items():
        if head.startswith(bom) and not head.startswith(codecs.BOM_UTF8):
            raise ExportError(Text("the file is {name}; save it as UTF-8 or Windows-1252 CSV", name=name))
    if encoding is not None:
        try:
            info = codecs.lookup(encoding)
        except LookupError:
            raise ExportError(Text("unknown encoding {encoding!r}", encoding=encoding)) from None
        if not getattr(info, "_is_text_encoding", True):  # rot13, base64, zlib: codecs, not text encodings
            raise ExportError(Text("{encoding!r} is not a text encoding (use utf-8 or cp1252)", encoding=encoding))
        candidates = ["utf-8-sig" if info.name == "utf-8" else info.name]
    else:
        candidates = ["utf-8-sig", "cp1252"]
    for candidate in candidates:
        try:
            bad = _first_undecodable(path, candidate)
        except UnicodeError as exc:  # UTF-16 without its BOM: the decoder refuses the whole file
            raise ExportError(
                Text("the file cannot be read as {encoding} ({reason})", encoding=encoding, reason=str(exc))
            ) from None
        if bad is None:
            return candidate
    if encoding is not None:
        raise ExportError(
            Text(
                "line {line} is not valid {encoding} text (byte {byte})",
                line=_line_of(path, bad),
                encoding=encoding,
                byte=bad,
            )
        )
    raise ExportError(
        Text(
            "not text in a supported encoding (UTF-8 or Windows-1252): line {line} has a byte neither can decode",
            line=_line_of(path, bad),
        )
    )


def detect_delimiter(path: Path, encoding: str) -> str:
    """The delimiter under which the first line names the most Mijnrood columns."""
    with path.open(encoding=encoding, newline="") as stream:
        first_line = stream.readline()
    if not first_line.strip():
        raise ExportError(
            Text("no header: the first line of the file is empty") if first_line else Text("the file is empty")
        )
    scores, problem = {}, None
    for delimiter in DELIMITERS:
        try:
            scores[delimiter] = recognised_count(next(csv.reader([first_line], delimiter=delimiter)))
        except csv.Error as exc:  # a cell over the CSV field limit: not this delimiter, or no header at all
            scores[delimiter], problem = -1, exc
    if problem is not None and max(scores.values()) < 0:
        raise ExportError(Text("row 1 (the header) cannot be read as CSV ({reason})", reason=str(problem)))
    best = max(DELIMITERS, key=lambda d: (scores[d], first_line.count(d)))
    if scores[best] == 0:
        raise ExportError(
            Text("no header: the first line names none of the Mijnrood columns (Voornaam, Achternaam, ...)")
        )
    return best


def read_rows(path: Path, encoding: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """Yield (spreadsheet row number, cells); the header is row 1 and quoted newlines stay in their cell."""
    with path.open(encoding=encoding, newline="") as stream:
        reader = csv.reader(stream, delimiter=delimiter, strict=False)
        number = 0
        try:
            for number, cells in enumerate(reader, start=1):
                yield number, cells
        except csv.Error as exc:
            raise ExportError(
                Text(
                    "row {row} cannot be read as CSV ({reason}); is a quote left open?", row=number + 1, reason=str(exc)
                )
            ) from None
