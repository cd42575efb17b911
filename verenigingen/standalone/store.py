"""The Store port on SQLAlchemy Core: SQLite by default, MariaDB or PostgreSQL by URL."""

import logging
import os
import threading
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import TYPE_CHECKING, NamedTuple

from sqlalchemy import and_, create_engine, event, func, insert, inspect, literal_column, or_, select, text, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError

from verenigingen.accounts.errors import (
    CONFLICT_CODES,
    CONNECTION_LOST,
    PASSING_CODES,
    ConflictError,
    DatabaseError,
    DuplicateUserError,
    IntegrityConflict,
    RetryableError,
    ValidationFailed,
    database_code,
    ends_job,
    on_database,
    unique_rule_refused,
)
from verenigingen.accounts.ports import (
    AuditEntry,
    MemberView,
    NewRequest,
    NewTracker,
    RequestCounts,
    RequestView,
    TrackerView,
    UserView,
)
from verenigingen.accounts.states import RequestStatus, TrackerStatus
from verenigingen.accounts.trackers import REQUEST
from verenigingen.standalone.schema import (
    account_creation_requests as requests_t,
)
from verenigingen.standalone.schema import (
    audit_log,
    batch_slots,
    bulk_operation_trackers,
    members,
    metadata,
    user_roles,
    users,
)

if TYPE_CHECKING:  # the type checker proves SqlStore keeps the engine's Store contract
    from verenigingen.accounts.ports import Store

log = logging.getLogger(__name__)
MIGRATION_LOCK = "verenigingen_migrate"
# How long one statement waits for a lock. A member's transaction is tried up to conflict_attempts (5)
# times, so its worst case (5 x 15 s plus pauses) stays well inside the claim's lease (lease_seconds, 120).
LOCK_WAIT_SECONDS = 15
# SQLite's wording of passing faults; anything else it says (no such table, malformed, read-only) is permanent.
_SQLITE_CONFLICTS = ("database is locked", "database table is locked", "database schema has changed")


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
        engine = create_engine(url, connect_args={"timeout": LOCK_WAIT_SECONDS}, hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_connection, _record):
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={LOCK_WAIT_SECONDS * 1000}")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(connection):
            # Writers take the write lock up front (no lock-upgrade deadlocks); readers never wait for it.
            readonly = connection.get_execution_options().get("readonly", False)
            connection.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

        return engine
    engine = create_engine(url, isolation_level="READ COMMITTED", pool_pre_ping=True, hide_parameters=True)
    if engine.dialect.name in ("mysql", "mariadb"):

        @event.listens_for(engine, "connect")
        def _mariadb_connect(dbapi_connection, _record):
            with dbapi_connection.cursor() as cursor:
                cursor.execute(f"SET SESSION innodb_lock_wait_timeout = {LOCK_WAIT_SECONDS}")

    return engine


def as_engine_error(exc: DBAPIError) -> Exception:
    """A database error in the engine's terms, described without the statement, its parameters or the
    values a driver quotes ("Duplicate entry '<e-mail>'"): only codes and kinds."""
    code = database_code(exc)
    if isinstance(exc, IntegrityError):
        return IntegrityConflict(unique_rule_refused(code))
    if code in CONFLICT_CODES:
        return ConflictError(on_database(CONFLICT_CODES[code]))
    if code in PASSING_CODES or exc.connection_invalidated:
        return RetryableError(on_database(PASSING_CODES.get(code or 0, CONNECTION_LOST)))
    message = str(getattr(exc, "orig", exc)).lower()
    if any(phrase in message for phrase in _SQLITE_CONFLICTS):
        return ConflictError("database: locked")
    kind = f"error {code}" if code is not None else message.split(":")[0][:60]
    log.error("database refused (%s, %s): not retried", type(getattr(exc, "orig", exc)).__name__, kind)
    return DatabaseError(f"database: {kind} ({type(getattr(exc, 'orig', exc)).__name__})")


class SchemaOutdated(RuntimeError):
    """The database was made by an older version of the app: its tables lack columns this one needs."""


def _missing_tables(connection: Connection) -> list[str]:
    return [table.name for table in metadata.sorted_tables if not inspect(connection).has_table(table.name)]


