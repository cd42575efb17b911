"""`verenigingen import` and friends as an administrator runs them: real processes, Redis and databases."""

import csv
import json
import math
import subprocess
import sys

import pytest
from sqlalchemy import select

from tests.accounts.conftest import ADMIN
from verenigingen.accounts.states import Roles, TrackerStatus
from verenigingen.mijnrood import MijnroodExport
from verenigingen.mijnrood.generator import generate_export
from verenigingen.standalone.schema import account_creation_requests, audit_log, bulk_operation_trackers, members


def cli(world, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "verenigingen.standalone.cli", *args]
    return subprocess.run(command, env=world.env, capture_output=True, text=True, timeout=timeout)


def eligible_in(path) -> int:
    return sum(1 for r in MijnroodExport(path) if r.valid and r.record["status"] == "Active" and r.record["email"])


def test_import_waits_creates_accounts_and_reports_as_documented(world, tmp_path):
    path = tmp_path / "leden.csv"
    generate_export(path, 101, seed=5, invalid_rate=0.1)
    done = cli(world, "import", str(path), "--wait", "--json", "--as", ADMIN)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    requested = eligible_in(path)
    assert set(report) == {
        "rows",
        "invalid_rows",
        "skipped_rows",
        "members_created",
        "members_updated",
        "members_unchanged",
        "accounts",
        "tracker",
        "rejected_rows_file",
    }
    assert (report["rows"], report["invalid_rows"], report["members_created"]) == (101, 10, 91)
    accounts = report["accounts"]
    assert {k: accounts[k] for k in ("requested", "created", "linked", "failed", "unsent")} == {
        "requested": requested,
        "created": requested,
        "linked": 0,
        "failed": 0,
        "unsent": 0,
    }
    assert sum(accounts["refused"].values()) == 91 - requested and accounts["refused_file"]  # see test_accounted
    tracker = report["tracker"]
    assert tracker["status"] == TrackerStatus.COMPLETED
    assert (tracker["total_records"], tracker["successful_records"]) == (requested, requested)
    assert (tracker["total_batches"], tracker["batch_size"]) == (math.ceil(requested / 50), 50)
    with open(report["rejected_rows_file"], encoding="utf-8-sig", newline="") as stream:
        rejected = list(csv.reader(stream, delimiter=";"))
    assert len(rejected) == 11 and rejected[0][:2] == ["Row", "Reason rejected"] and all(r[1] for r in rejected[1:])

    again = json.loads(cli(world, "import", str(path), "--wait", "--json", "--as", ADMIN).stdout)
    assert (again["members_created"], again["members_updated"], again["members_unchanged"]) == (0, 0, 91)
    assert again["accounts"]["requested"] == 0 and again["tracker"] is None
    with world.store.transaction(readonly=True):
        assert world.store.count(bulk_operation_trackers) == 1
        assert world.store.count(account_creation_requests) == requested


def test_a_fixed_rejected_rows_file_imports(world, tmp_path):
    path = tmp_path / "leden.csv"
    generate_export(path, 3, seed=8)
    rows = list(csv.reader(path.open(encoding="utf-8", newline=""), delimiter=";"))
    rows[2][11] = "0123 XX"  # Postcode
    with path.open("w", encoding="utf-8", newline="") as stream:
        csv.writer(stream, delimiter=";").writerows(rows)
    first = json.loads(cli(world, "import", str(path), "--no-accounts", "--json", "--as", ADMIN).stdout)
    assert (first["members_created"], first["invalid_rows"]) == (2, 1)
    rejected_path = first["rejected_rows_file"]
    with open(rejected_path, encoding="utf-8-sig", newline="") as stream:
        fixed = list(csv.reader(stream, delimiter=";"))
    fixed[1][2 + 11] = "1234 AB"  # after the row number and the reason
    with open(rejected_path, "w", encoding="utf-8-sig", newline="") as stream:
        csv.writer(stream, delimiter=";").writerows(fixed)
    second = json.loads(cli(world, "import", rejected_path, "--no-accounts", "--json", "--as", ADMIN).stdout)
    assert (second["members_created"], second["invalid_rows"]) == (1, 0)


def test_changed_rows_update_and_unchanged_rows_stay_unchanged(world, tmp_path):
    path = tmp_path / "leden.csv"
    generate_export(path, 20, seed=9)
    cli(world, "import", str(path), "--no-accounts", "--json", "--as", ADMIN)
    with world.store.transaction(readonly=True):
        before = dict(world.store.db.execute(select(members.c.member_id, members.c.modified)).all())
    rows = list(csv.reader(path.open(encoding="utf-8", newline=""), delimiter=";"))
    rows[1][10] = "Zwolle"  # Plaats of the first member
    with path.open("w", encoding="utf-8", newline="") as stream:
        csv.writer(stream, delimiter=";").writerows(rows)
    report = json.loads(cli(world, "import", str(path), "--no-accounts", "--json", "--as", ADMIN).stdout)
    assert (report["members_created"], report["members_updated"], report["members_unchanged"]) == (0, 1, 19)
    with world.store.transaction(readonly=True):
        after = dict(world.store.db.execute(select(members.c.member_id, members.c.modified)).all())
    assert [m for m in after if after[m] != before[m]] == [rows[1][0]]


