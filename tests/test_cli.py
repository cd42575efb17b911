"""The command line as an administrator (or a script) uses it: real processes, real files."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import member_row

EXPECTED_KEYS = {"rows", "valid", "invalid", "errors", "warnings", "records"}


def run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "verenigingen.standalone.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_validate_json_is_exactly_one_object_with_the_documented_shape(export_file):
    path = export_file([member_row(), member_row(**{"Lidnr.": "1002", "Postcode": "0123 AB", "E-mailadres": ""})])
    done = run("validate", str(path), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert set(report) >= EXPECTED_KEYS
    assert (report["rows"], report["valid"], report["invalid"]) == (2, 1, 1)
    assert report["errors"] == [
        {
            "row": 3,
            "field": "postcode",
            "code": "invalid_postcode",
            "message": report["errors"][0]["message"],
            "value": "0123 AB",
        }
    ]
    assert [(w["row"], w["field"], w["code"]) for w in report["warnings"]] == [(3, "email", "no_email")]
    (record,) = report["records"]
    assert record["row"] == 2 and record["full_name"] == "Anna ten Boom" and record["dues_amount"] == 12.5


def test_validate_json_of_a_generated_export(tmp_path):
    path = tmp_path / "g.csv"
    assert run("generate", "--members", "500", "--seed", "4", "--invalid-rate", "0.1", "-o", str(path)).returncode == 0
    report = json.loads(run("validate", str(path), "--json").stdout)
    assert (report["rows"], report["valid"], report["invalid"]) == (500, 450, 50)
    assert len(report["records"]) == 450
    assert {e["row"] for e in report["errors"]} == set(range(2, 502)) - {r["row"] for r in report["records"]}


def test_validate_report_on_a_terminal_names_rows_fields_and_values(export_file):
    path = export_file([member_row(), member_row(**{"Lidnr.": "1002", "Postcode": "0123 AB"})])
    done = run("validate", str(path))
    assert done.returncode == 0
    assert "2 rows: 1 valid, 1 rejected" in done.stdout
    assert "postcode" in done.stdout and "'0123 AB'" in done.stdout and "Dutch postcode" in done.stdout


def test_values_cannot_inject_terminal_markup(export_file):
    path = export_file([member_row(Voornaam="[bold]Anna[/bold]3")])
    done = run("validate", str(path))
    assert "'[bold]Anna[/bold]3'" in done.stdout


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"\x00\x01\x02", "not a text file"),
        (b"Lidnr.;Voornaam\n1;Jan\n", "required column 'Achternaam' is missing"),
        (b"foo;bar\n1;2\n", "no header"),
    ],
)
def test_unreadable_exports_exit_2_with_one_line_and_no_traceback(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    for extra in ([], ["--json"]):
        done = run("validate", str(path), *extra)
        assert done.returncode == 2
        assert done.stdout == ""
        assert done.stderr.count("\n") == 1 and message in done.stderr
        assert "Traceback" not in done.stderr


def test_a_missing_file_exits_2(tmp_path):
    done = run("validate", str(tmp_path / "nope.csv"), "--json")
    assert (done.returncode, done.stdout) == (2, "")
    assert "no such file" in done.stderr and done.stderr.count("\n") == 1


def test_an_unreadable_file_exits_2(tmp_path, export_file):
    path = export_file([member_row()])
    path.chmod(0)
    if os.access(path, os.R_OK):  # root reads anything: use a directory with the file's name instead
        path = tmp_path / "dir.csv"
        path.mkdir()
    done = run("validate", str(path))
    assert done.returncode == 2 and done.stderr.count("\n") == 1


def test_explicit_encoding_option(export_file):
    path = export_file([member_row(Voornaam="Zoë")], encoding="cp1252")
    assert (
        json.loads(run("validate", str(path), "--json", "--encoding", "cp1252").stdout)["records"][0]["first_name"]
        == "Zoë"
    )
    done = run("validate", str(path), "--encoding", "utf-8")
    assert done.returncode == 2 and "not valid utf-8" in done.stderr


def test_generate_is_deterministic_and_reports_what_it_broke(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    first = run("generate", "--members", "120", "--seed", "9", "--invalid-rate", "0.25", "-o", str(a))
    run("generate", "--members", "120", "--seed", "9", "--invalid-rate", "0.25", "-o", str(b))
    assert a.read_bytes() == b.read_bytes()
    assert "Wrote 120 members (30 broken on purpose)" in first.stderr


def test_generate_rejects_a_rate_above_one(tmp_path):
    done = run("generate", "--members", "5", "--invalid-rate", "1.5", "-o", str(tmp_path / "x.csv"))
    assert done.returncode == 2 and "1.5" in done.stderr
