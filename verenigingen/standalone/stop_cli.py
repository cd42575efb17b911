"""``verenigingen stop``: stop what a data folder runs, so that nothing is left behind."""

import click

from verenigingen.standalone import embedded
from verenigingen.standalone.host import Environment
from verenigingen.standalone.processes import end_processes, registered_workers


def register(main: click.Group) -> None:
    @main.command()
    @click.option(
        "--timeout",
        type=click.IntRange(1, None),
        default=30,
        show_default=True,
        help="Seconds a worker may take to finish the job it runs before that job is stopped.",
    )
    def stop(timeout):
        """Stop this data folder's workers (started by hand or by a command) and its embedded Redis."""
        home = Environment.from_env().home
        workers = registered_workers(home)
        end_processes(workers, timeout)
        stopped = [f"{len(workers)} worker" + ("" if len(workers) == 1 else "s")]
        if embedded.stop(home):
            stopped.append("the embedded Redis")
        click.echo(f"stopped {' and '.join(stopped)} of {home}")
