"""Whatever the bytes, the reader ends in a report or a clear ExportError, and memory stays flat."""

import csv
import io
import tracemalloc

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import TODAY, VALID_ROW
from verenigingen.mijnrood import ExportError, MijnroodExport
from verenigingen.mijnrood.columns import HeaderMap
from verenigingen.mijnrood.generator import HEADER, generate_export
from verenigingen.mijnrood.rows import is_empty_marker

_POSITIONS = HeaderMap.from_header(list(VALID_ROW)).positions
HEADER_FIELDS = [next((f for f, i in _POSITIONS.items() if i == index), None) for index in range(len(VALID_ROW))]

_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def read_all(path) -> list:
    try:
        return list(MijnroodExport(path, today=TODAY))
    except ExportError as exc:
        assert str(exc) and "\n" not in str(exc)
        return []


@_SETTINGS
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_crash_the_reader(tmp_path, content):
    path = tmp_path / "x.csv"
    path.write_bytes(content)
    read_all(path)


@_SETTINGS
@given(st.binary(max_size=600))
def test_arbitrary_bytes_after_a_real_header_never_crash_the_reader(tmp_path, content):
    path = tmp_path / "x.csv"
    path.write_bytes(";".join(HEADER).encode() + b"\r\n" + content)
    for result in read_all(path):
        assert result.valid == (result.record is not None)
        for problem in result.errors + result.warnings:
            assert problem.row == result.row and problem.message


_CELL = st.one_of(
    st.text(max_size=30), st.sampled_from(["-", "nb", "=1", "06-123", "31-02-1990", "NL91ABNA0417164300"])
)


@_SETTINGS
@given(st.lists(st.lists(_CELL, max_size=len(HEADER) + 2), max_size=8))
def test_arbitrary_rows_end_in_a_report_that_accounts_for_every_row(tmp_path, rows):
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";")
    writer.writerow(VALID_ROW)
    writer.writerows(rows)
    path = tmp_path / "x.csv"
    path.write_text(buffer.getvalue(), encoding="utf-8")
    results = read_all(path)
    for result in results:
        # Exactly one of: valid, rejected with errors, deliberately skipped with a reason.
        assert [result.valid, bool(result.errors), result.skipped is not None].count(True) == 1
        if result.valid:
            for name, cell in zip(HEADER_FIELDS, result.cells, strict=False):
                if name and not is_empty_marker(cell):  # a value given is kept, or a warning says why not
                    assert result.values[name] is not None or any(w.field == name for w in result.warnings)


def test_reading_streams_with_flat_memory(tmp_path):
    def peak_while_reading(members: int) -> int:
        path = tmp_path / f"{members}.csv"
        generate_export(path, members, seed=1)
        tracemalloc.start()
        for _ in MijnroodExport(path, today=TODAY):
            pass
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return peak

    small, large = peak_while_reading(2_000), peak_while_reading(20_000)
    # Ten times the rows: only the duplicate-detection keys grow (about 200 bytes a row).
    assert large - small < 18_000 * 400, (small, large)
