"""The account commands of the ``verenigingen`` CLI: import, worker, status, retry, approve, sweep, demo."""

import json
import sys
import time
from contextlib import nullcontext, suppress
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from verenigingen.accounts.errors import AccountCreationError, PermissionDenied
from verenigingen.accounts.individual import queue_account_creation_for_member
from verenigingen.accounts.retry import retry_failed_requests
from verenigingen.accounts.states import RequestStatus, TrackerStatus
from verenigingen.accounts.sweeper import sweep
from verenigingen.mijnrood import ExportError
from verenigingen.standalone.host import OPERATOR, StandaloneHost
from verenigingen.standalone.importer import Importer, ImportResult
from verenigingen.standalone.schema import account_creation_requests, members
from verenigingen.standalone.worker import (
    bulk_workers_listening,
    run_worker,
    start_worker_processes,
    stop_worker_processes,
    sweep_loop,
    sweep_once,
)

FINISHED = {TrackerStatus.COMPLETED, TrackerStatus.FAILED, TrackerStatus.CANCELLED}
TRACKER_FIELDS = (
    "name",
    "status",
    "total_records",
    "processed_records",
    "successful_records",
    "failed_records",
    "total_batches",
    "batch_size",
)

actor_option = click.option(
    "--as",
    "actor",
    default=OPERATOR,
    show_default=True,
    envvar="VERENIGINGEN_USER",
    help="The user this runs as (its roles are checked).",
)


def _fail(message: str):
    from verenigingen.standalone.cli import fail

    fail(message)


def _refuse(actor: str, exc: AccountCreationError):
    _fail(f"{actor}: {exc}" if isinstance(exc, PermissionDenied) else str(exc))


