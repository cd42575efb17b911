"""An administrator's retry of failed requests, after fixing what made them fail."""

from collections import Counter
from dataclasses import dataclass, field

from verenigingen.accounts.dispatch import dispatch_after_commit, dispatch_due_work
from verenigingen.accounts.eligibility import Refusal
from verenigingen.accounts.errors import ConflictError, ValidationFailed
from verenigingen.accounts.permissions import BULK_ROLES, require_any_role
from verenigingen.accounts.ports import AuditEntry, Host, RequestView
from verenigingen.accounts.states import RequestStatus, TrackerStatus
from verenigingen.accounts.trackers import REQUEST, TRACKER
from verenigingen.text import Text


@dataclass
class RetryReport:
    retried: int = 0
    refused: list[Refusal] = field(default_factory=list)  # failed requests left as they are, and why


def retry_failed_requests(host: Host, actor: str, tracker: str | None = None, only: str | None = None) -> RetryReport:
    """Failed requests (of one tracker, or all, or only the one named ``only``) Queued again, their
    trackers reopened and audited.

    Per member only its newest failed request is retried; a member that has a user or an open request
    by now keeps its failed requests as they are. Each refusal is reported, never raised.
    """
    store, now, report = host.store, host.clock(), RetryReport()
    with store.transaction():
        require_any_role(actor, store.roles_of(actor), BULK_ROLES, Text("retry failed account requests"))
        failed = store.failed_requests(tracker)
        if only is not None:
            named = next((r for r in failed if r.name == only), None)
            if named is None:
                return RetryReport(
                    refused=[Refusal("", "not_failed", Text("request {request} has not failed", request=only))]
                )
            failed = [r for r in failed if r.source_record == named.source_record]  # the newest rule holds
        members = store.get_members([r.source_record for r in failed])
        busy = store.members_with_open_request([r.source_record for r in failed])
        newest: dict[str, RequestView] = {}
        for request in failed:  # oldest first: the last one seen per member is its newest
            if request.source_record in newest:
                older = newest[request.source_record]
                report.refused.append(_refusal(older, "older_request", Text("a newer one of its member is retried")))
            newest[request.source_record] = request
        retried: list[RequestView] = []
        for request in newest.values():
            member = members.get(request.source_record)
            if member is None:
                report.refused.append(_refusal(request, "not_found", Text("its member no longer exists")))
            elif member.user:
                report.refused.append(_refusal(request, "has_user", Text("its member has a user account by now")))
            elif request.source_record in busy:
                report.refused.append(_refusal(request, "open_request", Text("its member has an open request by now")))
            elif _requeue(host, request):
                retried.append(request)
            else:
                report.refused.append(_refusal(request, "changed", Text("it was retried or changed meanwhile")))
        report.retried = len(retried)
        entries = [
            AuditEntry(REQUEST, r.name, RequestStatus.FAILED, RequestStatus.QUEUED, actor, Text("retried"))
            for r in retried
        ]
        for name, count in Counter(r.tracker for r in retried if r.tracker).items():
            before = _reopen(host, name, count)
            if before != TrackerStatus.PROCESSING:
                entries.append(
                    AuditEntry(
                        TRACKER, name, before, TrackerStatus.PROCESSING, actor, Text("{count} retried", count=count)
                    )
                )
        store.add_audit(entries, now)
    dispatch_after_commit(host, dispatch_due_work)
    return report


def _reopen(host: Host, tracker: str, retried: int) -> str | None:
    """Reopen from the status it really has (the last batch may complete it at this very moment); the
    status it had, for the audit trail."""
    for _ in range(10):  # each miss means the status moved on just now; it settles at once
        view = host.store.get_tracker(tracker)
        if view is None:
            return None
        if host.store.reopen_tracker(tracker, retried, view.status, host.clock()):
            return view.status
    raise ConflictError("the operation's status kept changing while it was reopened")


def _requeue(host: Host, request: RequestView) -> bool:
    try:
        return host.store.requeue_request(
            request.name, RequestStatus.FAILED, None, 0, request.job_generation + 1, None, None, None
        )
    except ValidationFailed:  # an open request appeared for the member since we looked
        return False


def _refusal(request: RequestView, code: str, why: str) -> Refusal:
    return Refusal(
        request.source_record, code, Text("request {request} not retried: {why}", request=request.name, why=why)
    )
