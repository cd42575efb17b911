"""generate -> validate round trips, at the sizes the bulk path cares about."""

import hashlib
from collections import Counter

import pytest

from tests.conftest import TODAY
from verenigingen.mijnrood import MijnroodExport
from verenigingen.mijnrood.generator import DEFECTS, generate_export
from verenigingen.mijnrood.summary import ValidationSummary


def summarise(path, **options) -> ValidationSummary:
    summary = ValidationSummary()
    for result in MijnroodExport(path, today=TODAY, **options):
        summary.add(result)
    return summary


@pytest.mark.parametrize("members", [0, 1, 49, 50, 51, 99, 101, 500, 4700])
def test_every_generated_member_is_valid(tmp_path, members):
    path = tmp_path / "export.csv"
    assert generate_export(path, members, seed=members) == 0
    summary = summarise(path)
    assert (summary.rows, summary.valid) == (members, members), summary.errors[:5]
    assert all(w.code in {"no_email", "under_16"} for w in summary.warnings)


@pytest.mark.parametrize(("members", "rate"), [(1, 1.0), (51, 0.5), (101, 0.1), (500, 0.2), (4700, 0.05)])
def test_broken_rows_are_exactly_the_rejected_rows(tmp_path, members, rate):
    path = tmp_path / "export.csv"
    broken = generate_export(path, members, seed=7, invalid_rate=rate)
    summary = summarise(path)
    assert broken == round(members * rate)
    assert (summary.rows, summary.invalid) == (members, broken)


def test_every_defect_kind_is_caught(tmp_path):
    path = tmp_path / "export.csv"
    generate_export(path, 3000, seed=3, invalid_rate=0.5)
    found = Counter(problem.code for problem in summarise(path).errors)
    for code in (
        "required",
        "invalid_postcode",
        "invalid_iban",
        "invalid_email",
        "invalid_date",
        "future_date",
        "invalid_country",
        "formula",
        "invalid_mollie_id",
        "invalid_amount",
        "invalid_member_id",
        "invalid_billing_frequency",
        "duplicate",
    ):
        assert found[code] > 0, code
    assert len(DEFECTS) == 15


def test_same_seed_same_file_and_another_seed_another_file(tmp_path):
    def digest(seed, name):
        generate_export(tmp_path / name, 300, seed=seed, invalid_rate=0.1)
        return hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()

    assert digest(5, "a.csv") == digest(5, "b.csv")
    assert digest(5, "a.csv") != digest(6, "c.csv")


@pytest.mark.parametrize(("encoding", "delimiter"), [("cp1252", ";"), ("utf-8-sig", ","), ("utf-8", "\t")])
def test_round_trip_in_every_supported_format(tmp_path, encoding, delimiter):
    path = tmp_path / "export.csv"
    generate_export(path, 400, seed=11, invalid_rate=0.1, encoding=encoding, delimiter=delimiter)
    export = MijnroodExport(path, today=TODAY)
    assert export.delimiter == delimiter
    summary = summarise(path)
    assert (summary.rows, summary.invalid) == (400, 40)


def test_generated_exports_look_real(tmp_path):
    path = tmp_path / "export.csv"
    generate_export(path, 1000, seed=2)
    records = [result.record for result in MijnroodExport(path, today=TODAY)]
    assert sum(r["tussenvoegsel"] is not None for r in records) > 50
    assert len({r["chapter"] for r in records}) > 3
    assert Counter(r["status"] for r in records).most_common(1)[0][0] == "Active"
    assert {r["billing_frequency"] for r in records} == {"Monthly", "Quarterly", "Semi-annually", "Annually"}
    assert all(r["phone"] is None or r["phone"].startswith("+316") for r in records)
    assert len({r["email"] for r in records if r["email"]}) == sum(1 for r in records if r["email"])
