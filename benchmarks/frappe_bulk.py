"""Bulk accounts on a real Frappe bench: a Mijnrood import through ``verenigingen.api.import_mijnrood`` with
bench workers, against bare ``User`` inserts measured in the same run.

    # from the bench's sites folder, with the bench's Python (the app installed on SITE):
    ../env/bin/python ../apps/verenigingen/benchmarks/frappe_bulk.py --site SITE [--members 4700] [--workers 5]

Prints: end-to-end minutes and members/s; seconds per created user against a bare User insert with the
same role (one at a time, as the same administrator, before the run); the default-queue jobs per created
user; p50/p95 from approval to account of individual approvals made during the run. Everything it makes
(its own e-mail domain) is deleted at the end; the site's throttle limit is raised for the run and put back.
"""

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import frappe
from frappe.installer import update_site_config
from frappe.utils.background_jobs import get_queue

from verenigingen.accounts.states import Roles, TrackerStatus
from verenigingen.api import bulk_status, import_mijnrood
from verenigingen.frappe_host.jobs import sweep
from verenigingen.mijnrood.generator import generate_export
from verenigingen.utils.account_creation_manager import queue_account_creation_for_member

TARGETS = {"minutes": 15, "overhead": 0.30, "default_jobs": 1.0, "p95": 2.0}
FINISHED = {TrackerStatus.COMPLETED, TrackerStatus.COMPLETED_WITH_ERRORS, TrackerStatus.FAILED}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", default="test.localhost")
    parser.add_argument("--members", type=int, default=4700)
    parser.add_argument("--workers", type=int, default=5, help="bench workers on the bulk queue")
    parser.add_argument("--bare", type=int, default=100, help="bare User inserts for the baseline")
    parser.add_argument("--approvals", type=int, default=20, help="individual approvals made during the run")
    options = parser.parse_args()

    frappe.init(site=options.site, sites_path=os.getcwd())
    frappe.connect()
    run = uuid.uuid4().hex[:8]
    domain = f"bench-{run}.benchmark.nl"
    limit = frappe.conf.get("throttle_user_limit")
    update_site_config("throttle_user_limit", 1_000_000)  # the throttle is not what this measures
    workers: list[subprocess.Popen] = []
    runner = frappe.session.user  # the user this script connected as: it sets up and cleans up
    try:
        admin = _administrator(domain)
        frappe.set_user(admin)
        bare = _bare_inserts(options.bare, domain)
        export = _export(options.members, domain, run, first_id=900_000_000)
        approvals = _export(options.approvals, domain, run, first_id=950_000_000)
        import_mijnrood(str(approvals), create_accounts=False)
        waiting = frappe.get_all("Member", {"email": ["like", f"a%@{domain}"]}, pluck="name")
        frappe.db.commit()
        workers = _start_workers(options.workers)
        started = time.monotonic()
        report = import_mijnrood(str(export))
        imported = time.monotonic() - started
        tracker = report["tracker"]["name"]
        latencies = _run_with_approvals(tracker, waiting, options.approvals)
        elapsed = time.monotonic() - started
        frappe.db.rollback()
        status = bulk_status(tracker)
        reasons = frappe.get_all(
            "Account Creation Request", {"bulk_operation_tracker": tracker, "status": "Failed"}, pluck="failure_reason"
        )
        _print(options, status, elapsed, imported, bare, latencies, _default_jobs(domain), Counter(reasons))
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=60)
        frappe.set_user(runner)
        _default_jobs(domain, remove=True)
        _clean_up(domain)
        update_site_config("throttle_user_limit", limit if limit is not None else "None")
        frappe.db.commit()
        frappe.destroy()


def _administrator(domain: str) -> str:
    email = f"admin@{domain}"
    user = frappe.get_doc({"doctype": "User", "email": email, "first_name": "Benchmark", "send_welcome_email": 0})
    user.append_roles(Roles.ADMINISTRATOR)
    user.insert()
    frappe.db.commit()
    return email


def _bare_inserts(count: int, domain: str) -> float:
    """Seconds per User insert with the member role, one per transaction, as the same administrator."""
    started = time.monotonic()
    for i in range(count):
        user = frappe.get_doc({"doctype": "User", "email": f"bare{i}@{domain}", "first_name": "Bare"})
        user.send_welcome_email = 0
        user.append("roles", {"role": Roles.MEMBER})
        user.insert()
        frappe.db.commit()
    return (time.monotonic() - started) / count


def _export(members: int, domain: str, run: str, first_id: int) -> Path:
    """A generated export where every member is eligible, with e-mail addresses of this run's domain."""
    path = Path(tempfile.gettempdir()) / f"benchmark-{run}-{first_id}.csv"
    generate_export(path, members, seed=first_id, first_member_id=first_id + int(run[:4], 16) * 10_000)
    with path.open(encoding="utf-8", newline="") as stream:
        rows = list(csv.reader(stream, delimiter=";"))
    column = {label: i for i, label in enumerate(rows[0])}
    prefix = "a" if first_id >= 950_000_000 else "m"
    for row in rows[1:]:
        row[column["Lidmaatschapstype"]] = "lid"
        row[column["E-mailadres"]] = f"{prefix}{row[column['Lidnr.']]}@{domain}"
    with path.open("w", encoding="utf-8", newline="") as stream:
        csv.writer(stream, delimiter=";").writerows(rows)
    return path


