"""Every member accounted for: after an import the operator sees, without a database query, why each member
did or did not get an account, what still waits, and what will not move by itself. Real CLI processes,
Redis, SQLite and MariaDB."""

import csv
import json
import stat
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from tests.accounts.conftest import ADMIN
from verenigingen.accounts.errors import RetryableError
from verenigingen.accounts.manager import AccountCreationManager
from verenigingen.accounts.ports import AuditEntry
from verenigingen.accounts.states import RequestStatus, Roles
from verenigingen.accounts.trackers import REQUEST
from verenigingen.standalone.schema import account_creation_requests
from verenigingen.standalone.worker import bulk_workers_listening

HEADER = ["Lidnr.", "Voornaam", "Achternaam", "E-mailadres", "Lidmaatschapstype"]
# Lidnr., first name, last name, e-mail, membership: one member for every way to get (or not get) an account.
ROWS = [
    ["1001", "Anna", "Boom", "anna@example.nl", "lid"],  # requested
    ["1002", "Bert", "Veld", "", "lid"],  # no e-mail
    ["1003", "Cees", "Dijk", "cees@example.nl", "opgezegd"],  # a status that gets no account
    ["1004", "Dirk", "Berg", "dirk@example.nl", "lid"],  # e-mail of another user
    ["1005", "Eva", "Smit", "eva@example.nl", "aspirant"],  # linked to the user of her e-mail
    ["1006", "Fien", "Laan", "fien@example.nl", "geroyeerd"],  # a status that gets no account
]
NO_WORKER = "no worker is listening: start one with `verenigingen worker`"
REDIS_DOWN = "redis://127.0.0.1:1/0"  # nothing listens there


def cli(world, *args: str, timeout: float = 180, **env: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "verenigingen.standalone.cli", *args]
    return subprocess.run(command, env={**world.env, **env}, capture_output=True, text=True, timeout=timeout)