def _refuse_an_older_schema(connection: Connection) -> None:
    """create_all never changes a table that exists: say so plainly instead of failing on every query."""
    found = inspect(connection)
    missing = [
        f"{table.name}.{column.name}"
        for table in metadata.sorted_tables
        if found.has_table(table.name)
        for column in table.columns
        if column.name not in {c["name"] for c in found.get_columns(table.name)}
    ]
    if missing:
        raise SchemaOutdated(
            f"the database was created by an older version (it lacks {', '.join(missing[:5])}); "
            "move it aside (or delete the data folder) and run again"
        )


class OpenGroup(NamedTuple):
    """Open requests of one batch (or of the individual path: no tracker, no batch) in one state."""

    tracker: str | None
    batch: int | None
    state: str  # requested, due, retry (due later), processing, abandoned (its lease ran out)
    requests: int
    next_retry_at: datetime | None  # the earliest, for retries
    generation: int  # the newest job generation: the job that should carry them


class SqlStore:
    """Implements :class:`verenigingen.accounts.ports.Store`. One connection per transaction and thread."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._local = threading.local()

    @classmethod
    def from_url(cls, url: str, migrate: bool = True) -> "SqlStore":
        store = cls(make_engine(url))
        if migrate:
            store.migrate()
        return store

    def migrate(self) -> None:
        """Create what is missing, once: under a database lock, so that six workers starting together on
        a fresh database all come up (the others wait, then find the tables there). A database that has
        every table is only read: a worker joining a busy SQLite file never queues for its write lock."""
        with self.engine.connect() as connection:
            if not _missing_tables(connection):
                _refuse_an_older_schema(connection)
                return
            connection.rollback()
            if connection.dialect.name in ("mysql", "mariadb"):
                if connection.exec_driver_sql(f"SELECT GET_LOCK('{MIGRATION_LOCK}', 120)").scalar() != 1:
                    raise RetryableError("database: another process is creating the tables")
                try:
                    metadata.create_all(connection)
                    connection.commit()
                finally:
                    connection.exec_driver_sql(f"SELECT RELEASE_LOCK('{MIGRATION_LOCK}')")
            elif connection.dialect.name == "postgresql":
                with connection.begin():
                    connection.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": MIGRATION_LOCK})
                    metadata.create_all(connection)
            else:  # SQLite: BEGIN IMMEDIATE (see _create) holds the write lock; its DDL is transactional
                with connection.begin():
                    metadata.create_all(connection)
            _refuse_an_older_schema(connection)

    @contextmanager
    def transaction(self, readonly: bool = False) -> Iterator[None]:
        if getattr(self._local, "connection", None) is not None:
            raise RuntimeError("transactions do not nest")
        try:
            with self.engine.connect() as connection, connection.execution_options(readonly=readonly).begin():
                self._local.connection = connection
                yield
        except DBAPIError as exc:
            # Without the driver's error in the printed chain: its message may quote a value (a duplicate
            # e-mail, a malformed name). Unless a job's timeout broke the connection: that is worth showing.
            raise as_engine_error(exc) from (exc if ends_job(exc) else None)
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

    _MEMBER_COLUMNS = (
        members.c.name,
        members.c.member_id,
        members.c.email,
        members.c.full_name,
        members.c.status,
        members.c.user,
    )

    def get_members(self, names: Iterable[str]) -> dict[str, MemberView]:
        names = list(names)
        found: dict[str, MemberView] = {}
        for start in range(0, len(names), 500):
            rows = self.db.execute(select(*self._MEMBER_COLUMNS).where(members.c.name.in_(names[start : start + 500])))
            found.update((row.name, MemberView(*row)) for row in rows)
        return found

    def lock_member(self, name: str) -> MemberView | None:
        # FOR UPDATE on MariaDB and PostgreSQL; SQLite writers already hold the database's write lock.
        row = self.db.execute(select(*self._MEMBER_COLUMNS).where(members.c.name == name).with_for_update()).first()
        return MemberView(*row) if row else None

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

    def create_user(
        self,
        email: str,
        full_name: str,
        roles: tuple[str, ...],
        role_profile: str | None,
        member: str,
        by: str,
    ) -> str:
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

    def grant_roles(self, user: str, roles: tuple[str, ...], role_profile: str | None, by: str) -> None:
        self.add_roles(user, set(roles) - self.roles_of(user))
        if role_profile:
            self.db.execute(update(users).where(users.c.name == user).values(role_profile=role_profile))

    def link_member(self, member: str, user: str, by: str) -> None:
        self.db.execute(update(members).where(members.c.name == member).values(user=user))
        self.db.execute(update(users).where(users.c.name == user, users.c.member.is_(None)).values(member=member))

    # requests
    def insert_requests(self, requests: list[NewRequest], status: str, now: datetime) -> list[str]:
        rows = [
            {
                "name": new_name("ACR"),
                "request_type": r.request_type,
                "source_record": r.source_record,
                "open_for_member": r.source_record,
                "email": r.email,
                "full_name": r.full_name,
                "status": status,
                "pipeline_stage": status,
                "priority": r.priority,
                "roles": "\n".join(r.roles),
                "role_profile": r.role_profile,
                "bulk_operation_tracker": r.tracker,
                "batch_number": r.batch_number,
                "retry_count": 0,
                "requested_by": r.requested_by,
                "creation": now,
            }
            for r in requests
        ]
        if rows:
            try:
                self.db.execute(insert(requests_t), rows)
            except IntegrityError:
                raise ValidationFailed("a member already has an open account request") from None
        return [str(row["name"]) for row in rows]

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
        requests_t.c.job_generation,
        requests_t.c.processed_by,
        requests_t.c.lease_expires_at,
        requests_t.c.creation,
    )

    @staticmethod
    def _request_view(row) -> RequestView:
        values = list(row)
        values[6] = tuple(filter(None, values[6].split("\n")))
        return RequestView(*values)

    def _requests_where(self, *conditions) -> list[RequestView]:
        rows = self.db.execute(
            select(*self._REQUEST_COLUMNS).where(*conditions).order_by(requests_t.c.creation, requests_t.c.name)
        )
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

    def claim_request(self, name: str, worker: str, now: datetime, lease_until: datetime) -> RequestView | None:
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
    def _held(
        name: str, status: str, owner: str | None, expired_before: datetime | None, alive_at: datetime | None = None
    ):
        condition = and_(requests_t.c.name == name, requests_t.c.status == status)
        if owner is not None:
            condition = and_(condition, requests_t.c.processed_by == owner)
        if expired_before is not None:
            condition = and_(condition, requests_t.c.lease_expires_at < expired_before)
        if alive_at is not None:
            condition = and_(condition, requests_t.c.lease_expires_at >= alive_at)
        return condition

    def finish_request(
        self,
        name: str,
        worker: str | None,
        status: str,
        now: datetime,
        created_user: str | None = None,
        error_category: str | None = None,
        failure_reason: str | None = None,
        lease_expired_before: datetime | None = None,
    ) -> bool:
        done = self.db.execute(
            update(requests_t)
            .where(
                self._held(
                    name, RequestStatus.PROCESSING, worker, lease_expired_before, now if worker is not None else None
                )
            )
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

    def requeue_request(
        self,
        name: str,
        from_status: str,
        owner: str | None,
        retry_count: int,
        generation: int,
        next_retry_at: datetime | None,
        category: str | None,
        reason: str | None,
        lease_expired_before: datetime | None = None,
    ) -> bool:
        statement = (
            update(requests_t)
            .where(self._held(name, from_status, owner, lease_expired_before))
            .values(
                status=RequestStatus.QUEUED,
                pipeline_stage="Waiting to retry" if next_retry_at else RequestStatus.QUEUED,
                open_for_member=requests_t.c.source_record,
                retry_count=retry_count,
                job_generation=generation,
                next_retry_at=next_retry_at,
                lease_expires_at=None,
                completed_at=None,
                error_category=category,
                failure_reason=reason,
            )
        )
        try:
            with self.db.begin_nested():  # a collision must not spoil the caller's transaction
                done = self.db.execute(statement)
        except IntegrityError:
            raise ValidationFailed("the member already has an open account request") from None
        return done.rowcount == 1

    def stale_requests(self, now: datetime) -> list[RequestView]:
        return self._requests_where(
            requests_t.c.status == RequestStatus.PROCESSING, requests_t.c.lease_expires_at < now
        )

    def individual_requests_running(self, now: datetime) -> int:
        r = requests_t.c
        statement = select(func.count()).where(
            r.status == RequestStatus.PROCESSING, r.bulk_operation_tracker.is_(None), r.lease_expires_at >= now
        )
        return int(self.db.scalar(statement) or 0)

    def defer_batch(self, tracker: str, batch_number: int, until: datetime) -> int:
        c = requests_t.c
        statement = (
            update(requests_t)
            .where(c.bulk_operation_tracker == tracker, c.batch_number == batch_number)
            .where(c.status == RequestStatus.QUEUED, or_(c.next_retry_at.is_(None), c.next_retry_at < until))
            .values(next_retry_at=until, pipeline_stage="Waiting to retry")
        )
        return self.db.execute(statement).rowcount

    def due_batches(self, now: datetime, limit: int | None = None) -> list[tuple[str, int, int]]:
        r = requests_t.c
        query = (
            select(r.bulk_operation_tracker, r.batch_number, func.max(r.job_generation))
            .where(self._due(now), r.bulk_operation_tracker.is_not(None))
            .group_by(r.bulk_operation_tracker, r.batch_number)
            .order_by(func.min(r.creation), r.bulk_operation_tracker, r.batch_number)
            .limit(limit)
        )
        return [(tracker, batch, generation) for tracker, batch, generation in self.db.execute(query)]

    def due_individual_requests(self, now: datetime, limit: int | None = None) -> list[tuple[str, int]]:
        r = requests_t.c
        rows = self.db.execute(
            select(r.name, r.job_generation)
            .where(self._due(now), r.bulk_operation_tracker.is_(None))
            .order_by(r.creation, r.name)
            .limit(limit)
        )
        return [(name, generation) for name, generation in rows]

    def next_generation(self, tracker: str | None, batch_or_request: int | str, generation: int) -> bool:
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

    def request_counts(self, tracker: str, now: datetime) -> RequestCounts:
        r = requests_t.c
        later, expired = (r.next_retry_at > now).label("later"), (r.lease_expires_at < now).label("expired")
        rows = self.db.execute(
            select(r.status, later, expired, func.count(), func.min(r.next_retry_at), func.max(r.next_retry_at))
            .where(r.bulk_operation_tracker == tracker, r.status.in_(RequestStatus.OPEN))
            .group_by(r.status, literal_column("later"), literal_column("expired"))
        ).all()
        counts = dict.fromkeys(("requested", "due", "waiting", "processing", "abandoned"), 0)
        next_retry = due_since = None
        for status, later, expired, count, earliest, latest in rows:
            if status == RequestStatus.REQUESTED:
                counts["requested"] += count
            elif status == RequestStatus.PROCESSING:
                counts["abandoned" if expired else "processing"] += count
            elif later:
                counts["waiting"] += count
                next_retry = earliest if next_retry is None else min(next_retry, earliest)
            else:
                counts["due"] += count
                if latest is not None:
                    due_since = latest if due_since is None else max(due_since, latest)
        return RequestCounts(**counts, next_retry_at=next_retry, due_since=due_since)

    def open_request_groups(self, now: datetime) -> list[OpenGroup]:
        """Every open request counted per batch and state: what ``waiting`` lists, and what tells work no
        job carries from work that waits its turn."""
        r = requests_t.c
        later, expired = (r.next_retry_at > now).label("later"), (r.lease_expires_at < now).label("expired")
        rows = self.db.execute(
            select(
                r.bulk_operation_tracker,
                r.batch_number,
                r.status,
                later,
                expired,
                func.count(),
                func.min(r.next_retry_at),
                func.max(r.job_generation),
            )
            .where(r.status.in_(RequestStatus.OPEN))
            .group_by(
                r.bulk_operation_tracker, r.batch_number, r.status, literal_column("later"), literal_column("expired")
            )
        ).all()
        groups: dict[tuple, OpenGroup] = {}
        for tracker, batch, status, later, expired, count, earliest, generation in rows:
            if status != RequestStatus.QUEUED:
                state = "requested" if status == RequestStatus.REQUESTED else "abandoned" if expired else "processing"
                earliest = None
            else:
                state, earliest = ("retry", earliest) if later else ("due", None)
            key = (tracker, batch, state)
            if key in groups:
                seen = groups[key]
                earliest = min(filter(None, (earliest, seen.next_retry_at)), default=None)
                count, generation = count + seen.requests, max(generation, seen.generation)
            groups[key] = OpenGroup(tracker, batch, state, count, earliest, generation)
        return list(groups.values())

    def request_status(self, name: str) -> dict | None:
        """One request as an operator reads it: where it is, its member (and Lidnr.), how many times a
        worker took it up. No e-mail address or name."""
        r = requests_t.c
        row = (
            self.db.execute(
                select(
                    r.name,
                    r.status,
                    r.pipeline_stage,
                    r.source_record,
                    members.c.member_id,
                    r.bulk_operation_tracker,
                    r.batch_number,
                    r.retry_count,
                    r.error_category,
                    r.failure_reason,
                    r.next_retry_at,
                    r.processed_by,
                    r.lease_expires_at,
                    r.creation,
                    r.completed_at,
                )
                .select_from(requests_t.outerjoin(members, members.c.name == r.source_record))
                .where(r.name == name)
            )
            .mappings()
            .first()
        )
        if row is None:
            return None
        a = audit_log.c
        picked_up = (a.reference_doctype == REQUEST, a.reference_name == name, a.to_status == RequestStatus.PROCESSING)
        return {**row, "attempts": self.count(audit_log, *picked_up)}

    def queue_requested(self, tracker: str) -> list[str]:
        r = requests_t.c
        which = and_(r.bulk_operation_tracker == tracker, r.status == RequestStatus.REQUESTED)
        names = list(self.db.scalars(select(r.name).where(which).order_by(r.name)))
        for start in range(0, len(names), 500):  # exactly the names returned, even if one was added meanwhile
            chunk = names[start : start + 500]
            self.db.execute(
                update(requests_t)
                .where(which, r.name.in_(chunk))
                .values(status=RequestStatus.QUEUED, pipeline_stage="Queued")
            )
        return names

    # trackers
    def insert_tracker(self, tracker: NewTracker, status: str, now: datetime, lease_until: datetime) -> str:
        name = new_name("BOT")
        self.db.execute(
            insert(bulk_operation_trackers).values(
                name=name,
                operation_type=tracker.operation_type,
                source_import=tracker.source_import,
                status=status,
                priority=tracker.priority,
                total_records=tracker.total_records,
                processed_records=0,
                successful_records=0,
                failed_records=0,
                current_batch=0,
                total_batches=tracker.total_batches,
                batch_size=tracker.batch_size,
                requested_by=tracker.requested_by,
                preparation_expires_at=lease_until,
                creation=now,
                modified=now,
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
                t.modified,
            ).where(t.name == name)
        ).first()
        return TrackerView(*tuple(row)) if row else None

    def latest_tracker(self) -> str | None:
        t = bulk_operation_trackers.c
        return self.db.scalar(select(t.name).order_by(t.creation.desc()).limit(1))

    def renew_preparation(self, name: str, now: datetime, lease_until: datetime) -> bool:
        t = bulk_operation_trackers.c
        done = self.db.execute(
            update(bulk_operation_trackers)
            .where(t.name == name, t.status == TrackerStatus.PREPARING)
            .values(preparation_expires_at=lease_until, modified=now)
        )
        return done.rowcount == 1

    def seal_tracker(
        self,
        name: str,
        status: str,
        total_records: int,
        now: datetime,
        error_summary: str | None = None,
        lease_expired_before: datetime | None = None,
    ) -> bool:
        t = bulk_operation_trackers.c
        condition = and_(t.name == name, t.status == TrackerStatus.PREPARING)
        if lease_expired_before is not None:
            condition = and_(condition, t.preparation_expires_at < lease_expired_before)
        done = self.db.execute(
            update(bulk_operation_trackers)
            .where(condition)
            .values(
                status=status,
                total_records=total_records,
                error_summary=error_summary,
                preparation_expires_at=None,
                modified=now,
                completed_at=now if status in TrackerStatus.FINISHED else None,
            )
        )
        return done.rowcount == 1

    def preparing_trackers(self, lease_expired_before: datetime) -> list[str]:
        t = bulk_operation_trackers.c
        return list(
            self.db.scalars(
                select(t.name).where(
                    t.status == TrackerStatus.PREPARING, t.preparation_expires_at < lease_expired_before
                )
            )
        )

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
            .values(status=TrackerStatus.PROCESSING, started_at=now, modified=now)
        )
        return started.rowcount == 1

    def add_to_tracker(self, name: str, processed: int, successful: int, failed: int, now: datetime) -> None:
        t = bulk_operation_trackers.c
        self.db.execute(
            update(bulk_operation_trackers)
            .where(t.name == name)
            .values(
                processed_records=t.processed_records + processed,
                successful_records=t.successful_records + successful,
                failed_records=t.failed_records + failed,
                modified=now,
            )
        )

    def finish_tracker(
        self, name: str, status: str, successful: int, failed: int, now: datetime, error_summary: str | None
    ) -> bool:
        t = bulk_operation_trackers.c
        done = self.db.execute(
            update(bulk_operation_trackers)
            .where(
                t.name == name,
                t.status == TrackerStatus.PROCESSING,
                t.processed_records >= t.total_records,
                t.successful_records == successful,
                t.failed_records == failed,
            )
            .values(status=status, completed_at=now, modified=now, error_summary=error_summary)
        )
        return done.rowcount == 1

    def unfinished_trackers(self) -> list[str]:
        t = bulk_operation_trackers.c
        return list(
            self.db.scalars(
                select(t.name).where(t.status == TrackerStatus.PROCESSING, t.processed_records >= t.total_records)
            )
        )

    def reopen_tracker(self, name: str, retried: int, from_status: str, now: datetime) -> bool:
        t = bulk_operation_trackers.c
        done = self.db.execute(
            update(bulk_operation_trackers)
            .where(t.name == name, t.status == from_status)
            .values(
                status=TrackerStatus.PROCESSING,
                completed_at=None,
                error_summary=None,
                modified=now,
                processed_records=t.processed_records - retried,
                failed_records=t.failed_records - retried,
            )
        )
        return done.rowcount == 1

    # batch slots
    def take_slot(self, pool: str, slot: int, holder: str, now: datetime, lease_until: datetime) -> bool:
        s = batch_slots.c
        taken = self.db.execute(
            update(batch_slots)
            .where(s.pool == pool, s.slot == slot, or_(s.holder.is_(None), s.lease_expires_at < now))
            .values(holder=holder, lease_expires_at=lease_until)
        )
        if taken.rowcount == 1:
            return True
        if self.db.scalar(select(func.count()).where(s.pool == pool, s.slot == slot)):
            return False
        try:  # never used: the first one to insert it holds it
            with self.db.begin_nested():
                row = {"pool": pool, "slot": slot, "holder": holder, "lease_expires_at": lease_until}
                self.db.execute(insert(batch_slots).values(**row))
        except IntegrityError:
            return False
        return True

    def renew_slot(self, pool: str, slot: int, holder: str, lease_until: datetime) -> bool:
        s = batch_slots.c
        done = self.db.execute(
            update(batch_slots)
            .where(s.pool == pool, s.slot == slot, s.holder == holder)
            .values(lease_expires_at=lease_until)
        )
        return done.rowcount == 1

    def release_slot(self, pool: str, slot: int, holder: str) -> bool:
        s = batch_slots.c
        done = self.db.execute(
            update(batch_slots)
            .where(s.pool == pool, s.slot == slot, s.holder == holder)
            .values(holder=None, lease_expires_at=None)
        )
        return done.rowcount == 1

    def held_slots(self, pool: str, now: datetime) -> int:
        s = batch_slots.c
        return (
            self.db.scalar(select(func.count()).where(s.pool == pool, s.holder.is_not(None), s.lease_expires_at >= now))
            or 0
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
        return self.db.scalar(select(func.count()).select_from(table).where(*conditions)) or 0


if TYPE_CHECKING:

    def _keeps_the_contract(store: SqlStore) -> "Store":
        return store
