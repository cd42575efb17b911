"""The account commands of the ``verenigingen`` CLI: import, worker, status, retry, approve, sweep, demo."""

import json
import sys
import time
from contextlib import nullcontext, suppress
from dataclasses import replace
from pathlib import Path
from typing import NoReturn

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from verenigingen.accounts.errors import AccountCreationError, PermissionDenied
from verenigingen.accounts.individual import queue_account_creation_for_member
from verenigingen.accounts.retry import retry_failed_requests
from verenigingen.accounts.states import TrackerStatus
from verenigingen.accounts.sweeper import sweep
from verenigingen.accounts.trackers import TRACKER_FIELDS, speed
from verenigingen.accounts.trackers import progress as tracker_progress
from verenigingen.mijnrood import ExportError
from verenigingen.standalone import backlog
from verenigingen.standalone.accounting import import_notes
from verenigingen.standalone.host import OPERATOR, StandaloneHost
from verenigingen.standalone.importer import Importer, ImportResult
from verenigingen.standalone.problems import REDIS_ERRORS, quiet_dispatch, redis_unreachable
from verenigingen.standalone.processes import Interrupted, interrupted_by_signals
from verenigingen.standalone.schema import members
from verenigingen.standalone.worker import WorkerSupply, run_worker, sweep_loop, sweep_once

FINISHED = set(TrackerStatus.FINISHED)
EXIT_STUCK = 3  # a bulk operation on which nothing moved for the stall time

actor_option = click.option(
    "--as",
    "actor",
    default=OPERATOR,
    show_default=True,
    envvar="VERENIGINGEN_USER",
    help="The user this runs as (its roles are checked).",
)


def _fail(message: str) -> NoReturn:
    from verenigingen.standalone.cli import fail

    fail(message)


def _refuse(actor: str, exc: AccountCreationError) -> NoReturn:
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
    with shost.store.transaction(readonly=True):
        view = shost.store.get_tracker(name)
    return {field: getattr(view, field) for field in TRACKER_FIELDS}


def _stuck(tracker: str, why: str):
    click.echo(f"verenigingen: bulk operation {tracker} is stuck: {why}", err=True)
    sys.exit(EXIT_STUCK)


def wait_for_tracker(shost: StandaloneHost, tracker: str, workers: int, progress: Progress | None) -> dict:
    """Block until the tracker finishes, running workers and the sweep ourselves when no live worker
    listens (decided again while waiting). Never for ever: when nothing moves for ``stall_seconds`` (and
    no retry is due later), say what is stuck and exit 3. SIGTERM, SIGHUP and Ctrl-C stop the workers
    it started, and it says how the work goes on."""
    try:
        with interrupted_by_signals():
            return _wait_for_tracker(shost, tracker, WorkerSupply(shost, workers), progress)
    except Interrupted as exc:
        click.echo(
            f"verenigingen: stopped by {exc}, and so are the workers it started; the accounts not made yet "
            "are made when a worker runs (`verenigingen worker`)",
            err=True,
        )
        sys.exit(exc.exit_code)


def _wait_for_tracker(shost: StandaloneHost, tracker: str, supply: WorkerSupply, progress: Progress | None) -> dict:
    task = progress.add_task("accounts created", total=None) if progress else None
    last_sweep = last_check = time.monotonic()
    seen, moved = None, shost.host.clock()
    try:
        supply.ensure()
        while True:
            with shost.store.transaction(readonly=True):
                view = shost.store.get_tracker(tracker)
            if view is None:
                _fail(f"bulk operation {tracker} no longer exists")
            if progress and task is not None:
                progress.update(
                    task,
                    total=view.total_records,
                    completed=view.processed_records,
                    description=f"accounts (batch {view.current_batch}/{view.total_batches})",
                )
            if view.status in FINISHED:
                return tracker_dict(shost, tracker) or {}
            if (view.status, view.processed_records) != seen:
                seen, moved = (view.status, view.processed_records), shost.host.clock()
            if time.monotonic() - last_check > 2:
                supply.ensure()  # the workers that listened may have gone: ours take over
                state = tracker_progress(shost.host, tracker, moved)
                if state.stuck:
                    _stuck(tracker, state.stuck)
                last_check = time.monotonic()
            if time.monotonic() - last_sweep > shost.settings.sweep_interval:
                with suppress(Exception):  # a failed sweep is tried again; the workers sweep too
                    sweep_once(shost)
                last_sweep = time.monotonic()
            time.sleep(0.2)
    finally:
        supply.stop()


