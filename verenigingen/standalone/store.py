"""The Store port on SQLAlchemy Core: SQLite by default, MariaDB or PostgreSQL by URL."""

import os
import threading
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone

from sqlalchemy import and_, case, create_engine, event, func, insert, or_, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from verenigingen.accounts.errors import DuplicateUserError, RetryableError, ValidationFailed
from verenigingen.accounts.ports import (
    AuditEntry,
    MemberView,
    NewRequest,
    NewTracker,
    RequestView,
    TrackerView,
    UserView,
)
from verenigingen.accounts.states import RequestStatus, TrackerStatus
from verenigingen.standalone.schema import (
    account_creation_requests as requests_t,
)
from verenigingen.standalone.schema import (
    audit_log,
    bulk_operation_trackers,
    members,
    metadata,
    user_roles,
    users,
)

_PASSING_DB_ERRORS = {
    1205: "lock wait timeout",
    1213: "deadlock",
    2006: "server gone away",
    2013: "lost connection",
    1040: "too many connections",
    2003: "cannot connect",
}


def new_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def make_engine(url: str) -> Engine:
    """An engine tuned for many short transactions from several worker processes."""
    engine = _create(url)
    # RQ forks a work horse per job: the child must open connections of its own, never share the parent's.
    os.register_at_fork(after_in_child=lambda: engine.dispose(close=False))
    return engine


def _create(url: str) -> Engine:
    # hide_parameters: a database error must never carry a member's data into a message or a log.
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 60}, hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_connection, _record):
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=60000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(connection):
            # Writers take the write lock up front (no lock-upgrade deadlocks); readers never wait for it.
            readonly = connection.get_execution_options().get("readonly", False)
            connection.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

        return engine
    return create_engine(url, isolation_level="READ COMMITTED", pool_pre_ping=True, hide_parameters=True)


def _as_retryable(exc: DBAPIError) -> RetryableError | None:
    """A database error worth retrying, described without the statement or its parameters."""
    code = getattr(exc.orig, "args", [None])[0]
    if isinstance(code, int) and code in _PASSING_DB_ERRORS:
        return RetryableError(f"database: {_PASSING_DB_ERRORS[code]}")
    if isinstance(exc, OperationalError) and "locked" in str(exc.orig):
        return RetryableError("database: locked")
    if isinstance(exc, OperationalError) or exc.connection_invalidated:
        return RetryableError(f"database: {type(exc.orig).__name__}")
    return None