def write_export(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as stream:
        csv.writer(stream, delimiter=";").writerows([HEADER, *rows])
    return path


def members_file(world, tmp_path: Path) -> Path:
    world.add_user("dirk@example.nl", "Iemand Anders")  # another person has Dirk's address
    world.add_user("eva@example.nl", "Eva Smit")  # Eva herself, without a member yet
    return write_export(tmp_path / "leden.csv", ROWS)


def requests_of(world) -> list[str]:
    with world.store.transaction(readonly=True):
        return list(
            world.store.db.scalars(
                account_creation_requests.select().with_only_columns(account_creation_requests.c.name)
            )
        )


def test_an_import_reports_and_writes_down_every_member_without_a_request(world, tmp_path):
    path = members_file(world, tmp_path)
    done = cli(world, "import", str(path), "--json", "--as", ADMIN)
    assert done.returncode == 0, done.stderr
    accounts = json.loads(done.stdout)["accounts"]
    assert (accounts["requested"], accounts["linked"]) == (1, 1)  # Eva is linked, not refused
    assert accounts["refused"] == {"not_eligible": 2, "no_email": 1, "email_taken": 1}
    refused_file = Path(accounts["refused_file"])
    assert refused_file.parent == world.shost.environment.home / "rejected" and "IMP-" in refused_file.name
    assert stat.S_IMODE(refused_file.stat().st_mode) == 0o600
    text = refused_file.read_text(encoding="utf-8-sig")
    lines = list(csv.reader(text.splitlines(), delimiter=";"))
    assert lines[0] == ["Lidnr.", "member", "code", "reason"]
    assert sorted((line[0], line[2]) for line in lines[1:]) == [
        ("1002", "no_email"),
        ("1003", "not_eligible"),
        ("1004", "email_taken"),
        ("1006", "not_eligible"),
    ]
    assert all(line[1].startswith("MEM-") and line[3] for line in lines[1:])
    assert not any(value in text for row in ROWS for value in row[1:4] if value)  # no names, no e-mail

    again = cli(world, "import", str(path), "--as", ADMIN)
    assert again.returncode == 0, again.stderr
    (line,) = [line for line in again.stdout.splitlines() if line.startswith("Not requested: ")]
    assert line.startswith("Not requested: 2 with a status that gets no account, ")  # the most frequent first
    assert sorted(line.removeprefix("Not requested: ").split(", ")) == [
        "1 whose e-mail address belongs to another user",
        "1 with an account already",  # Eva, linked by the first import
        "1 with an account request still open",  # Anna: no worker ran it yet
        "1 without e-mail",
        "2 with a status that gets no account",
    ]
    assert "Members not requested, with the reason: " in again.stdout

    no_accounts = json.loads(cli(world, "import", str(path), "--no-accounts", "--json", "--as", ADMIN).stdout)
    assert (no_accounts["accounts"]["refused"], no_accounts["accounts"]["refused_file"]) == ({}, None)


def test_status_shows_one_request_and_waiting_lists_what_is_open(make_world, tmp_path):
    world = make_world(VERENIGINGEN_RETRY_BACKOFF="600,600,600")
    path = write_export(tmp_path / "leden.csv", [ROWS[0], ["1007", "Gijs", "Hof", "gijs@example.nl", "lid"]])
    imported = json.loads(cli(world, "import", str(path), "--json", "--as", ADMIN).stdout)
    tracker = imported["tracker"]["name"]
    first, second = sorted(requests_of(world))

    now = world.host.clock()
    with world.store.transaction():  # a worker took it up and lost its database connection
        claimed = world.store.claim_request(first, "test-worker", now, now + timedelta(seconds=60))
        world.store.add_audit(
            [AuditEntry(REQUEST, first, RequestStatus.QUEUED, RequestStatus.PROCESSING, ADMIN, "picked up")], now
        )
    assert claimed is not None
    lost = RetryableError("database: connection lost")
    assert AccountCreationManager(world.host).record_failure(claimed, lost, owner="test-worker") == "retry"

    shown = json.loads(cli(world, "status", first, "--json").stdout)
    assert shown["status"] == RequestStatus.QUEUED and shown["tracker"] == tracker and shown["batch"] == 1
    assert shown["member_id"] in ("1001", "1007") and shown["member"].startswith("MEM-")
    assert (shown["attempts"], shown["retries"], shown["max_retries"]) == (1, 1, 3)
    assert (shown["error_category"], shown["failure_reason"]) == ("retryable", "database: connection lost")
    next_retry = shown["next_retry_at"]
    assert next_retry and 590 <= (_parse(next_retry) - now).total_seconds() <= 610
    text = cli(world, "status", first).stdout
    assert f"next retry due at {next_retry} UTC" in text and "database: connection lost" in text
    assert json.loads(cli(world, "status", second, "--json").stdout)["attempts"] == 0
    unknown = cli(world, "status", "ACR-000000000000")
    assert unknown.returncode == 2 and "no account request ACR-000000000000" in unknown.stderr

    world.add_user("manager@vereniging.test", "Manager", Roles.MANAGER)
    (solo,) = world.add_members(1, prefix="solo")
    assert cli(world, "approve", solo, "--as", "manager@vereniging.test").returncode == 0
    waiting = json.loads(cli(world, "waiting", "--json").stdout)
    individual, bulk = waiting["waiting"]
    assert individual == {
        "tracker": None,
        "status": None,
        "open": 1,
        "requested": 0,
        "due": 1,
        "retry": 0,
        "processing": 0,
        "abandoned": 0,
        "next_retry_at": None,
    }
    assert (bulk["tracker"], bulk["status"], bulk["open"], bulk["due"], bulk["retry"]) == (tracker, "Queued", 2, 1, 1)
    assert bulk["next_retry_at"] == next_retry and waiting["unsent"] == 0  # every job is in Redis
    listed = cli(world, "waiting").stdout
    assert f"bulk operation {tracker} (Queued): 2 open: 1 due now, 1 waiting to retry" in listed
    assert "individual requests: 1 open: 1 due now" in listed

    world.run_burst(1)  # the due ones are done; the retry waits
    after = json.loads(cli(world, "waiting", "--json").stdout)["waiting"]
    assert [(w["tracker"], w["open"], w["retry"]) for w in after] == [(tracker, 1, 1)]


def _parse(moment: str):
    from datetime import datetime

    return datetime.fromisoformat(moment)


def test_import_and_approve_say_when_no_worker_listens(world, tmp_path):
    world.add_user("manager@vereniging.test", "Manager", Roles.MANAGER)
    first = write_export(tmp_path / "een.csv", ROWS[:1])
    imported = cli(world, "import", str(first), "--as", ADMIN)
    assert imported.returncode == 0 and f"{NO_WORKER} (or use `import --wait`)" in imported.stderr
    (solo,) = world.add_members(1, prefix="solo")
    approved = cli(world, "approve", solo, "--as", "manager@vereniging.test")
    assert approved.returncode == 0 and NO_WORKER in approved.stderr

    world.start_workers(1)
    world.wait_until(lambda: bulk_workers_listening(world.shost) > 0, timeout=60)
    second = write_export(tmp_path / "twee.csv", [["1007", "Gijs", "Hof", "gijs@example.nl", "lid"]])
    imported = cli(world, "import", str(second), "--as", ADMIN)
    assert imported.returncode == 0 and "no worker" not in imported.stderr
    (other,) = world.add_members(1, prefix="other")
    approved = cli(world, "approve", other, "--as", "manager@vereniging.test")
    assert approved.returncode == 0 and "no worker" not in approved.stderr
    nothing = cli(world, "import", str(second), "--as", ADMIN)  # nothing requested: nothing to warn about
    assert nothing.returncode == 0 and "no worker" not in nothing.stderr


def test_requests_queued_while_redis_was_down_are_named_with_the_sweep_to_run(world, tmp_path):
    path = members_file(world, tmp_path)
    down = cli(world, "import", str(path), "--as", ADMIN, VERENIGINGEN_REDIS=REDIS_DOWN)
    assert down.returncode == 0, down.stderr
    assert "Accounts: 1 requested" in down.stdout
    assert "1 account request is waiting to be sent to the workers, but Redis cannot be reached" in down.stdout

    again = json.loads(cli(world, "import", str(path), "--json", "--as", ADMIN).stdout)
    assert again["accounts"]["requested"] == 0 and again["accounts"]["unsent"] == 1
    assert again["accounts"]["refused"]["open_request"] == 1
    said = (
        "1 account request is waiting to be sent to the workers: run `verenigingen sweep` (a worker sweeps every 2 s)"
    )
    assert said in cli(world, "import", str(path), "--as", ADMIN).stdout
    with world.store.transaction(readonly=True):
        tracker = world.store.latest_tracker()
    assert said in cli(world, "status", tracker).stdout
    assert json.loads(cli(world, "status", tracker, "--json").stdout)["unsent"] == 1
    assert json.loads(cli(world, "waiting", "--json").stdout)["unsent"] == 1

    assert json.loads(cli(world, "sweep").stdout)["enqueued_batches"] == 1
    assert json.loads(cli(world, "status", tracker, "--json").stdout)["unsent"] == 0  # its job is in Redis now
    assert "waiting to be sent" not in cli(world, "import", str(path), "--as", ADMIN).stdout


def test_batches_waiting_for_a_batch_slot_are_not_called_unsent(make_world, tmp_path):
    world = make_world(VERENIGINGEN_BATCH_SIZE="2", VERENIGINGEN_MAX_CONCURRENT_BATCHES="2")
    rows = [[str(2000 + i), "Lid", f"Van {name}", f"lid{i}@example.nl", "lid"] for i, name in enumerate("ABCDEFGHIJ")]
    imported = json.loads(
        cli(world, "import", str(write_export(tmp_path / "leden.csv", rows)), "--json", "--as", ADMIN).stdout
    )
    assert imported["tracker"]["total_batches"] == 5 and imported["accounts"]["unsent"] == 0
    assert json.loads(cli(world, "status", "--json").stdout)["unsent"] == 0
    world.redis.flushdb()  # Redis lost its jobs (the test's own database): now nothing hands the batches on
    assert json.loads(cli(world, "status", "--json").stdout)["unsent"] == 10
