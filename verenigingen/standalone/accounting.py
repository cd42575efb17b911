"""Every member of an import accounted for: the members that got no account request, and why.

The engine already says why it refused each member (``eligibility.Refusal``); without this an operator
saw only how many were requested and had to query the database for the rest. The file names members by
Lidnr. and record name only: no e-mail addresses, names or other personal data.
"""

import csv
import os
from dataclasses import dataclass
from pathlib import Path

from verenigingen.accounts.eligibility import Refusal, refused_counts
from verenigingen.standalone import backlog
from verenigingen.standalone.host import StandaloneHost
from verenigingen.standalone.importer import ImportResult

COLUMNS = ("Lidnr.", "member", "code", "reason")
REASONS = {
    "no_email": "without e-mail",
    "not_eligible": "with a status that gets no account",
    "has_user": "with an account already",
    "open_request": "with an account request still open",
    "email_taken": "whose e-mail address belongs to another user",
    "not_found": "no longer found",
}


def refused_line(counts: dict[str, int]) -> str | None:
    if not counts:
        return None
    return "Not requested: " + ", ".join(f"{count} {REASONS.get(code, code)}" for code, count in counts.items())


def write_refusals(shost: StandaloneHost, refusals: list[Refusal], source: Path, import_name: str) -> Path:
    """Beside the rejected rows, created readable by its owner only (as they are), one line per member."""
    with shost.store.transaction(readonly=True):
        found = shost.store.get_members([refusal.member for refusal in refusals])
    folder = shost.environment.home / "rejected"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / f"{source.stem}-no-account-{import_name}.csv"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600)
    os.fchmod(descriptor, 0o600)  # an older file of the same name keeps its mode through O_TRUNC
    with open(descriptor, "w", encoding="utf-8-sig", newline="") as stream:
        writer = csv.writer(stream, delimiter=";")
        writer.writerow(COLUMNS)
        for refusal in refusals:
            member = found.get(refusal.member)
            member_id = member.member_id if member and member.member_id else refusal.member
            writer.writerow([member_id, refusal.member, refusal.code, refusal.message])
    return path


def account_refusals(shost: StandaloneHost, result: ImportResult, source: Path) -> dict:
    """``refused`` (counts per reason code) and ``refused_file`` for the import's report."""
    refusals = result.accounts.validation_errors if result.accounts else []
    written = write_refusals(shost, refusals, source, result.name) if refusals else None
    return {"refused": refused_counts(refusals), "refused_file": str(written) if written else None}


@dataclass(frozen=True)
class ImportNotes:
    accounts: dict  # joins the report's "accounts": refused, refused_file, unsent
    lines: list[str]  # for the text report
    warning: str | None  # for stderr: nobody will run the requests


def import_notes(
    shost: StandaloneHost, result: ImportResult, source: Path, accounts: bool, waited: bool
) -> ImportNotes:
    """What an import's report adds about accounts: who got none and why, what waits for a sweep, and
    whether any worker will run what was requested."""
    summary = account_refusals(shost, result, source)
    lines = [refused_line(summary["refused"])]
    if summary["refused_file"]:
        lines.append(f"Members not requested, with the reason: {summary['refused_file']}")
    found = backlog.unsent(shost) if accounts else backlog.Unsent()
    lines.append(backlog.unsent_line(shost, found))
    requested = result.accounts is not None and result.accounts.tracker is not None
    warning = backlog.no_worker_warning(shost) if accounts and not waited and (requested or found.requests) else None
    return ImportNotes(
        {**summary, "unsent": found.requests},
        [line for line in lines if line],
        f"{warning} (or use `import --wait`)" if warning else None,
    )