def _start_workers(count: int) -> list[subprocess.Popen]:
    """``count`` workers on the bulk queue and one on short and long: the default queue is left waiting, so
    that what the run put there can be counted (in production a plain worker drains it)."""
    python = Path(sys.executable)
    log = (Path(tempfile.gettempdir()) / "benchmark-workers.log").open("ab")
    command = [str(python), "-m", "frappe.utils.bench_helper", "frappe", "worker"]
    queues = ["bulk"] * count + ["short,long"]
    return [subprocess.Popen([*command, "--queue", q], stdout=log, stderr=subprocess.STDOUT) for q in queues]


def _run_with_approvals(tracker: str, members: list[str], approvals: int) -> list[float]:
    """Approve one member at a time while the bulk run goes on; seconds from approval to account."""
    latencies: list[float] = []
    interval = 5.0
    next_approval = time.monotonic() + interval
    next_sweep = time.monotonic() + 60
    while True:
        frappe.db.rollback()
        if bulk_status(tracker)["status"] in FINISHED:
            return latencies
        if time.monotonic() >= next_sweep:  # what the scheduler does every minute (retries due, lost jobs)
            sweep()
            frappe.db.commit()
            next_sweep = time.monotonic() + 60
        if members and len(latencies) < approvals and time.monotonic() >= next_approval:
            member = members.pop()
            approved = time.monotonic()
            queue_account_creation_for_member(member)
            while not frappe.db.get_value("Member", member, "user") and time.monotonic() - approved < 120:
                time.sleep(0.05)
                frappe.db.rollback()
            latencies.append(time.monotonic() - approved)
            next_approval = time.monotonic() + interval
        time.sleep(0.5)


def _default_jobs(domain: str, remove: bool = False) -> Counter:
    """The jobs waiting on the default queue for this run's members' users, by method (``remove``: take
    off every job of this run, the baseline's users' too: their users are deleted with the run)."""
    queue = get_queue("default")
    found: Counter = Counter()
    for job in queue.jobs:
        arguments = job.kwargs.get("kwargs") or {}
        user = str(getattr(arguments.get("user"), "name", arguments.get("user") or arguments.get("name")))
        if not user.endswith(f"@{domain}"):
            continue
        if remove:
            queue.remove(job)
        elif not user.startswith(("bare", "admin")):
            found[job.kwargs.get("method")] += 1
    return found


def _print(options, status, elapsed, imported, bare, latencies, default_jobs: Counter, reasons: Counter) -> None:
    created = status["successful_records"]
    per_user = elapsed / max(created, 1)
    overhead = per_user / bare - 1
    p95 = statistics.quantiles(latencies, n=20)[-1] if len(latencies) >= 2 else float("nan")
    p50 = statistics.median(latencies) if latencies else float("nan")
    print(f"members {options.members}, bulk workers {options.workers}, status {status['status']}")
    print(f"created {created}, failed {status['failed_records']}", dict(reasons) or "")
    print(f"end to end {elapsed / 60:.1f} min ({created / elapsed:.1f} members/s; import {imported:.0f} s)")
    print(f"seconds per created user {per_user:.3f} vs bare User insert {bare:.3f}: {overhead:+.0%}")
    jobs, users = sum(default_jobs.values()), created + len(latencies)  # the approvals' users too
    print(f"default-queue jobs per created user {jobs / max(users, 1):.2f}: {dict(default_jobs)}")
    print(f"individual approvals {len(latencies)}: p50 {p50:.2f} s, p95 {p95:.2f} s")
    print("targets:", ", ".join(f"{key} {value}" for key, value in TARGETS.items()))


def _clean_up(domain: str) -> None:
    """This run's rows, by its e-mail domain (a benchmark site's data; plain deletes keep this fast)."""
    like = f"%@{domain}"
    members = frappe.get_all("Member", {"email": ["like", like]}, pluck="name")
    users = frappe.get_all("User", {"name": ["like", like]}, pluck="name")
    requests = frappe.get_all("Account Creation Request", {"requested_by": f"admin@{domain}"}, pluck="name")
    trackers = frappe.get_all("Bulk Operation Tracker", {"requested_by": f"admin@{domain}"}, pluck="name")
    imports = frappe.get_all("Mijnrood CSV Import", {"owner": f"admin@{domain}"}, pluck="name")
    contacts = frappe.get_all("Contact", {"user": ["like", like]}, pluck="name")
    for doctype, names, key in (
        ("Comment", members + requests + trackers, "reference_name"),
        ("Contact Email", contacts, "parent"),
        ("Contact Phone", contacts, "parent"),
        ("Dynamic Link", contacts, "parent"),
        ("Contact", contacts, "name"),
        ("Has Role", users, "parent"),
        ("DocShare", users, "user"),
        ("Notification Settings", users, "name"),
        ("User", users, "name"),
        ("Member", members, "name"),
        ("Account Creation Request Role", requests, "parent"),
        ("Account Creation Request", requests, "name"),
        ("Bulk Operation Tracker", trackers, "name"),
        ("Mijnrood CSV Import", imports, "name"),
    ):
        for start in range(0, len(names), 500):
            frappe.db.delete(doctype, {key: ["in", names[start : start + 500]]})
    for name in imports:
        for stored in frappe.get_all("File", {"attached_to_name": name}, pluck="name"):
            frappe.delete_doc("File", stored, force=True)
    frappe.db.commit()


if __name__ == "__main__":
    main()