class SqlStore:
    """Implements :class:`verenigingen.accounts.ports.Store`. One connection per transaction and thread."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._local = threading.local()

    @classmethod
    def from_url(cls, url: str, create: bool = True) -> "SqlStore":
        store = cls(make_engine(url))
        if create:
            metadata.create_all(store.engine)
        return store

    @contextmanager
    def transaction(self, readonly: bool = False) -> Iterator[None]:
        if getattr(self._local, "connection", None) is not None:
            raise RuntimeError("transactions do not nest")
        try:
            with self.engine.connect() as connection, connection.execution_options(readonly=readonly).begin():
                self._local.connection = connection
                yield
        except DBAPIError as exc:
            if isinstance(exc, IntegrityError):
                raise
            retryable = _as_retryable(exc)
            if retryable is None:
                raise
            raise retryable from exc
        finally:
            self._local.connection = None

    @property
    def db(self) -> Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            raise RuntimeError("store used outside a transaction")
        return connection

    # people
    def roles_of(self, user: str) -> set[str]:
        return set(self.db.scalars(select(user_roles.c.role).where(user_roles.c.user == user)))

    def add_roles(self, user: str, roles: Iterable[str]) -> None:
        rows = [{"user": user, "role": role} for role in roles]
        if rows:
            self.db.execute(insert(user_roles), rows)

    def get_members(self, names: Iterable[str]) -> dict[str, MemberView]:
        names = list(names)
        found: dict[str, MemberView] = {}
        for start in range(0, len(names), 500):
            rows = self.db.execute(
                select(
                    members.c.name,
                    members.c.member_id,
                    members.c.email,
                    members.c.full_name,
                    members.c.status,
                    members.c.user,
                ).where(members.c.name.in_(names[start : start + 500]))
            )
            found.update((row.name, MemberView(*row)) for row in rows)
        return found

    def members_with_open_request(self, names: Iterable[str]) -> set[str]:
        names = list(names)
        found: set[str] = set()
        for start in range(0, len(names), 500):
            found.update(
                self.db.scalars(
                    select(requests_t.c.open_for_member).where(
                        requests_t.c.open_for_member.in_(names[start : start + 500])
                    )
                )
            )
        return found

    def find_user(self, email: str) -> UserView | None:
        row = self.db.execute(
            select(users.c.name, users.c.email, users.c.full_name, users.c.member).where(users.c.email == email)
        ).first()
        return UserView(*row) if row else None

    def create_user(self, email, full_name, roles, role_profile, member, by) -> str:
        try:
            with self.db.begin_nested():
                self.db.execute(
                    insert(users).values(
                        name=email,
                        email=email,
                        full_name=full_name,
                        enabled=1,
                        role_profile=role_profile,
                        member=member,
                        created_by=by,
                        creation=datetime.now(timezone.utc).replace(tzinfo=None),
                    )
                )
                self.add_roles(email, roles)
        except IntegrityError:
            raise DuplicateUserError("a user with this e-mail address (or for this member) already exists") from None
        return email

    def link_member(self, member: str, user: str) -> None:
        self.db.execute(update(members).where(members.c.name == member).values(user=user))
        self.db.execute(update(users).where(users.c.name == user, users.c.member.is_(None)).values(member=member))

    # requests
    def insert_requests(self, new: list[NewRequest], now: datetime) -> list[str]:
        rows = [
            {
                "name": new_name("ACR"),
                "request_type": r.request_type,
                "source_record": r.source_record,
                "open_for_member": r.source_record,
                "email": r.email,
                "full_name": r.full_name,
                "status": RequestStatus.QUEUED,
                "pipeline_stage": "Queued",
                "priority": r.priority,
                "roles": "\n".join(r.roles),
                "role_profile": r.role_profile,
                "bulk_operation_tracker": r.tracker,
                "batch_number": r.batch_number,
                "retry_count": 0,
                "requested_by": r.requested_by,
                "creation": now,
            }
            for r in new
        ]
        if rows:
            try:
                self.db.execute(insert(requests_t), rows)
            except IntegrityError:
                raise ValidationFailed("a member already has an open account request") from None
        return [row["name"] for row in rows]

    _REQUEST_COLUMNS = (
        requests_t.c.name,
        requests_t.c.request_type,
        requests_t.c.source_record,
        requests_t.c.email,
        requests_t.c.full_name,
        requests_t.c.status,
        requests_t.c.roles,
        requests_t.c.role_profile,
        requests_t.c.bulk_operation_tracker,
        requests_t.c.batch_number,
        requests_t.c.retry_count,
        requests_t.c.requested_by,
        requests_t.c.error_category,
        requests_t.c.failure_reason,
        requests_t.c.created_user,
    )

    @staticmethod
    def _request_view(row) -> RequestView:
        values = list(row)
        values[6] = tuple(filter(None, values[6].split("\n")))
        return RequestView(*values)

    def _requests_where(self, *conditions) -> list[RequestView]:
        rows = self.db.execute(select(*self._REQUEST_COLUMNS).where(*conditions).order_by(requests_t.c.creation))
        return [self._request_view(row) for row in rows]

    def get_request(self, name: str) -> RequestView | None:
        found = self._requests_where(requests_t.c.name == name)
        return found[0] if found else None

    def batch_requests(self, tracker: str, batch_number: int) -> list[str]:
        return list(
            self.db.scalars(
                select(requests_t.c.name)
                .where(
                    requests_t.c.bulk_operation_tracker == tracker,
                    requests_t.c.batch_number == batch_number,
                    requests_t.c.status == RequestStatus.QUEUED,
                )
                .order_by(requests_t.c.name)
            )
        )

    @staticmethod
    def _due(now: datetime):
        return and_(
            requests_t.c.status == RequestStatus.QUEUED,
            or_(requests_t.c.next_retry_at.is_(None), requests_t.c.next_retry_at <= now),
        )

    def claim_request(self, name, worker, now, lease_until) -> RequestView | None:
        claimed = self.db.execute(
            update(requests_t)
            .where(requests_t.c.name == name, self._due(now))
            .values(
                status=RequestStatus.PROCESSING,
                pipeline_stage="Creating user",
                processed_by=worker,
                started_at=now,
                lease_expires_at=lease_until,
            )
        )
        return self.get_request(name) if claimed.rowcount == 1 else None

    @staticmethod
    def _held(name: str, status: str, owner: str | None):
        condition = and_(requests_t.c.name == name, requests_t.c.status == status)
        return condition if owner is None else and_(condition, requests_t.c.processed_by == owner)

    def finish_request(
        self, name, worker, status, now, created_user=None, error_category=None, failure_reason=None
    ) -> bool:
        done = self.db.execute(
            update(requests_t)
            .where(self._held(name, RequestStatus.PROCESSING, worker))
            .values(
                status=status,
                pipeline_stage=status,
                open_for_member=None,
                completed_at=now,
                lease_expires_at=None,
                created_user=created_user,
                error_category=error_category,
                failure_reason=failure_reason,
            )
        )
        return done.rowcount == 1

    def requeue_request(self, name, from_status, owner, retry_count, next_retry_at, category, reason) -> bool:
        done = self.db.execute(
            update(requests_t)
            .where(self._held(name, from_status, owner))
            .values(
                status=RequestStatus.QUEUED,
                pipeline_stage="Waiting to retry",
                open_for_member=requests_t.c.source_record,
                retry_count=retry_count,
                job_generation=requests_t.c.job_generation + 1,
                next_retry_at=next_retry_at,
                lease_expires_at=None,
                completed_at=None,
                error_category=category,
                failure_reason=reason,
            )
        )
        return done.rowcount == 1

    def stale_requests(self, now: datetime) -> list[RequestView]:
        return self._requests_where(
            requests_t.c.status == RequestStatus.PROCESSING, requests_t.c.lease_expires_at < now
        )

    def due_batches(self, now: datetime) -> list[tuple[str, int, int]]:
        r = requests_t.c
        rows = self.db.execute(
            select(r.bulk_operation_tracker, r.batch_number, func.max(r.job_generation))
            .where(self._due(now), r.bulk_operation_tracker.is_not(None))
            .group_by(r.bulk_operation_tracker, r.batch_number)
        )
        return sorted((tracker, batch, generation) for tracker, batch, generation in rows)

    def due_individual_requests(self, now: datetime) -> list[tuple[str, int]]:
        r = requests_t.c
        rows = self.db.execute(
            select(r.name, r.job_generation).where(self._due(now), r.bulk_operation_tracker.is_(None))
        )
        return [(name, generation) for name, generation in rows]

    def next_generation(self, tracker: str | None, batch_or_request, generation: int) -> bool:
        r = requests_t.c
        which = (
            and_(r.bulk_operation_tracker == tracker, r.batch_number == batch_or_request)
            if tracker
            else r.name == batch_or_request
        )
        done = self.db.execute(
            update(requests_t)
            .where(which, r.status == RequestStatus.QUEUED, r.job_generation == generation)
            .values(job_generation=generation + 1)
        )
        return done.rowcount > 0

    def failed_requests(self, tracker: str | None) -> list[RequestView]:
        condition = requests_t.c.status == RequestStatus.FAILED
        if tracker is not None:
            condition = and_(condition, requests_t.c.bulk_operation_tracker == tracker)
        return self._requests_where(condition)

    # trackers
    def insert_tracker(self, tracker: NewTracker, now: datetime) -> str:
        name = new_name("BOT")
        self.db.execute(
            insert(bulk_operation_trackers).values(
                name=name,
                operation_type=tracker.operation_type,
                source_import=tracker.source_import,
                status=TrackerStatus.QUEUED,
                priority=tracker.priority,
                total_records=tracker.total_records,
                processed_records=0,
                successful_records=0,
                failed_records=0,
                current_batch=0,
                total_batches=tracker.total_batches,
                batch_size=tracker.batch_size,
                requested_by=tracker.requested_by,
                creation=now,
            )
        )
        return name

    def get_tracker(self, name: str) -> TrackerView | None:
        t = bulk_operation_trackers.c
        row = self.db.execute(
            select(
                t.name,
                t.operation_type,
                t.source_import,
                t.status,
                t.total_records,
                t.processed_records,
                t.successful_records,
                t.failed_records,
                t.current_batch,
                t.total_batches,
                t.batch_size,
                t.requested_by,
                t.started_at,
                t.completed_at,
                t.error_summary,
            ).where(t.name == name)
        ).first()
        return TrackerView(*row) if row else None

    def latest_tracker(self) -> str | None:
        t = bulk_operation_trackers.c
        return self.db.scalar(select(t.name).order_by(t.creation.desc()).limit(1))

    def start_tracker(self, name: str, batch_number: int, now: datetime) -> bool:
        t = bulk_operation_trackers.c
        self.db.execute(
            update(bulk_operation_trackers)
            .where(t.name == name, t.current_batch < batch_number)
            .values(current_batch=batch_number)
        )
        started = self.db.execute(
            update(bulk_operation_trackers)
            .where(t.name == name, t.status == TrackerStatus.QUEUED)
            .values(status=TrackerStatus.PROCESSING, started_at=now)
        )
        return started.rowcount == 1

    def add_to_tracker(self, name: str, processed: int, successful: int, failed: int) -> None:
        t = bulk_operation_trackers.c
        self.db.execute(
            update(bulk_operation_trackers)
            .where(t.name == name)
            .values(
                processed_records=t.processed_records + processed,
                successful_records=t.successful_records + successful,
                failed_records=t.failed_records + failed,
            )
        )

    def complete_tracker_if_done(self, name: str, now: datetime, error_summary: str | None) -> bool:
        t = bulk_operation_trackers.c
        done = self.db.execute(
            update(bulk_operation_trackers)
            .where(t.name == name, t.status == TrackerStatus.PROCESSING, t.processed_records >= t.total_records)
            .values(
                status=case((t.successful_records == 0, TrackerStatus.FAILED), else_=TrackerStatus.COMPLETED),
                completed_at=now,
                error_summary=error_summary,
            )
        )
        return done.rowcount == 1

    def shrink_tracker(self, name: str, records: int) -> None:
        t = bulk_operation_trackers.c
        self.db.execute(
            update(bulk_operation_trackers).where(t.name == name).values(total_records=t.total_records - records)
        )

    def unfinished_trackers(self) -> list[str]:
        t = bulk_operation_trackers.c
        return list(
            self.db.scalars(
                select(t.name).where(t.status == TrackerStatus.PROCESSING, t.processed_records >= t.total_records)
            )
        )

    def reopen_tracker(self, name: str, retried: int) -> None:
        t = bulk_operation_trackers.c
        self.db.execute(
            update(bulk_operation_trackers)
            .where(t.name == name)
            .values(
                status=TrackerStatus.PROCESSING,
                completed_at=None,
                processed_records=t.processed_records - retried,
                failed_records=t.failed_records - retried,
            )
        )

    def add_audit(self, entries: list[AuditEntry], now: datetime) -> None:
        if entries:
            self.db.execute(
                insert(audit_log),
                [
                    {
                        "reference_doctype": e.doctype,
                        "reference_name": e.docname,
                        "from_status": e.from_status,
                        "to_status": e.to_status,
                        "changed_by": e.by,
                        "worker": e.worker,
                        "reason": e.reason,
                        "timestamp": now,
                    }
                    for e in entries
                ],
            )

    def count(self, table, *conditions) -> int:
        return self.db.scalar(select(func.count()).select_from(table).where(*conditions))
