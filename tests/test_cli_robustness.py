"""The command line never shows a traceback and never leaves processes behind: real processes, files,
databases and Redis; the embedded Redis of a data folder, one per folder."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from redis import Redis
from rq import Worker
from sqlalchemy import create_engine, func, select

from tests.accounts.conftest import REDIS_URL, db_url  # noqa: F401 - db_url is a fixture
from tests.conftest import member_row
from verenigingen.mijnrood.generator import generate_export
from verenigingen.standalone.schema import account_creation_requests, members

UNREACHABLE_REDIS = "redis://:s3cr3t@127.0.0.1:1/0"


def run(*args: str, env: dict | None = None, cwd: Path | None = None, timeout: float = 120):
    """The CLI in a process of its own, with the environment given on top of a clean one."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("VERENIGINGEN_")}
    command = [sys.executable, "-m", "verenigingen.standalone.cli", *args]
    full_env = {**base, "COLUMNS": "200", "NO_COLOR": "1", **(env or {})}
    return subprocess.run(command, capture_output=True, text=True, env=full_env, cwd=cwd, timeout=timeout)


def one_line(done: subprocess.CompletedProcess, *fragments: str) -> str:
    """Exit 2, exactly one ``verenigingen: ...`` line on stderr, no traceback; the line."""
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("verenigingen: "), done.stderr[-2000:]
    for fragment in fragments:
        assert fragment in done.stderr, done.stderr
    return done.stderr


@pytest.mark.parametrize("encoding", ["rot13", "base64", "zlib", "hex"])
def test_codecs_that_are_not_text_encodings_are_refused(export_file, encoding):
    path = export_file([member_row()])
    one_line(run("validate", str(path), "--encoding", encoding), f"'{encoding}' is not a text encoding")


def test_utf16_on_a_utf8_file_says_it_cannot_be_read_as_utf16(export_file):
    path = export_file([member_row()])
    one_line(run("validate", str(path), "--json", "--encoding", "utf-16"), "cannot be read as utf-16")


@pytest.mark.parametrize("size", [200_000, 50_000_000], ids=["header-cell-over-the-limit", "one-50MB-line"])
@pytest.mark.parametrize("command", ["validate", "import"])
def test_a_header_cell_over_the_csv_field_limit_names_the_row(tmp_path, size, command):
    path = tmp_path / "huge.csv"
    path.write_bytes(b"Voornaam;Achternaam;" + b"x" * size)  # no line break at all
    extra = ["--no-accounts"] if command == "import" else []
    done = run(command, str(path), *extra, env={"VERENIGINGEN_HOME": str(tmp_path / "home")})
    one_line(done, "row 1 (the header) cannot be read as CSV", "field larger than field limit")


def test_a_reader_that_goes_away_is_not_an_unreadable_file(tmp_path):
    path = tmp_path / "big.csv"
    generate_export(path, 5000, seed=3)
    command = [sys.executable, "-m", "verenigingen.standalone.cli", "validate", "--json", str(path)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.read(10) == b'{"rows": 5'  # like `| head -c 10`
    process.stdout.close()
    process.wait(timeout=120)
    assert process.stderr.read() == b""
    assert process.returncode != 2


@pytest.mark.parametrize("command", [["validate"], ["import", "--no-accounts"]])
def test_a_directory_given_as_the_file_is_called_a_directory(tmp_path, command):
    folder = tmp_path / "leden.csv"
    folder.mkdir()
    done = run(command[0], str(folder), *command[1:], env={"VERENIGINGEN_HOME": str(tmp_path / "home")})
    assert "no such file" not in one_line(done, "is a directory")


def test_generate_into_a_missing_folder(tmp_path):
    one_line(run("generate", "--members", "3", "-o", str(tmp_path / "missing" / "x.csv")), "no folder")


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("sqlite:////missing/dir/x.sqlite3", "the database sqlite:////missing/dir/x.sqlite3 cannot be used"),
        ("nonsense://", "SQLAlchemy does not know: nonsense"),
        ("::not a url", "VERENIGINGEN_DB is not a database URL"),
        ("mysql+pymysql://root:s3cr3t@127.0.0.1:3306/x", "mysql+pymysql://root:***@127.0.0.1:3306/x cannot be used"),
        ("mysql+pymysql://root@127.0.0.1:1/x", "Can't connect to MySQL server"),
    ],
    ids=["sqlite-missing-folder", "unknown-kind", "not-a-url", "mariadb-wrong-password", "mariadb-closed-port"],
)
@pytest.mark.parametrize("command", [["migrate"], ["status"], ["import", "FILE", "--no-accounts"], ["worker"]])
def test_a_database_that_cannot_be_used_is_one_line(tmp_path, export_file, url, said, command):
    args = [str(export_file([member_row()])) if arg == "FILE" else arg for arg in command]
    env = {"VERENIGINGEN_HOME": str(tmp_path / "home"), "VERENIGINGEN_DB": url, "VERENIGINGEN_REDIS": REDIS_URL}
    (tmp_path / "home").mkdir()
    assert "s3cr3t" not in one_line(run(*args, env=env), said)


@pytest.mark.parametrize("command", [["migrate"], ["status"], ["import", "FILE", "--no-accounts"], ["stop"]])
def test_a_data_folder_that_is_a_file(tmp_path, export_file, command):
    home = tmp_path / "home"
    home.write_text("not a folder")
    args = [str(export_file([member_row()])) if arg == "FILE" else arg for arg in command]
    one_line(run(*args, env={"VERENIGINGEN_HOME": str(home)}), f"the data folder {home} is a file")