def _progress(enabled: bool) -> Progress | None:
    if not enabled:
        return None
    return Progress(
        TextColumn("{task.description:<18}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    )


def tracker_dict(shost: StandaloneHost, name: str | None) -> dict | None:
    if name is None:
        return None
    with shost.store.transaction():
        view = shost.store.get_tracker(name)
    return {field: getattr(view, field) for field in TRACKER_FIELDS}


def wait_for_tracker(shost: StandaloneHost, tracker: str, workers: int, progress: Progress | None) -> dict:
    """Block until the tracker finishes, running workers and the sweep ourselves when nobody else does."""
    spawned = [] if bulk_workers_listening(shost) else start_worker_processes(shost, workers)
    task = progress.add_task("accounts created", total=None) if progress else None
    last_sweep = time.monotonic()
    try:
        while True:
            with shost.store.transaction(readonly=True):
                view = shost.store.get_tracker(tracker)
            if progress:
                progress.update(
                    task,
                    total=view.total_records,
                    completed=view.processed_records,
                    description=f"accounts (batch {view.current_batch}/{view.total_batches})",
                )
            if view.status in FINISHED:
                return tracker_dict(shost, tracker)
            if time.monotonic() - last_sweep > shost.settings.sweep_interval:
                with suppress(Exception):  # a failed sweep is tried again; the workers sweep too
                    sweep_once(shost)
                last_sweep = time.monotonic()
            time.sleep(0.2)
    finally:
        stop_worker_processes(spawned)


def import_summary(result: ImportResult, tracker: dict | None) -> dict:
    accounts = result.accounts
    return {
        "rows": result.rows,
        "invalid_rows": result.invalid_rows,
        "members_created": result.members_created,
        "members_updated": result.members_updated,
        "members_unchanged": result.members_unchanged,
        "accounts": {
            "requested": accounts.requested if accounts else 0,
            "created": tracker["successful_records"] if tracker else 0,
            "linked": accounts.linked if accounts else 0,
            "failed": tracker["failed_records"] if tracker else 0,
        },
        "tracker": tracker,
        "rejected_rows_file": result.rejected_rows_file,
    }


def run_import(file: Path, encoding, no_accounts, wait, workers, as_json, actor) -> dict:
    shost = StandaloneHost()
    progress = _progress(not as_json and sys.stderr.isatty())
    with progress or nullcontext():
        task = progress.add_task("members read", total=None) if progress else None
        advance = (lambda: progress.advance(task)) if progress else None
        try:
            result = Importer(shost, actor).run(file, encoding, create_accounts=not no_accounts, on_row=advance)
        except ExportError as exc:
            _fail(f"{file}: {exc}")
        except AccountCreationError as exc:
            _refuse(actor, exc)
        tracker = result.accounts.tracker if result.accounts else None
        summary = tracker_dict(shost, tracker)
        if wait and tracker:
            summary = wait_for_tracker(shost, tracker, workers, progress)
    report = import_summary(result, summary)
    if as_json:
        click.echo(json.dumps(report))
    else:
        accounts = report["accounts"]
        click.echo(
            f"{report['rows']} rows: {report['members_created']} members created, "
            f"{report['members_updated']} updated, {report['members_unchanged']} unchanged, "
            f"{report['invalid_rows']} rejected"
        )
        if report["rejected_rows_file"]:
            click.echo(f"Rejected rows, with reasons, to fix and import again: {report['rejected_rows_file']}")
        click.echo(
            f"Accounts: {accounts['requested']} requested, {accounts['created']} created, "
            f"{accounts['linked']} linked, {accounts['failed']} failed"
        )
        if summary:
            click.echo(
                f"Tracker {summary['name']}: {summary['status']} ({summary['processed_records']}/"
                f"{summary['total_records']} processed in {summary['total_batches']} batches)"
            )
    return report


def register(main: click.Group) -> None:
    @main.command("import")
    @click.argument("file", type=click.Path(path_type=Path))
    @click.option("--encoding", help="Read the file in this encoding instead of detecting it.")
    @click.option("--no-accounts", is_flag=True, help="Only import members; create no accounts.")
    @click.option("--wait", is_flag=True, help="Wait until every account is created (runs workers if none listen).")
    @click.option(
        "--workers",
        type=click.IntRange(1, 32),
        default=5,
        show_default=True,
        help="Workers to run while waiting, when no worker listens.",
    )
    @click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
    @actor_option
    def import_(file, encoding, no_accounts, wait, workers, as_json, actor):
        """Import a Mijnrood export: upsert members, write rejected rows, start bulk account creation."""
        run_import(file, encoding, no_accounts, wait, workers, as_json, actor)

    @main.command()
    @click.option("--queues", default=None, help="Comma-separated, in the order served (default: individual,bulk).")
    @click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
    def worker(queues, burst):
        """Run a worker: individual requests first, then bulk batches; sweeps on the side."""
        shost = StandaloneHost()
        names = queues.split(",") if queues else [shost.settings.individual_queue, shost.settings.bulk_queue]
        run_worker(shost, names, burst=burst)

    @main.command()
    @click.argument("tracker", required=False)
    @click.option("--json", "as_json", is_flag=True)
    def status(tracker, as_json):
        """Show a bulk operation (the latest when none is named) and what waits for a retry."""
        shost = StandaloneHost()
        store = shost.store
        with store.transaction():
            tracker = tracker or store.latest_tracker()
            view = store.get_tracker(tracker) if tracker else None
            if view is None:
                _fail(f"no bulk operation {tracker}" if tracker else "no bulk operations yet")
            r = account_creation_requests.c
            waiting = store.count(
                account_creation_requests,
                r.bulk_operation_tracker == tracker,
                r.status == RequestStatus.QUEUED,
                r.retry_count > 0,
            )
            failed = [
                {
                    "request": f.name,
                    "member": f.source_record,
                    "category": f.error_category,
                    "reason": f.failure_reason,
                }
                for f in store.failed_requests(tracker)
            ]
        report = {
            **tracker_dict(shost, tracker),
            "current_batch": view.current_batch,
            "retry_queue": waiting,
            "error_summary": view.error_summary,
            "failed": failed,
        }
        if as_json:
            click.echo(json.dumps(report, default=str))
            return
        click.echo(
            f"{view.name} {view.status}: {view.processed_records}/{view.total_records} processed, "
            f"{view.successful_records} created, {view.failed_records} failed, {waiting} waiting to retry; "
            f"batch {view.current_batch}/{view.total_batches}"
        )
        for item in failed:
            click.echo(f"  failed {item['request']} (member {item['member']}): {item['reason']}")

    @main.command()
    @click.argument("tracker", required=False)
    @actor_option
    def retry(tracker, actor):
        """Queue failed requests again (of one bulk operation, or all)."""
        try:
            count = retry_failed_requests(StandaloneHost().host, actor, tracker)
        except AccountCreationError as exc:
            _refuse(actor, exc)
        click.echo(f"{count} failed requests queued again")

    @main.command()
    @click.argument("member")
    @actor_option
    def approve(member, actor):
        """Create one member's account now (by member name or Lidnr.), ahead of any bulk work."""
        shost = StandaloneHost()
        with shost.store.transaction():
            name = shost.store.db.scalar(
                members.select()
                .with_only_columns(members.c.name)
                .where((members.c.name == member) | (members.c.member_id == member))
            )
        if name is None:
            _fail(f"no member {member}")
        try:
            request = queue_account_creation_for_member(shost.host, actor, name)
        except AccountCreationError as exc:
            _refuse(actor, exc)
        click.echo(f"queued {request}" if request else f"member {member} linked to the existing user of its e-mail")

    @main.command("sweep")
    @click.option("--loop", is_flag=True, help="Keep sweeping (each worker runs one such process).")
    @click.option("--parent", type=int, default=None, hidden=True, help="Stop when this process is gone.")
    def sweep_command(loop, parent):
        """Recover requests of vanished workers, re-enqueue due retries and lost jobs."""
        shost = StandaloneHost()
        if loop:
            sweep_loop(shost, parent)
            return
        click.echo(json.dumps(vars(sweep(shost.host))))

    @main.command()
    @click.option("--members", "count", type=click.IntRange(1, 100_000), default=4700, show_default=True)
    @click.option("--seed", type=int, default=1, show_default=True)
    @click.option("--workers", type=click.IntRange(1, 32), default=5, show_default=True)
    def demo(count, seed, workers):
        """Generate a realistic export, import it and wait until every account exists."""
        from verenigingen.mijnrood.generator import generate_export

        shost = StandaloneHost()
        shost.environment.home.mkdir(parents=True, exist_ok=True)
        path = shost.environment.home / f"mijnrood-demo-{count}.csv"
        generate_export(path, count, seed=seed, invalid_rate=0.02)
        click.echo(f"Generated {count} members in {path}")
        started = time.perf_counter()
        report = run_import(path, None, False, True, workers, False, OPERATOR)
        seconds = time.perf_counter() - started
        click.echo(f"Done in {seconds:.1f} s ({report['rows'] / seconds:.0f} members/s)")