@pytest.mark.parametrize("roles", [(), (Roles.MANAGER,)])
def test_a_non_administrator_cannot_import_and_nothing_is_written(world, tmp_path, roles):
    world.add_user("clerk@vereniging.test", "Clerk", *roles)
    path = tmp_path / "leden.csv"
    generate_export(path, 10, seed=1)
    done = cli(world, "import", str(path), "--json", "--as", "clerk@vereniging.test")
    assert done.returncode == 2 and done.stdout == ""
    assert "clerk@vereniging.test: not allowed to import members" in done.stderr and "Traceback" not in done.stderr
    with world.store.transaction(readonly=True):
        assert world.store.count(members) == 0


def test_an_unreadable_file_writes_nothing(world, tmp_path):
    path = tmp_path / "leden.csv"
    generate_export(path, 10, seed=1)
    path.write_bytes(path.read_bytes() + b'10999;"Jan' + b"x" * 200_000)  # a quote left open at the end
    done = cli(world, "import", str(path), "--json", "--as", ADMIN)
    assert done.returncode == 2 and "cannot be read as CSV" in done.stderr
    with world.store.transaction(readonly=True):
        assert world.store.count(members) == 0


def test_status_retry_and_approve(world, tmp_path):
    world.add_user("manager@vereniging.test", "Manager", Roles.MANAGER)
    path = tmp_path / "leden.csv"
    generate_export(path, 30, seed=2)
    cli(world, "import", str(path), "--no-accounts", "--json", "--as", ADMIN)
    with world.store.transaction(readonly=True):
        member_id = world.store.db.scalar(select(members.c.member_id).where(members.c.status == "Active").limit(1))
    approved = cli(world, "approve", member_id, "--as", "manager@vereniging.test")
    assert approved.returncode == 0 and approved.stdout.startswith("queued ACR-")
    world.run_burst(1)
    with world.store.transaction(readonly=True):
        user = world.store.db.scalar(select(members.c.user).where(members.c.member_id == member_id))
    assert user
    refused = cli(world, "approve", member_id, "--as", "manager@vereniging.test")
    assert refused.returncode == 2 and "already has a user account" in refused.stderr
    assert cli(world, "status").returncode == 2  # no bulk operation yet: said plainly
    imported = json.loads(cli(world, "import", str(path), "--wait", "--json", "--as", ADMIN).stdout)
    status = json.loads(cli(world, "status", "--json").stdout)
    assert status["name"] == imported["tracker"]["name"] and status["retry_queue"] == 0 and status["failed"] == []
    assert cli(world, "retry", "--as", ADMIN).stdout.strip() == "0 failed requests queued again"


def test_the_demo_runs_end_to_end(world):
    done = cli(world, "demo", "--members", "120", "--workers", "2")
    assert done.returncode == 0, done.stderr
    assert "120 rows:" in done.stdout and "Tracker BOT-" in done.stdout and ": Completed" in done.stdout


def test_no_personal_data_in_logs_errors_or_summaries(make_world, tmp_path):
    world = make_world(
        VERENIGINGEN_HOST_FACTORY="tests.accounts.faults:make_host",
        VERENIGINGEN_FAULTS="leaky:^[a-f];always_retry:^[g-h]",
    )
    path = tmp_path / "leden.csv"
    generate_export(path, 150, seed=12, invalid_rate=0.05)
    records = [r.record for r in MijnroodExport(path) if r.valid]
    raw_rows = list(csv.DictReader(path.open(encoding="utf-8", newline=""), delimiter=";"))
    secrets = {
        v for r in records for v in (r["iban"], r["birth_date"], r["phone"], r["address_line1"], r["postcode"]) if v
    }
    secrets |= {
        v for r in raw_rows for v in (r["IBAN"], r["Geboortedatum"], r["Telefoonnr."], r["Adres"]) if len(v) > 4
    }
    secrets |= {v for r in records for v in (r["email"], r["full_name"]) if v}  # members are named by id only
    log = tmp_path / "workers.log"
    world.start_workers(2, log=log)
    done = cli(world, "import", str(path), "--wait", "--json", "--as", ADMIN, timeout=300)
    report = json.loads(done.stdout)
    assert report["accounts"]["failed"] > 0  # there are failure reasons to inspect
    with world.store.transaction(readonly=True):
        db = world.store.db
        stored = [
            *db.scalars(select(audit_log.c.reason)),
            *db.scalars(select(bulk_operation_trackers.c.error_summary)),
            *db.scalars(select(account_creation_requests.c.failure_reason)),
        ]
    world.stop_workers()
    haystacks = {
        "worker log": log.read_text(errors="replace"),
        "cli stderr": done.stderr,
        "stored": "\n".join(filter(None, stored)),
    }
    for where, text in haystacks.items():
        leaked = sorted(secret for secret in secrets if secret in text)
        assert leaked == [], f"personal data in {where}: {len(leaked)} values"
