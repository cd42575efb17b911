"""End-to-end bulk account creation on MariaDB and Redis with 5 workers, against a naive baseline.

    .venv/bin/python benchmarks/bulk_accounts.py [--members 4700] [--workers 5] [--baseline-members 300]

Prints end-to-end seconds and members/s, time per phase, memory growth per 1,000 members, p50/p95
latency of individual requests made during the bulk run, and, in the same run, a naive baseline: one
member at a time, one transaction and one job each, on one worker. Needs MariaDB on 127.0.0.1:3306
(root, no password) and Redis on 127.0.0.1:6379 (it uses database 12 and queues of its own).
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pymysql
from redis import Redis
from sqlalchemy import select

from verenigingen.accounts.bulk import queue_bulk_account_creation_for_members
from verenigingen.accounts.config import AccountSettings
from verenigingen.accounts.individual import queue_account_creation_for_member
from verenigingen.accounts.states import RequestStatus, TrackerStatus
from verenigingen.mijnrood import MijnroodExport
from verenigingen.mijnrood.generator import generate_export
from verenigingen.standalone.host import OPERATOR, Environment, StandaloneHost
from verenigingen.standalone.importer import Importer
from verenigingen.standalone.schema import account_creation_requests as requests_t
from verenigingen.standalone.schema import members

REDIS_URL = "redis://127.0.0.1:6379/12"
MARIADB = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}
TARGETS = {"seconds": 30, "speedup": 10, "mb_per_1000": 20, "p95": 2.0, "cap_cost": 0.10}
UNCAPPED = {"VERENIGINGEN_MAX_CONCURRENT_BATCHES": "100000", "VERENIGINGEN_INDIVIDUAL_CHECK_SECONDS": "100000"}


def rss_mb(pid: int | str = "self") -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) / 1024


class Bench:
    """One fresh database, Redis queues of its own, and worker processes."""

    def __init__(self, home: Path, database: str, **overrides: str):
        queues = uuid.uuid4().hex[:8]
        self.env = {
            **overrides,
            **os.environ,
            "VERENIGINGEN_HOME": str(home),
            "VERENIGINGEN_REDIS": REDIS_URL,
            "VERENIGINGEN_DB": f"mysql+pymysql://root@127.0.0.1:3306/{database}?charset=utf8mb4",
            "VERENIGINGEN_BULK_QUEUE": f"bulk-{queues}",
            "VERENIGINGEN_INDIVIDUAL_QUEUE": f"individual-{queues}",
        }
        self.env = {**self.env, **overrides}
        settings = AccountSettings.from_env(self.env)
        self.shost = StandaloneHost(Environment(home, self.env["VERENIGINGEN_DB"], REDIS_URL), settings)
        self.host, self.store = self.shost.host, self.shost.store
        self.workers: list[subprocess.Popen] = []

    def start_workers(self, count: int, queues: str | None = None) -> None:
        command = [sys.executable, "-m", "verenigingen.standalone.cli", "worker"]
        command += ["--queues", queues] if queues else []
        self.workers += [subprocess.Popen(command, env=self.env) for _ in range(count)]
        time.sleep(1.5)  # let them connect: the benchmark measures work, not start-up

    def stop_workers(self) -> None:
        for worker in self.workers:
            worker.terminate()
        for worker in self.workers:
            worker.wait(timeout=30)
        self.workers = []

    def request_status(self, name: str) -> str:
        with self.store.transaction(readonly=True):
            return self.store.db.scalar(select(requests_t.c.status).where(requests_t.c.name == name))

    def tracker_done(self, tracker: str) -> bool:
        with self.store.transaction(readonly=True):
            return self.store.get_tracker(tracker).status in TrackerStatus.FINISHED


def individual_latencies(bench: Bench, names: list[str], stop: threading.Event, out: list[float]) -> None:
    """An administrator approving members one by one while the bulk run goes on."""
    for name in names:
        if stop.is_set():
            return
        started = time.perf_counter()
        request = queue_account_creation_for_member(bench.host, OPERATOR, name)
        while bench.request_status(request) != RequestStatus.COMPLETED:
            time.sleep(0.01)
        out.append(time.perf_counter() - started)
        time.sleep(0.3)


def run_bulk(bench: Bench, export: Path, workers: int, individual: list[str]) -> dict:
    figures: dict = {}
    bench.start_workers(workers)
    rss_before = rss_mb()
    start = time.perf_counter()
    rows = sum(1 for _ in MijnroodExport(export))
    figures["validate"] = time.perf_counter() - start
    result = Importer(bench.shost, OPERATOR).run(export, create_accounts=False)
    figures["members"] = time.perf_counter() - start - figures["validate"]
    mark = time.perf_counter()
    latencies: list[float] = []
    stop = threading.Event()
    queued = queue_bulk_account_creation_for_members(bench.host, OPERATOR, result.member_names)
    figures["queue"] = time.perf_counter() - mark
    approver = threading.Thread(target=individual_latencies, args=(bench, individual, stop, latencies))
    approver.start()
    while not bench.tracker_done(queued.tracker):
        time.sleep(0.05)
    figures["accounts"] = time.perf_counter() - mark - figures["queue"]
    figures["total"] = time.perf_counter() - start
    stop.set()
    approver.join()
    figures["rss_growth"] = rss_mb() - rss_before
    figures["worker_rss"] = max(rss_mb(w.pid) for w in bench.workers)
    bench.stop_workers()
    with bench.store.transaction(readonly=True):
        figures["tracker"] = bench.store.get_tracker(queued.tracker)
    figures.update(rows=rows, latencies=latencies, requested=queued.requested)
    return figures


def run_naive(bench: Bench, names: list[str]) -> float:
    """One member at a time: one request, one transaction, one job each, one worker. Members per second."""
    bench.start_workers(1)
    start = time.perf_counter()
    requests = [queue_account_creation_for_member(bench.host, OPERATOR, name) for name in names]
    while bench.request_status(requests[-1]) != RequestStatus.COMPLETED:
        time.sleep(0.02)
    seconds = time.perf_counter() - start
    bench.stop_workers()
    return len(names) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=4700)
    parser.add_argument("--workers", type=int, default=5)
    parser.add_argument("--baseline-members", type=int, default=300)
    args = parser.parse_args()
    server = pymysql.connect(**MARIADB)
    database = f"verenigingen_bench_{uuid.uuid4().hex[:8]}"
    with server.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {database} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    try:
        with tempfile.TemporaryDirectory() as folder:
            bench = Bench(Path(folder), database)
            bench.store  # noqa: B018 - schema and operator, before the clock starts
            export = Path(folder) / "mijnrood.csv"
            generate_export(export, args.members, seed=1)
            individual = Path(folder) / "individual.csv"
            generate_export(individual, 40, seed=99, first_member_id=900_000)
            imported = Importer(bench.shost, OPERATOR).run(individual, create_accounts=False)
            individual_names = _eligible(bench, imported.member_names)
            bulk = run_bulk(bench, export, args.workers, individual_names[:20])
            # The same work with the engine's cap lifted and no look-out for individual requests: what the
            # cap and the individual reservation cost, measured in the same run.
            uncapped_bench = Bench(Path(folder), database, **UNCAPPED)
            uncapped_export = Path(folder) / "uncapped.csv"
            generate_export(uncapped_export, args.members, seed=2, first_member_id=2_000_000)
            uncapped = run_bulk(uncapped_bench, uncapped_export, args.workers, [])
            uncapped_bench.store.engine.dispose()
            naive_export = Path(folder) / "naive.csv"
            generate_export(naive_export, args.baseline_members * 2, seed=7, first_member_id=800_000)
            naive_members = _eligible(
                bench, Importer(bench.shost, OPERATOR).run(naive_export, create_accounts=False).member_names
            )
            naive = run_naive(bench, naive_members[: args.baseline_members])
            bench.store.engine.dispose()
    finally:
        with server.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {database}")
        Redis.from_url(REDIS_URL).flushdb()
    report(args, bulk, naive, uncapped)


def _eligible(bench: Bench, names: list[str]) -> list[str]:
    with bench.store.transaction(readonly=True):
        rows = bench.store.db.execute(
            select(members.c.name).where(
                members.c.name.in_(names),
                members.c.status == "Active",
                members.c.email.is_not(None),
                members.c.user.is_(None),
            )
        ).all()
    return [row.name for row in rows]


def report(args, bulk: dict, naive: float, uncapped: dict) -> None:
    tracker = bulk["tracker"]
    per_second = bulk["rows"] / bulk["total"]
    accounts_per_second = tracker.successful_records / bulk["accounts"]
    latencies = sorted(bulk["latencies"])
    p50 = statistics.median(latencies) if latencies else float("nan")
    p95 = latencies[max(0, round(0.95 * len(latencies)) - 1)] if latencies else float("nan")
    mb_per_1000 = bulk["rss_growth"] / (bulk["rows"] / 1000)
    speedup = accounts_per_second / naive
    uncapped_per_second = uncapped["tracker"].successful_records / uncapped["accounts"]
    cap_cost = 1 - accounts_per_second / uncapped_per_second
    print(f"Bulk accounts, {bulk['rows']:,} generated members, MariaDB + Redis, {args.workers} workers")
    print(f"  end to end (read, import, queue, accounts)    {bulk['total']:8.1f} s   {per_second:8.0f} members/s")
    print(
        f"  accounts created / failed                     {tracker.successful_records:8,} / {tracker.failed_records}"
        f"   ({bulk['requested']:,} eligible: status lid/aspirant with e-mail)"
    )
    for phase, label in (
        ("validate", "phase: read + validate"),
        ("members", "phase: upsert members"),
        ("queue", "phase: queue requests + jobs"),
        ("accounts", "phase: create accounts"),
    ):
        print(f"  {label:<46}{bulk[phase]:8.2f} s")
    print(f"  accounts/s (account phase)                    {accounts_per_second:8.0f}")
    print(f"  naive baseline: one member, one job each      {naive:8.1f} accounts/s   -> {speedup:.1f}x")
    print(
        f"  baseline: cap lifted, no individual look-out  {uncapped_per_second:8.0f} accounts/s"
        f"   -> the cap costs {cap_cost:.1%} ({uncapped['total']:.1f} s end to end)"
    )
    print(f"  memory growth of the importing process        {mb_per_1000:8.2f} MB per 1,000 members")
    print(f"  peak worker RSS                               {bulk['worker_rss']:8.1f} MB")
    print(
        f"  individual requests during the bulk run       p50 {p50:.2f} s, p95 {p95:.2f} s ({len(latencies)} requests)"
    )
    checks = {
        f"end to end <= {TARGETS['seconds']} s": bulk["total"] <= TARGETS["seconds"],
        f">= {TARGETS['speedup']}x the naive baseline": speedup >= TARGETS["speedup"],
        f"<= {TARGETS['mb_per_1000']} MB per 1,000 members": mb_per_1000 <= TARGETS["mb_per_1000"],
        f"individual p95 <= {TARGETS['p95']} s": p95 <= TARGETS["p95"],
        f"the cap costs <= {TARGETS['cap_cost']:.0%} of throughput": cap_cost <= TARGETS["cap_cost"],
    }
    for label, met in checks.items():
        print(f"Target {label}: {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