@pytest.mark.parametrize("command", [["status"], ["retry"], ["sweep"], ["approve", "1001"], ["stop"]])
def test_commands_on_existing_data_never_create_a_data_folder(tmp_path, export_file, command):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = run(*command, cwd=elsewhere)  # VERENIGINGEN_HOME unset: ./.verenigingen
    one_line(done, f"no data folder at {elsewhere / '.verenigingen'}: run `verenigingen import FILE` first")
    assert not (elsewhere / ".verenigingen").exists()
    imported = run("import", str(export_file([member_row()])), "--no-accounts", cwd=elsewhere)
    assert imported.returncode == 0, imported.stderr  # an import creates it, as before
    assert (elsewhere / ".verenigingen" / "verenigingen.sqlite3").exists()


def _requests_in(url: str) -> tuple[int, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            count = connection.scalar(select(func.count()).select_from(members))
            return count, connection.scalar(select(func.count()).select_from(account_creation_requests))
    finally:
        engine.dispose()


def test_import_wait_with_redis_out_of_reach_says_what_was_saved(tmp_path, db_url):  # noqa: F811
    path = tmp_path / "leden.csv"
    generate_export(path, 30, seed=4)
    env = {
        "VERENIGINGEN_HOME": str(tmp_path / "home"),
        "VERENIGINGEN_DB": db_url,
        "VERENIGINGEN_REDIS": UNREACHABLE_REDIS,
    }
    done = run("import", str(path), "--wait", "--json", env=env)
    imported, requested = _requests_in(db_url)
    line = one_line(
        done,
        "Redis at redis://:***@127.0.0.1:1/0 cannot be reached",
        f"the members were imported and {requested} account requests were saved; they are sent when Redis is back "
        "(run `verenigingen sweep`)",
    )
    assert "s3cr3t" not in line and imported == 30 and requested > 0
    assert json.loads(done.stdout)["accounts"]["requested"] == requested


@pytest.mark.parametrize(
    ("command", "said"),
    [
        (["retry"], "0 failed requests were queued again in the database; they are sent when Redis is back"),
        (["sweep"], "nothing was swept"),
        (["worker"], "the worker did not start"),
    ],
)
def test_redis_out_of_reach_is_one_line_naming_it(tmp_path, command, said):
    home = tmp_path / "home"
    assert run("migrate", env={"VERENIGINGEN_HOME": str(home)}).returncode == 0
    done = run(*command, env={"VERENIGINGEN_HOME": str(home), "VERENIGINGEN_REDIS": UNREACHABLE_REDIS})
    assert "s3cr3t" not in one_line(done, "Redis at redis://:***@127.0.0.1:1/0 cannot be reached", said)


# The embedded Redis: one per data folder, stopped by `stop` or when the folder is deleted.


def _redis_servers_in(folder: Path) -> list[int]:
    """redis-server processes working in ``folder`` or below (Redis works in its ``dir``)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            named = entry.name.isdigit() and (entry / "comm").read_text().strip() == "redis-server"
            if named and Path(os.readlink(entry / "cwd")).is_relative_to(folder):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] != "Z"


def _wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.2)


def _workers_on(home: Path) -> int:
    try:
        return len(Worker.all(connection=Redis(unix_socket_path=str(home / "redis.sock"))))
    except Exception:
        return 0


@pytest.fixture(autouse=True)
def no_redis_left(tmp_path):
    """An embedded Redis outlives the command that started it (until `stop`): none outlives a test."""
    yield
    for pid in _redis_servers_in(tmp_path):
        os.kill(pid, signal.SIGKILL)


@pytest.fixture
def embedded_home(tmp_path):
    """A fresh data folder; the workers started in it are killed afterwards, whatever the test did."""
    processes: list[subprocess.Popen] = []
    yield tmp_path / "h", processes
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


def _start_workers(home: Path, count: int, processes: list) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VERENIGINGEN_")}
    env |= {"VERENIGINGEN_HOME": str(home), "VERENIGINGEN_SWEEP_INTERVAL": "2"}
    command = [sys.executable, "-m", "verenigingen.standalone.cli", "worker"]
    processes += [
        subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(count)
    ]


def test_workers_started_together_on_a_fresh_folder_share_one_embedded_redis(embedded_home):
    home, processes = embedded_home
    _start_workers(home, 4, processes)
    _wait_for(lambda: _workers_on(home) == 4, 90, "4 workers registered in the folder's Redis")
    assert len(_redis_servers_in(home)) == 1
    assert all(process.poll() is None for process in processes)

    done = run("stop", env={"VERENIGINGEN_HOME": str(home)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"stopped 4 workers and the embedded Redis of {home}"
    for process in processes:
        process.wait(timeout=60)
    _wait_for(lambda: not _redis_servers_in(home), 15, "no redis-server left")
    assert not list((home / "workers").iterdir())


def test_deleting_the_data_folder_stops_its_embedded_redis_and_workers(embedded_home):
    home, processes = embedded_home
    _start_workers(home, 1, processes)
    _wait_for(lambda: _workers_on(home) == 1, 90, "the worker registered in the folder's Redis")
    (server,) = _redis_servers_in(home)
    shutil.rmtree(home)
    _wait_for(lambda: not _alive(server), 15, "the embedded Redis stopped")
    processes[0].wait(timeout=60)
