"""How fast the Mijnrood reader validates, and whether its memory stays flat.

    .venv/bin/python benchmarks/validate_throughput.py [--members 100000] [--repeat 3]

Prints rows/s for the reader against a baseline measured in the same run (csv.reader alone, which
no validating reader can beat), the end-to-end `validate --json` command, and peak memory at a
tenth and at all of the rows. Target on a 2-core machine: 20,000 rows/s with flat memory.
"""

import argparse
import csv
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from verenigingen.mijnrood import MijnroodExport
from verenigingen.mijnrood.generator import generate_export

TARGET_ROWS_PER_SECOND = 20_000


def timed(function, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return times


def csv_only(path: Path) -> None:
    with path.open(encoding="utf-8-sig", newline="") as stream:
        for _ in csv.reader(stream, delimiter=";"):
            pass


def reader(path: Path) -> None:
    for _ in MijnroodExport(path):
        pass


def traced_peak_mb(path: Path) -> float:
    tracemalloc.start()
    reader(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 1e6


# Runs the CLI and reports its own peak RSS (VmHWM starts afresh at exec, unlike ru_maxrss).
_CLI_WITH_PEAK = """
import atexit, sys
from verenigingen.standalone.cli import main
def peak():
    status = open("/proc/self/status").read()
    print(int(status.split("VmHWM:")[1].split()[0]) / 1024, file=sys.stderr)
atexit.register(peak)
sys.argv = ["verenigingen", "validate", sys.argv[1], "--json"]
main()
"""


def cli_json(path: Path) -> tuple[float, float]:
    """Seconds and peak RSS (MB) of `verenigingen validate --json` in a fresh process."""
    start = time.perf_counter()
    command = [sys.executable, "-c", _CLI_WITH_PEAK, str(path)]
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=True)
    return time.perf_counter() - start, float(done.stderr.split()[-1])


def line(label: str, value: str) -> None:
    print(f"  {label:<44} {value}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows = args.members

    with tempfile.TemporaryDirectory() as folder:
        full, tenth = Path(folder) / "full.csv", Path(folder) / "tenth.csv"
        start = time.perf_counter()
        broken = generate_export(full, rows, seed=1, invalid_rate=0.05)
        generated = time.perf_counter() - start
        generate_export(tenth, rows // 10, seed=1, invalid_rate=0.05)

        baseline = timed(lambda: csv_only(full), args.repeat)
        validated = timed(lambda: reader(full), args.repeat)
        cli_seconds, cli_rss = cli_json(full)
        _, cli_rss_tenth = cli_json(tenth)
        peak_full, peak_tenth = traced_peak_mb(full), traced_peak_mb(tenth)

    median, base = statistics.median(validated), statistics.median(baseline)
    growth = (peak_full - peak_tenth) / (rows * 0.9 / 1000)
    print(f"Mijnrood validation, {rows:,} generated rows ({broken:,} broken), {args.repeat} runs")
    line("baseline: csv.reader alone", f"{rows / base:>10,.0f} rows/s")
    line("reader: read + normalise + validate (median)", f"{rows / median:>10,.0f} rows/s")
    line("reader: best run", f"{rows / min(validated):>10,.0f} rows/s")
    line("reader cost per row", f"{median / rows * 1e6:>10.1f} µs ({median / base:.1f}x the baseline)")
    line("`validate --json` end to end", f"{rows / cli_seconds:>10,.0f} rows/s ({cli_seconds:.1f} s)")
    line(f"`validate --json` peak RSS, {rows // 10:,} rows", f"{cli_rss_tenth:>10.1f} MB")
    line(f"`validate --json` peak RSS, {rows:,} rows", f"{cli_rss:>10.1f} MB")
    line(f"reader Python heap peak, {rows // 10:,} rows", f"{peak_tenth:>10.2f} MB")
    line(f"reader Python heap peak, {rows:,} rows", f"{peak_full:>10.2f} MB")
    line("heap growth per 1,000 rows (duplicate keys)", f"{growth:>10.3f} MB")
    line("generating the export", f"{rows / generated:>10,.0f} rows/s")
    verdict = "met" if rows / median >= TARGET_ROWS_PER_SECOND else "NOT met"
    print(f"Target {TARGET_ROWS_PER_SECOND:,} rows/s: {verdict}")
    print(f"(max RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)")


if __name__ == "__main__":
    main()
