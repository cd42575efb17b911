"""The ``verenigingen`` command line."""

import json
import os
import shutil
import sys
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import NoReturn, TextIO

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from verenigingen.accounts.config import AccountSettings
from verenigingen.mijnrood import ExportError, MijnroodExport
from verenigingen.mijnrood.summary import ValidationSummary

EXIT_UNREADABLE = 2


def fail(message: str) -> NoReturn:
    """One clear line on stderr and exit 2: the file (or the request) cannot be used at all."""
    click.echo(f"verenigingen: {message}", err=True)
    sys.exit(EXIT_UNREADABLE)


def _json_value(value):
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def write_json_report(export: MijnroodExport, out: TextIO) -> ValidationSummary:
    """Stream records to a temporary file so memory stays flat, then emit one JSON object."""
    summary = ValidationSummary(warnings=list(export.file_warnings))
    with tempfile.TemporaryFile("w+", encoding="utf-8") as records:
        separator = ""
        for result in export:
            summary.add(result)
            if result.valid:
                record = json.dumps({"row": result.row, **result.values}, default=_json_value, ensure_ascii=False)
                records.write(separator + record)
                separator = ","
        head = {
            **summary.as_dict(),
            "encoding": export.encoding,
            "delimiter": export.delimiter,
            "ignored_columns": list(export.header.ignored),
        }
        out.write(json.dumps(head, ensure_ascii=False)[:-1] + ', "records": [')
        records.seek(0)
        shutil.copyfileobj(records, out)
        out.write("]}\n")
    return summary


def _problem_table(title: str, problems, style: str) -> Table:
    table = Table(title=title, title_style=style, title_justify="left", show_lines=False)
    for column in ("Row", "Field", "Problem", "Value"):
        table.add_column(column, justify="right" if column == "Row" else "left")
    for problem in problems:
        value = Text(repr(problem.value)) if problem.value is not None else Text("")
        table.add_row(str(problem.row), problem.field or "(row)", Text(problem.message), value)
    return table


def print_report(export: MijnroodExport, console: Console) -> ValidationSummary:
    summary = ValidationSummary(warnings=list(export.file_warnings))
    for result in export:
        summary.add(result)
    console.print(Text(f"{export.path.name}: {export.description}", style="bold"))
    console.print(
        f"{summary.rows} rows: [green]{summary.valid} valid[/], "
        f"[red]{summary.invalid} rejected[/], [yellow]{len(summary.warnings)} warnings[/]"
        + (f", {len(summary.skipped)} skipped" if summary.skipped else "")
    )
    if export.header.ignored:
        console.print(Text("Ignored columns: " + ", ".join(export.header.ignored), style="dim"))
    if summary.errors:
        console.print(_problem_table("Rejected rows (fix them and import again)", summary.errors, "bold red"))
    if summary.warnings:
        console.print(_problem_table("Warnings (these rows are imported)", summary.warnings, "bold yellow"))
    if summary.skipped:
        console.print(_problem_table("Skipped (not imported, nothing to fix)", summary.skipped, "bold"))
    return summary


class _Commands(click.Group):
    """Set-up mistakes (a bad setting, a database or Redis out of reach, a data folder that is missing or
    a file, a database from an older version) get one line and exit 2, not a traceback; a reader that
    went away (``| head``) gets nothing."""

    def resolve_command(self, ctx: click.Context, args: list[str]):
        from verenigingen.standalone.problems import require_data_folder

        name, command, rest = super().resolve_command(ctx, args)
        if not {"-h", "--help"} & set(rest):
            try:
                require_data_folder(name)
            except Exception as exc:  # a file in the folder's place, a bad setting: said as any other
                self._explain(exc)
        return name, command, rest

    def invoke(self, ctx: click.Context):
        try:
            result = super().invoke(ctx)
            sys.stdout.flush()  # a reader gone is found here, not in Python's own last flush
            return result
        except BrokenPipeError:
            _reader_gone()
        except KeyboardInterrupt:
            click.echo("verenigingen: interrupted", err=True)
            sys.exit(130)
        except Exception as exc:
            self._explain(exc)

    @staticmethod
    def _explain(exc: Exception) -> NoReturn:
        from verenigingen.standalone.problems import explain

        message = explain(exc)
        if message is None:
            raise exc
        fail(message)


def _reader_gone() -> NoReturn:
    """Exit quietly, as a tool in a pipe killed by SIGPIPE does; stdout goes to /dev/null first, or
    Python would complain about it once more while flushing at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    sys.exit(141)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="verenigingen")
def main() -> None:
    """Import Mijnrood member exports and create their user accounts in bulk."""


@main.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--encoding", help="Read the file in this encoding instead of detecting UTF-8 or Windows-1252.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a report.")
def validate(file: Path, encoding: str | None, as_json: bool) -> None:
    """Check a Mijnrood export and report every rejected row and warning.

    Exits 0 when the file was read (even if rows were rejected), 2 when it cannot be read at all.
    """
    if file.is_dir():
        fail(f"{file}: is a directory, not a file")
    try:
        types = dict(AccountSettings.from_env().membership_types)  # the association's own membership names
        export = MijnroodExport(file, encoding, membership_types=types)
        if as_json:
            write_json_report(export, sys.stdout)
        else:
            print_report(export, Console(highlight=False))
    except ExportError as exc:
        fail(f"{file}: {exc}")
    except BrokenPipeError:
        raise  # our reader went away, the file is fine
    except OSError as exc:
        fail(f"{file}: cannot be read ({exc.strerror or exc})")


@main.command()
@click.option("--members", type=click.IntRange(min=0), required=True, help="How many member rows.")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same file.")
@click.option(
    "--invalid-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Share of rows broken on purpose, one defect each.",
)
@click.option("--encoding", type=click.Choice(["utf-8", "utf-8-sig", "cp1252"]), default="utf-8", show_default=True)
@click.option("--delimiter", type=click.Choice([";", ",", "tab"]), default=";", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
def generate(members: int, seed: int, invalid_rate: float, encoding: str, delimiter: str, output: Path) -> None:
    """Write a realistic Mijnrood export made with Faker's Dutch provider."""
    try:
        from verenigingen.mijnrood.generator import generate_export
    except ImportError:
        fail("generate needs Faker: pip install 'verenigingen[standalone]'")
    if not output.parent.is_dir():
        fail(f"{output}: no folder {output.parent} to write it in")
    try:
        broken = generate_export(
            output,
            members,
            seed=seed,
            invalid_rate=invalid_rate,
            encoding=encoding,
            delimiter="\t" if delimiter == "tab" else delimiter,
        )
    except OSError as exc:
        fail(f"{output}: cannot be written ({exc.strerror or exc})")
    click.echo(f"Wrote {members} members ({broken} broken on purpose) to {output}", err=True)


from verenigingen.standalone.accounts_cli import register  # noqa: E402 - the account commands join the group
from verenigingen.standalone.stop_cli import register as register_stop  # noqa: E402

register(main)
register_stop(main)

if __name__ == "__main__":
    main()