def import_summary(result: ImportResult, tracker: dict | None) -> dict:
    accounts = result.accounts
    return {
        "rows": result.rows,
        "invalid_rows": result.invalid_rows,
        "skipped_rows": result.skipped_rows,
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


def run_import(file: Path, encoding, no_accounts, wait, workers, as_json, actor, stall_timeout=None) -> dict:
    if file.is_dir():
        _fail(f"{file}: is a directory, not a file")
    shost = StandaloneHost()
    _set_stall_timeout(shost, stall_timeout)
    redis_down = redis_unreachable(shost) if wait and not no_accounts else None  # said once, at the end
    progress = _progress(not as_json and sys.stderr.isatty())
    with progress or nullcontext(), quiet_dispatch(bool(redis_down)):
        advance = None
        if progress:
            task = progress.add_task("members read", total=None)
            advance = lambda: progress.advance(task)  # noqa: E731 - a callback for each row read
        try:
            result = Importer(shost, actor).run(file, encoding, create_accounts=not no_accounts, on_row=advance)
        except ExportError as exc:
            _fail(f"{file}: {exc}")
        except AccountCreationError as exc:
            _refuse(actor, exc)
        tracker = result.accounts.tracker if result.accounts else None
        summary = tracker_dict(shost, tracker)
        if wait and tracker and not redis_down:
            try:
                summary = wait_for_tracker(shost, tracker, workers, progress)
            except REDIS_ERRORS as exc:
                redis_down = redis_unreachable(shost, exc)
    report = import_summary(result, summary)
    notes = import_notes(shost, result, file, not no_accounts, bool(wait and tracker))
    report["accounts"].update(notes.accounts)
    if notes.warning:
        click.echo(f"verenigingen: {notes.warning}", err=True)
    if as_json:
        click.echo(json.dumps(report))
    else:
        accounts = report["accounts"]
        click.echo(
            f"{report['rows']} rows: {report['members_created']} members created, "
            f"{report['members_updated']} updated, {report['members_unchanged']} unchanged, "
            f"{report['invalid_rows']} rejected"
            + (f", {report['skipped_rows']} skipped (double registrations, empty rows)" * bool(report["skipped_rows"]))
        )
        if report["rejected_rows_file"]:
            click.echo(f"Rejected rows, with reasons, to fix and import again: {report['rejected_rows_file']}")
        click.echo(
            f"Accounts: {accounts['requested']} requested, {accounts['created']} created, "
            f"{accounts['linked']} linked, {accounts['failed']} failed"
        )
        for line in notes.lines:
            click.echo(line)
        if summary:
            click.echo(
                f"Tracker {summary['name']}: {summary['status']} ({summary['processed_records']}/"
                f"{summary['total_records']} processed in {summary['total_batches']} batches)"
            )
    if redis_down and tracker and result.accounts:
        _fail(
            f"{redis_down}: the members were imported and {result.accounts.requested} account requests were "
            "saved; they are sent when Redis is back (run `verenigingen sweep`)"
        )
    return report


def _set_stall_timeout(shost: StandaloneHost, seconds: int | None) -> None:
    if seconds:
        shost.host.settings = shost.settings = replace(shost.settings, stall_seconds=seconds)


stall_option = click.option(
    "--stall-timeout",
    type=click.IntRange(1, None),
    default=None,
    help="Seconds without progress after which a bulk operation counts as stuck (default 300).",
)


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
    @stall_option
    @actor_option
    def import_(file, encoding, no_accounts, wait, workers, as_json, stall_timeout, actor):
        """Import a Mijnrood export: upsert members, write rejected rows, start bulk account creation."""
        run_import(file, encoding, no_accounts, wait, workers, as_json, actor, stall_timeout)

    @main.command()
    @click.option("--queues", default=None, help="Comma-separated, in the order served (default: individual,bulk).")
    @click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
    def worker(queues, burst):
        """Run a worker: individual requests first, then bulk batches; sweeps on the side."""
        shost = StandaloneHost()
        if problem := redis_unreachable(shost):
            _fail(f"{problem}: the worker did not start")
        names = queues.split(",") if queues else [shost.settings.individual_queue, shost.settings.bulk_queue]
        run_worker(shost, names, burst=burst)

    @main.command()
    @click.argument("tracker", required=False)
    @click.option("--json", "as_json", is_flag=True)
    @stall_option
    def status(tracker, as_json, stall_timeout):
        """Show a bulk operation (the latest when none is named), or one account request (ACR-…); exit 3 when
        a bulk operation is stuck."""
        shost = StandaloneHost()
        _set_stall_timeout(shost, stall_timeout)
        if backlog.is_request_name(tracker):
            if not backlog.show_request(shost, tracker, as_json):
                _fail(f"no account request {tracker}")
            return
        store = shost.store
        with store.transaction(readonly=True):
            tracker = tracker or store.latest_tracker()
            view = store.get_tracker(tracker) if tracker else None
            if view is None:
                _fail(f"no bulk operation {tracker}" if tracker else "no bulk operations yet")
            counts = store.request_counts(tracker, shost.host.clock())
            failed = [
                {
                    "request": f.name,
                    "member": f.source_record,
                    "category": f.error_category,
                    "reason": f.failure_reason,
                }
                for f in store.failed_requests(tracker)
            ]
        state = tracker_progress(shost.host, tracker, view.modified or shost.host.clock())
        running = view.status not in FINISHED
        unsent = backlog.unsent(shost, tracker) if running else backlog.Unsent()
        pace = speed(view, view.completed_at or shost.host.clock())
        report = {
            **tracker_dict(shost, tracker),
            "current_batch": view.current_batch,
            "retry_queue": counts.waiting,
            "next_retry_at": counts.next_retry_at.isoformat() if counts.next_retry_at else None,
            "error_summary": view.error_summary,
            "stuck": state.stuck,
            "rate_per_minute": pace.per_minute,
            "eta_seconds": pace.eta_seconds if running else None,
            "failed": failed,
            "unsent": unsent.requests,
        }
        if as_json:
            click.echo(json.dumps(report, default=str))
        else:
            click.echo(
                f"{view.name} {view.status}: {view.processed_records}/{view.total_records} processed, "
                f"{view.successful_records} created, {view.failed_records} failed, {counts.waiting} waiting to "
                f"retry; batch {view.current_batch}/{view.total_batches}"
            )
            if running and pace.eta_seconds is not None:
                click.echo(f"  {pace.per_minute:g} members a minute, about {pace.eta_seconds // 60} min to go")
            if counts.next_retry_at:
                click.echo(f"  next retry due at {counts.next_retry_at:%Y-%m-%d %H:%M:%S} UTC")
            if view.error_summary:
                click.echo(f"  {view.error_summary}")
            if line := backlog.unsent_line(shost, unsent):
                click.echo(f"  {line}")
            for item in failed:
                click.echo(f"  failed {item['request']} (member {item['member']}): {item['reason']}")
        if state.stuck:
            _stuck(tracker, state.stuck)

    @main.command()
    @click.argument("tracker", required=False)
    @actor_option
    def retry(tracker, actor):
        """Queue failed requests again (of one bulk operation, or all)."""
        shost = StandaloneHost()
        redis_down = redis_unreachable(shost)  # the requests are queued in the database all the same
        try:
            with quiet_dispatch(bool(redis_down)):
                report = retry_failed_requests(shost.host, actor, tracker)
        except AccountCreationError as exc:
            _refuse(actor, exc)
        click.echo(f"{report.retried} failed requests queued again")
        for refusal in report.refused:
            click.echo(f"  member {refusal.member}: {refusal.message}")
        if redis_down:
            _fail(
                f"{redis_down}: {report.retried} failed requests were queued again in the database; they are "
                "sent when Redis is back (run `verenigingen sweep`)"
            )

    @main.command()
    @click.argument("member")
    @actor_option
    def approve(member, actor):
        """Create one member's account now (by member name or Lidnr.), ahead of any bulk work."""
        shost = StandaloneHost()
        with shost.store.transaction(readonly=True):
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
        if request and (warning := backlog.no_worker_warning(shost)):
            click.echo(f"verenigingen: {warning}", err=True)

    @main.command()
    @click.option("--json", "as_json", is_flag=True)
    def waiting(as_json):
        """List the account requests not finished yet, per bulk operation and individual, with the next retry."""
        backlog.show_waiting(StandaloneHost(), as_json)

    @main.command()
    def migrate():
        """Create the database tables (once; safe to run again, and while workers start)."""
        shost = StandaloneHost()
        shost.store  # noqa: B018 - building the store migrates under a database lock
        click.echo(f"database ready: {shost.store.engine.url.render_as_string(hide_password=True)}")

    @main.command("sweep")
    @click.option("--loop", is_flag=True, help="Keep sweeping (each worker runs one such process).")
    @click.option("--parent", type=int, default=None, hidden=True, help="Stop when this process is gone.")
    def sweep_command(loop, parent):
        """Recover requests of vanished workers, re-enqueue due retries and lost jobs."""
        shost = StandaloneHost()
        if loop:
            sweep_loop(shost, parent)
            return
        if problem := redis_unreachable(shost):
            _fail(f"{problem}: nothing was swept; run `verenigingen sweep` again when it is back")
        click.echo(json.dumps(vars(sweep(shost.host))))

    @main.command()
    @click.option("--members", "count", type=click.IntRange(1, 100_000), default=4700, show_default=True)
    @click.option("--seed", type=int, default=1, show_default=True)
    @click.option("--workers", type=click.IntRange(1, 32), default=5, show_default=True)
    def demo(count, seed, workers):
        """Generate a realistic export, import it and wait until every account exists."""
        from verenigingen.mijnrood.generator import generate_export

        shost = StandaloneHost()
        shost.environment.make_home()
        path = shost.environment.home / f"mijnrood-demo-{count}.csv"
        generate_export(path, count, seed=seed, invalid_rate=0.02)
        click.echo(f"Generated {count} members in {path}")
        started = time.perf_counter()
        report = run_import(path, None, False, True, workers, False, OPERATOR)
        seconds = time.perf_counter() - started
        click.echo(f"Done in {seconds:.1f} s ({report['rows'] / seconds:.0f} members/s)")
