"""The processes a data folder runs, so that none is left behind.

Workers write their pid into ``<home>/workers/`` while they run, so that ``verenigingen stop`` finds the
ones started by hand as well as those a command started. A command that starts workers stops them
however it ends: on SIGTERM, SIGHUP and Ctrl-C too (``interrupted_by_signals``), and on Linux they die
with it even when it is killed outright.
"""

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

WORKERS = "workers"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(BaseException):
    """A stop signal arrived; a BaseException, so that no ``except Exception`` swallows it."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


@contextmanager
def interrupted_by_signals() -> Iterator[None]:
    """Turn the first stop signal into ``Interrupted``; later ones are ignored while we clean up."""
    seen: list[int] = []

    def handler(signum, _frame):
        if not seen:
            seen.append(signum)
            raise Interrupted(signum)

    previous = {signum: signal.signal(signum, handler) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, action in previous.items():
            signal.signal(signum, action)


@contextmanager
def signals_held() -> Iterator[None]:
    """Delay stop signals while processes are started or stopped, so none escapes our bookkeeping."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def unblock_signals() -> None:
    """For Popen's preexec_fn: a child inherits blocked signals (``signals_held``), and could not be stopped."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


def child_of_ours() -> None:
    """For Popen's preexec_fn: signals as usual, and on Linux SIGTERM when the parent dies, however it dies."""
    unblock_signals()
    if sys.platform.startswith("linux"):
        with suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def pid_alive(pid: int) -> bool:
    """Running (a zombie, dead but not yet collected by its parent, is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return True  # no /proc to ask
    return stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3] != b"Z"


@contextmanager
def registered_worker(home: Path) -> Iterator[None]:
    """This process's pid in the folder while it works."""
    folder = home / WORKERS
    folder.mkdir(mode=0o700, exist_ok=True)
    entry = folder / str(os.getpid())
    entry.write_text(" ".join(sys.argv), encoding="utf-8")
    try:
        yield
    finally:
        entry.unlink(missing_ok=True)


def _is_our_worker(pid: int) -> bool:
    """A pid may have been reused since the file was written: on Linux, check the command line."""
    if not pid_alive(pid):
        return False
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc to ask: trust the file
    return b"verenigingen" in command and b"worker" in command


def registered_workers(home: Path) -> list[int]:
    folder = home / WORKERS
    found = []
    for entry in folder.glob("*") if folder.is_dir() else []:
        if entry.name.isdigit() and _is_our_worker(int(entry.name)):
            found.append(int(entry.name))
        else:
            entry.unlink(missing_ok=True)
    return found


def _signal_all(pids: list[int], signum: int) -> None:
    for pid in pids:
        with suppress(ProcessLookupError):
            os.kill(pid, signum)


def _wait_gone(pids: list[int], seconds: float, poll) -> list[int]:
    deadline = time.monotonic() + seconds
    while (left := [pid for pid in pids if poll(pid)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def end_processes(pids: list[int], patience: float, poll=pid_alive) -> None:
    """SIGTERM (an RQ worker finishes its job), after ``patience`` SIGTERM again (RQ stops the job: the
    sweeper gives its members back), then SIGKILL."""
    left = [pid for pid in pids if poll(pid)]
    _signal_all(left, signal.SIGTERM)
    left = _wait_gone(left, patience, poll)
    _signal_all(left, signal.SIGTERM)
    left = _wait_gone(left, 5, poll)
    _signal_all(left, signal.SIGKILL)
    _wait_gone(left, 5, poll)


def end_children(processes: list[subprocess.Popen], patience: float = 30) -> None:
    """Our own children: waited for, so that none is left a zombie."""
    end_processes([p.pid for p in processes], patience, poll=lambda pid: _child_running(processes, pid))


def _child_running(processes: list[subprocess.Popen], pid: int) -> bool:
    return next(p for p in processes if p.pid == pid).poll() is None
