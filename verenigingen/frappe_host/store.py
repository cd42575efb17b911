# ruff: noqa: S608 - statements are put together from this module's constants and %(placeholders)s only;
# every value goes to the driver as a parameter.
"""The Store port on Frappe: people through documents as the requesting user, bookkeeping by conditional SQL.

Isolation. Frappe leaves MariaDB at its default, REPEATABLE READ (``frappe/database/mariadb`` sets no level;
only the Postgres driver sets one, also REPEATABLE READ). Every "only if still in state X" change here is one
conditional UPDATE (or a ``SELECT … FOR UPDATE``): InnoDB evaluates those on the latest committed row, not on
the transaction's snapshot, so exactly one caller wins at any isolation level. Plain SELECTs read the
snapshot taken at the transaction's first read, which is why each store transaction starts a fresh one,
why ``queue_requested`` locks the rows it returns, and why ``take_slot`` decides a never-used slot by its
primary key (an insert that collides) instead of by a count that may not see a row committed meanwhile.

Rows counted. Frappe's connection reports rows *changed*, not rows matched: a renewal writing the values a
row already has would look lost. Renewals therefore lock the row they mean to renew first.

Times. The engine's clock (naive UTC) is stored as given, to the microsecond, in the engine's own columns
(leases, retry times, started and completed). Frappe's own ``creation`` and ``modified`` keep Frappe's clock,
the site's time zone, converted from the engine's (site_time), so that Desk shows and filters them right;
a tracker's ``modified`` is read back on the engine's clock (engine_time).
"""

import json
import logging
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from time import time_ns
from typing import TYPE_CHECKING, Any

import frappe
import pymysql
import pytz
from frappe.utils import now_datetime
from frappe.utils.data import convert_utc_to_system_timezone, get_system_timezone

from verenigingen.accounts.errors import (
    CONFLICT_CODES,
    CONNECTION_LOST,
    PASSING_CODES,
    AccountCreationError,
    ConflictError,
    DatabaseError,
    DuplicateUserError,
    IntegrityConflict,
    RetryableError,
    Throttled,
    ValidationFailed,
    database_code,
    database_error,
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
from verenigingen.frappe_host.contacts import MEMBER_PICTURE, member_names
from verenigingen.text import Text, saved_text

if TYPE_CHECKING:
    from verenigingen.accounts.ports import Store

log = logging.getLogger(__name__)

REQUEST = "Account Creation Request"
REQUEST_ROLE = "Account Creation Request Role"
TRACKER = "Bulk Operation Tracker"
SLOT = "Verenigingen Batch Slot"
LOCK_WAIT_SECONDS = 15  # as SqlStore: 5 tries of a member stay well inside its 120 s lease
CHUNK = 500
DUPLICATE = 1062  # MariaDB's "duplicate entry": a unique rule refused the write
FROM_NOTHING = "—"  # how an audit comment shows "no previous status"
# Not "Info": Frappe shows those on the timeline as they are, in English. The app's timeline hook
# (frappe_host.timeline) shows these in the reader's language, from the template kept in the comment's subject.
AUDIT_COMMENT = "Bot"
_TAKEN = Text("a user with this e-mail address (or for this member) already exists")

_STANDARD = ["name", "creation", "modified", "owner", "modified_by", "docstatus", "idx"]
_REQUESTS = f"`tab{REQUEST}`"
_TRACKERS = f"`tab{TRACKER}`"
_SLOTS = f"`tab{SLOT}`"
_REQUEST_COLUMNS = (
    "name, request_type, source_record, email, full_name, status, role_profile, bulk_operation_tracker, "
    "batch_number, retry_count, requested_by, error_category, failure_reason, created_user, job_generation, "
    "processed_by, lease_expires_at, creation, failure_text"
)
_DUE = "status = 'Queued' AND (next_retry_at IS NULL OR next_retry_at <= %(now)s)"


def throttle_limit() -> int:
    """Frappe's limit on new users an hour (site config ``throttle_user_limit``, 60 when not set)."""
    return int(frappe.local.conf.get("throttle_user_limit", 60))


def site_time(now: datetime) -> datetime:
    """The engine's time (naive UTC) on Frappe's clock, the site's time zone, for Frappe's own ``creation`` and
    ``modified``: Desk shows and filters those as the site's time ("5 minutes ago", "Created On")."""
    return convert_utc_to_system_timezone(now).replace(tzinfo=None)


def engine_time(site: datetime) -> datetime:
    """A ``modified`` read back on the engine's clock (it tells whether a tracker is stuck). In the hour that a
    daylight-saving change repeats, the later of the two is taken: never a false "stuck", at worst a real one
    seen an hour late, once a year."""
    zone = pytz.timezone(get_system_timezone())
    return zone.localize(site, is_dst=False).astimezone(pytz.utc).replace(tzinfo=None)


def new_name(prefix: str) -> str:
    """Random, not a naming series: a series is one counter row every writer must lock until it commits,
    so concurrent imports and approvals would queue behind each other; 12 hex digits need no coordination
    and cost nothing for 4,700 rows. (Desk-made documents keep the DocType's own autoname.)"""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def _audit_name() -> str:
    """Sortable in the order written (a tie-breaker for entries written at the same engine time)."""
    return f"{time_ns():x}{uuid.uuid4().hex[:8]}"


def as_engine_error(exc: BaseException) -> Exception | None:
    """A database error in the engine's terms, by code and kind only (a driver's message may quote a
    value: "Duplicate entry '<e-mail>'"); None when ``exc`` is not a database error."""
    found = None if isinstance(exc, AccountCreationError) else _driver_error(exc)
    if found is None:
        return None
    code = database_code(found)
    if code == DUPLICATE:
        return IntegrityConflict(unique_rule_refused(code))
    if code in CONFLICT_CODES:
        return ConflictError(on_database(CONFLICT_CODES[code]))
    if code in PASSING_CODES or isinstance(found, pymysql.err.InterfaceError):
        return RetryableError(on_database(PASSING_CODES.get(code or 0, CONNECTION_LOST)))
    log.error("database refused (%s, error %s): not retried", type(found).__name__, code)
    return DatabaseError(database_error(code, type(found).__name__))


def _duplicate(exc: pymysql.err.IntegrityError) -> bool:
    return database_code(exc) == DUPLICATE


def _driver_error(exc: BaseException) -> pymysql.err.Error | None:
    """The pymysql error behind ``exc`` (Frappe wraps deadlocks and timeouts in errors of its own)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, pymysql.err.Error):
            return current
        wrapped = current.args[0] if current.args and isinstance(current.args[0], pymysql.err.Error) else None
        context = None if current.__suppress_context__ else current.__context__
        current = wrapped or current.__cause__ or context
    return None


_swapped = threading.local()  # .home: the site's connection while a store's own connection stands in


def _text_json(reason: str | None) -> str | None:
    """A failure reason's template and values beside its English text, so that Desk can translate it."""
    return json.dumps(reason.as_dict(), default=str) if isinstance(reason, Text) else None


def _turn_name() -> str:
    """One turn per site: GET_LOCK names are shared by every database of the server."""
    return f"verenigingen-new-user-{frappe.conf.db_name}"


def _site_db():
    return getattr(_swapped, "home", None) or frappe.local.db


class FrappeStore:
    """Implements :class:`verenigingen.accounts.ports.Store` on the current site's ``frappe.db``, or on a
    database connection of its own (``db``: another process's view, as the contract tests need)."""

    def __init__(self, db: Any = None):
        self._own_db = db
        self._local = threading.local()

    # --- transactions ------------------------------------------------------------------------------------
    @contextmanager
    def transaction(self, readonly: bool = False) -> Iterator[None]:
        db = self._own_db or _site_db()  # the object itself, not the proxy
        if getattr(self._local, "active", False) or getattr(db, "_verenigingen_transaction", False):
            raise RuntimeError("transactions do not nest")
        previous, home = frappe.local.db, getattr(_swapped, "home", None)
        if self._own_db is not None and home is None:
            _swapped.home = previous
        frappe.local.db = db
        self._local.active = db._verenigingen_transaction = True
        try:
            try:
                # Whatever the caller did before is committed first: a failure here never takes it along,
                # and the snapshot of REPEATABLE READ starts now, not at some earlier read.
                db.commit()
                db.sql(f"SET SESSION innodb_lock_wait_timeout = {LOCK_WAIT_SECONDS}")
                if readonly:
                    db.sql("START TRANSACTION READ ONLY")
                yield
            except BaseException:
                self._rollback(db)
                raise
            if readonly:
                db.rollback()
            else:
                db.commit()
        except Exception as exc:
            mapped = as_engine_error(exc)
            if mapped is None:
                raise
            # Without the driver's error in the printed chain: its message may quote a value.
            raise mapped from None
        finally:
            self._end_turn(db)
            self._local.active = db._verenigingen_transaction = False
            frappe.local.db, _swapped.home = previous, home

    @staticmethod
    def _rollback(db) -> None:
        try:
            db.rollback()
        except Exception:  # the connection is gone: the server rolled back already
            log.warning("rollback failed after an error", exc_info=False)

    @property
    def db(self):
        if not getattr(self._local, "active", False):
            raise RuntimeError("store used outside a transaction")
        return frappe.db

    def _rows(self, query: str, values: dict | None = None) -> list[tuple]:
        return list(self.db.sql(query, values or {}))

    def _execute(self, query: str, values: dict | None = None) -> int:
        """Rows changed by one statement. ``%(site_now)s`` is ``now`` on Frappe's clock (see site_time)."""
        values = values or {}
        if "%(site_now)s" in query:
            values = {**values, "site_now": site_time(values["now"])}
        db = self.db
        db.sql(query, values)
        return db._cursor.rowcount

    @staticmethod
    def _in(names: Sequence[str], prefix: str = "n") -> tuple[str, dict]:
        """``IN (%(n0)s, …)`` with its values."""
        values = {f"{prefix}{i}": name for i, name in enumerate(names)}
        return "(" + ", ".join(f"%({key})s" for key in values) + ")", values

    # --- people: documents, with their permission checks, as the user who asked --------------------------
    @contextmanager
    def _as_user(self, by: str) -> Iterator[None]:
        """Run as ``by`` and come back to the session user (and the request's form data, which
        ``set_user`` clears). Never as anyone else: the documents check ``by``'s permissions."""
        previous = frappe.session.user
        if previous == by:
            yield
            return
        form_dict = frappe.local.form_dict
        frappe.set_user(by)
        try:
            yield
        finally:
            frappe.set_user(previous)
            frappe.local.form_dict = form_dict

    @contextmanager
    def _savepoint(self) -> Iterator[None]:
        """A refused write must not spoil the caller's transaction."""
        name = f"vg_{uuid.uuid4().hex[:12]}"
        self.db.savepoint(name)
        try:
            yield
        except BaseException as exc:
            try:
                self.db.rollback(save_point=name)
            except Exception:
                # A deadlock rolls back the whole transaction, savepoint included (error 1305 here): the
                # deadlock is what happened, and what decides whether it is tried again.
                raise exc from None
            raise
        self.db.release_savepoint(name)

    def roles_of(self, user: str) -> set[str]:
        if user == "Administrator":  # Frappe gives it every role without a row for each (bench execute)
            return set(frappe.get_roles(user))
        rows = self._rows(
            "SELECT role FROM `tabHas Role` WHERE parent = %(user)s AND parenttype = 'User'", {"user": user}
        )
        return {role for (role,) in rows}

    _MEMBER_COLUMNS = "name, member_id, email, full_name, status, user"

    def get_members(self, names: Iterable[str]) -> dict[str, MemberView]:
        names = list(names)
        found: dict[str, MemberView] = {}
        for start in range(0, len(names), CHUNK):
            where, values = self._in(names[start : start + CHUNK])
            rows = self._rows(f"SELECT {self._MEMBER_COLUMNS} FROM `tabMember` WHERE name IN {where}", values)
            found.update((row[0], MemberView(*row)) for row in rows)
        return found

    def lock_member(self, name: str) -> MemberView | None:
        rows = self._rows(
            f"SELECT {self._MEMBER_COLUMNS} FROM `tabMember` WHERE name = %(name)s FOR UPDATE", {"name": name}
        )
        return MemberView(*rows[0]) if rows else None

    def find_user(self, email: str) -> UserView | None:
        rows = self._rows("SELECT name, email, full_name, member FROM `tabUser` WHERE email = %(e)s", {"e": email})
        return UserView(*rows[0]) if rows else None

    def create_user(
        self,
        email: str,
        full_name: str,
        roles: tuple[str, ...],
        role_profile: str | None,
        member: str,
        by: str,
    ) -> str:
        """One User document with its roles and role profile: one save (about half the time of insert,
        then add_roles). Note that Frappe gives a user with a role profile exactly that profile's roles.
        The names are the member's Dutch name parts; the picture is the app's (see contacts.py)."""
        names = member_names(member)
        if not names["first_name"]:  # a member without a stored first name: the request's name
            first, _, last = full_name.strip().partition(" ")
            names = {"first_name": first, "last_name": last.strip() or None}
        user = frappe.new_doc("User")
        user.update(
            {
                "email": email,
                **names,
                "user_image": MEMBER_PICTURE,
                "enabled": 1,
                "send_welcome_email": 0,
                "member": member,
                "role_profile_name": role_profile,
            }
        )
        for role in roles:
            user.append("roles", {"role": role})
        messages = len(frappe.local.message_log)
        self._wait_for_turn(member)
        try:
            with self._as_user(by), self._savepoint():
                user.insert()
        except (frappe.DuplicateEntryError, frappe.UniqueValidationError):
            del frappe.local.message_log[messages:]  # "<e-mail> already exists": not for any log
            if self._user_exists(email, member):
                raise DuplicateUserError(_TAKEN) from None
            # Another unique value collided: Frappe picks a user name from the first name after checking that
            # it is free, so two workers creating a "Jan" at once collide on it. Tried again in place.
            raise ConflictError("database: another new user took the same user name at the same moment") from None
        except frappe.ValidationError:
            wait = self._throttle_wait()
            if wait is None:
                raise
            del frappe.local.message_log[messages:]
            limit = Text("the site's limit of {limit} new users an hour", limit=throttle_limit())
            raise Throttled(wait, limit) from None
        return user.name

    def _wait_for_turn(self, member: str) -> None:
        """A member of a bulk operation waits for its turn before its user is made; an approval never does.

        Every new user holds one site-wide row lock (the site default Frappe's User validation rewrites)
        until its transaction commits, so users are made one at a time whatever the number of workers. With
        five batches all queueing on that lock, an approval waited for five; taking turns first, the bulk
        members keep at most one of theirs in that queue, and an approval waits for that one only. The turn
        is a lock of this database session (GET_LOCK), given back when the transaction ends, and by the
        server when a killed worker's connection drops."""
        bulk = self._rows(
            f"SELECT COUNT(*) FROM {_REQUESTS} WHERE source_record = %(m)s AND status = 'Processing' "
            "AND bulk_operation_tracker IS NOT NULL",
            {"m": member},
        )
        if not bulk[0][0]:
            return
        if not self._rows("SELECT GET_LOCK(%(turn)s, %(wait)s)", {"turn": _turn_name(), "wait": LOCK_WAIT_SECONDS})[0][
            0
        ]:
            raise ConflictError("database: waited too long for the turn to make a new user")
        self._local.turn = True

    def _end_turn(self, db) -> None:
        if getattr(self._local, "turn", False):
            self._local.turn = False
            try:
                db.sql("SELECT RELEASE_LOCK(%s)", (_turn_name(),))
            except Exception:  # the connection is gone: the server gave the turn back with it
                log.warning("could not give back the turn to make a new user", exc_info=False)

    def _user_exists(self, email: str, member: str) -> bool:
        """A locking read: the latest committed users, not this transaction's snapshot."""
        rows = self._rows(
            "SELECT name FROM `tabUser` WHERE name = %(e)s OR email = %(e)s OR member = %(m)s LIMIT 1 FOR UPDATE",
            {"e": email, "m": member},
        )
        return bool(rows)

    def _throttle_wait(self) -> float | None:
        """Seconds until Frappe's throttle_user_creation lets a new user through again; None when it would
        now. Frappe refuses while more than throttle_user_limit users were created in the last hour
        (``creation`` in the site's time zone), so the oldest of the excess must age out first."""
        now = now_datetime()
        rows = self._rows(
            "SELECT creation FROM `tabUser` WHERE creation >= %(since)s ORDER BY creation",
            {"since": now - timedelta(hours=1)},
        )
        excess = len(rows) - throttle_limit()
        if excess <= 0:
            return None
        return max(1.0, (rows[excess - 1][0] + timedelta(hours=1) - now).total_seconds() + 1)

    def grant_roles(self, user: str, roles: tuple[str, ...], role_profile: str | None, by: str) -> None:
        with self._as_user(by):
            doc = frappe.get_doc("User", user)
            missing = [role for role in roles if role not in {row.role for row in doc.roles}]
            if not missing and (not role_profile or doc.role_profile_name == role_profile):
                return
            for role in missing:
                doc.append("roles", {"role": role})
            if role_profile:
                doc.role_profile_name = role_profile
            doc.save()

    def link_member(self, member: str, user: str, by: str) -> None:
        with self._as_user(by):
            doc = frappe.get_doc("Member", member)
            if doc.user != user:
                doc.user = user
                doc.save()
            if not frappe.db.get_value("User", user, "member"):
                account = frappe.get_doc("User", user)
                account.member = member
                account.save()

    # --- requests ----------------------------------------------------------------------------------------
    def members_with_open_request(self, names: Iterable[str]) -> set[str]:
        names = list(names)
        found: set[str] = set()
        for start in range(0, len(names), CHUNK):
            where, values = self._in(names[start : start + CHUNK])
            rows = self._rows(f"SELECT open_for_member FROM {_REQUESTS} WHERE open_for_member IN {where}", values)
            found.update(name for (name,) in rows)
        return found

    def insert_requests(self, requests: list[NewRequest], status: str, now: datetime) -> list[str]:
        names = [new_name("ACR") for _ in requests]
        fields = [
            "name", "creation", "modified", "owner", "modified_by", "docstatus", "idx", "request_type",
            "source_record", "open_for_member", "email", "full_name", "status", "pipeline_stage", "priority",
            "role_profile", "bulk_operation_tracker", "batch_number", "retry_count", "job_generation",
            "requested_by",
        ]  # fmt: skip
        at = site_time(now)
        rows = [
            (
                name, at, at, r.requested_by, r.requested_by, 0, 0, r.request_type, r.source_record,
                r.source_record, r.email, r.full_name, status, status, r.priority, r.role_profile, r.tracker,
                r.batch_number or 0, 0, 0, r.requested_by,  # Frappe Int columns are NOT NULL: 0 = no batch
            )
            for name, r in zip(names, requests, strict=True)
        ]  # fmt: skip
        roles = [
            (uuid.uuid4().hex[:12], at, at, r.requested_by, r.requested_by, 0, idx, role, name, REQUEST, "roles")
            for name, r in zip(names, requests, strict=True)
            for idx, role in enumerate(r.roles, 1)
        ]
        try:
            self.db.bulk_insert(REQUEST, fields, rows, chunk_size=CHUNK)
        except pymysql.err.IntegrityError as exc:
            if not _duplicate(exc):
                raise
            raise ValidationFailed(Text("a member already has an open account request")) from None
        role_fields = ["name", "creation", "modified", "owner", "modified_by", "docstatus", "idx", "role"]
        self.db.bulk_insert(
            REQUEST_ROLE, [*role_fields, "parent", "parenttype", "parentfield"], roles, chunk_size=CHUNK
        )
        return names

    def _requests_where(self, condition: str, values: dict) -> list[RequestView]:
        rows = self._rows(
            f"SELECT {_REQUEST_COLUMNS} FROM {_REQUESTS} WHERE {condition} ORDER BY creation, name", values
        )
        roles: dict[str, list[str]] = {}
        names = [row[0] for row in rows]
        for start in range(0, len(names), CHUNK):
            where, keys = self._in(names[start : start + CHUNK])
            for parent, role in self._rows(
                f"SELECT parent, role FROM `tab{REQUEST_ROLE}` WHERE parenttype = %(doctype)s AND parent IN {where} "
                "ORDER BY parent, idx",
                {**keys, "doctype": REQUEST},
            ):
                roles.setdefault(parent, []).append(role)
        return [
            RequestView(
                row[0], row[1], row[2], row[3], row[4], row[5], tuple(roles.get(row[0], ())), row[6], row[7],
                row[8] or None, row[9] or 0, row[10], row[11] or None, saved_text(row[12], row[18]), row[13],
                row[14] or 0, row[15],
                row[16], engine_time(row[17]),  # creation, back on the engine's clock
            )
            for row in rows
        ]  # fmt: skip

    def get_request(self, name: str) -> RequestView | None:
        found = self._requests_where("name = %(name)s", {"name": name})
        return found[0] if found else None

    def batch_requests(self, tracker: str, batch_number: int) -> list[str]:
        rows = self._rows(
            f"SELECT name FROM {_REQUESTS} WHERE bulk_operation_tracker = %(t)s AND batch_number = %(b)s "
            "AND status = 'Queued' ORDER BY name",
            {"t": tracker, "b": batch_number},
        )
        return [name for (name,) in rows]

    def claim_request(self, name: str, worker: str, now: datetime, lease_until: datetime) -> RequestView | None:
        claimed = self._execute(
            f"UPDATE {_REQUESTS} SET status = 'Processing', pipeline_stage = 'Creating user', processed_by = %(w)s, "
            f"started_at = %(now)s, lease_expires_at = %(until)s, modified = %(site_now)s "
            f"WHERE name = %(name)s AND {_DUE}",
            {"w": worker, "now": now, "until": lease_until, "name": name},
        )
        return self.get_request(name) if claimed == 1 else None

    @staticmethod
    def _held(
        status: str, owner: str | None, expired_before: datetime | None, alive_at: datetime | None = None
    ) -> tuple[str, dict]:
        condition, values = "name = %(name)s AND status = %(from_status)s", {"from_status": status}
        if owner is not None:
            condition += " AND processed_by = %(owner)s"
            values["owner"] = owner
        if expired_before is not None:
            condition += " AND lease_expires_at < %(expired_before)s"
            values["expired_before"] = expired_before
        if alive_at is not None:
            condition += " AND lease_expires_at >= %(alive_at)s"
            values["alive_at"] = alive_at
        return condition, values

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
        condition, values = self._held(
            RequestStatus.PROCESSING, worker, lease_expired_before, now if worker is not None else None
        )
        done = self._execute(
            f"UPDATE {_REQUESTS} SET status = %(status)s, pipeline_stage = %(status)s, open_for_member = NULL, "
            "completed_at = %(now)s, modified = %(site_now)s, lease_expires_at = NULL, created_user = %(user)s, "
            "error_category = %(category)s, failure_reason = %(reason)s, failure_text = %(text)s "
            f"WHERE {condition}",
            {
                **values,
                "name": name,
                "status": status,
                "now": now,
                "user": created_user,
                "category": error_category,
                "reason": failure_reason,
                "text": _text_json(failure_reason),
            },
        )
        return done == 1

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
        condition, values = self._held(from_status, owner, lease_expired_before)
        statement = (
            f"UPDATE {_REQUESTS} SET status = 'Queued', pipeline_stage = %(stage)s, open_for_member = source_record, "
            "retry_count = %(retries)s, job_generation = %(generation)s, next_retry_at = %(due)s, "
            "lease_expires_at = NULL, completed_at = NULL, error_category = %(category)s, failure_reason = %(reason)s, "
            f"failure_text = %(text)s WHERE {condition}"
        )
        values.update(
            name=name,
            stage="Waiting to retry" if next_retry_at else RequestStatus.QUEUED,
            retries=retry_count,
            generation=generation,
            due=next_retry_at,
            category=category,
            reason=reason,
            text=_text_json(reason),
        )
        try:
            with self._savepoint():
                done = self._execute(statement, values)
        except pymysql.err.IntegrityError as exc:
            if not _duplicate(exc):
                raise
            raise ValidationFailed(Text("the member already has an open account request")) from None
        return done == 1

    def stale_requests(self, now: datetime) -> list[RequestView]:
        return self._requests_where("status = 'Processing' AND lease_expires_at < %(now)s", {"now": now})

    def due_batches(self, now: datetime, limit: int | None = None) -> list[tuple[str, int, int]]:
        rows = self._rows(
            f"SELECT bulk_operation_tracker, batch_number, MAX(job_generation) FROM {_REQUESTS} "
            f"WHERE {_DUE} AND bulk_operation_tracker IS NOT NULL GROUP BY bulk_operation_tracker, batch_number "
            "ORDER BY MIN(creation), bulk_operation_tracker, batch_number" + (f" LIMIT {int(limit)}" if limit else ""),
            {"now": now},
        )
        return [(tracker, int(batch), int(generation or 0)) for tracker, batch, generation in rows]

    def due_individual_requests(self, now: datetime, limit: int | None = None) -> list[tuple[str, int]]:
        rows = self._rows(
            f"SELECT name, job_generation FROM {_REQUESTS} WHERE {_DUE} AND bulk_operation_tracker IS NULL "
            "ORDER BY creation, name" + (f" LIMIT {int(limit)}" if limit else ""),
            {"now": now},
        )
        return [(name, int(generation or 0)) for name, generation in rows]

    def individual_requests_running(self, now: datetime) -> int:
        rows = self._rows(
            f"SELECT COUNT(*) FROM {_REQUESTS} WHERE status = 'Processing' AND bulk_operation_tracker IS NULL "
            "AND lease_expires_at >= %(now)s",
            {"now": now},
        )
        return int(rows[0][0] or 0)

    def defer_batch(self, tracker: str, batch_number: int, until: datetime) -> int:
        return self._execute(
            f"UPDATE {_REQUESTS} SET next_retry_at = %(until)s, pipeline_stage = 'Waiting to retry' "
            "WHERE bulk_operation_tracker = %(t)s AND batch_number = %(b)s AND status = 'Queued' "
            "AND (next_retry_at IS NULL OR next_retry_at < %(until)s)",
            {"t": tracker, "b": batch_number, "until": until},
        )

    def next_generation(self, tracker: str | None, batch_or_request: int | str, generation: int) -> bool:
        which = "bulk_operation_tracker = %(t)s AND batch_number = %(b)s" if tracker else "name = %(b)s"
        done = self._execute(
            f"UPDATE {_REQUESTS} SET job_generation = %(g)s + 1 WHERE {which} AND status = 'Queued' "
            "AND job_generation = %(g)s",
            {"t": tracker, "b": batch_or_request, "g": generation},
        )
        return done > 0

    def failed_requests(self, tracker: str | None) -> list[RequestView]:
        if tracker is None:
            return self._requests_where("status = 'Failed'", {})
        return self._requests_where("status = 'Failed' AND bulk_operation_tracker = %(t)s", {"t": tracker})

    def request_counts(self, tracker: str, now: datetime) -> RequestCounts:
        rows = self._rows(
            "SELECT status, COALESCE(next_retry_at > %(now)s, 0) AS later, COALESCE(lease_expires_at < %(now)s, 0) "
            f"AS expired, COUNT(*), MIN(next_retry_at), MAX(next_retry_at) FROM {_REQUESTS} "
            "WHERE bulk_operation_tracker = %(t)s AND status IN ('Requested', 'Queued', 'Processing') "
            "GROUP BY status, later, expired",
            {"now": now, "t": tracker},
        )
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

    def queue_requested(self, tracker: str) -> list[str]:
        # A locking read: the latest committed rows, held, so that exactly the names returned move.
        which = "bulk_operation_tracker = %(t)s AND status = 'Requested'"
        names = [
            n
            for (n,) in self._rows(
                f"SELECT name FROM {_REQUESTS} WHERE {which} ORDER BY name FOR UPDATE", {"t": tracker}
            )
        ]
        for start in range(0, len(names), CHUNK):
            where, values = self._in(names[start : start + CHUNK])
            self._execute(
                f"UPDATE {_REQUESTS} SET status = 'Queued', pipeline_stage = 'Queued' "
                f"WHERE {which} AND name IN {where}",
                {**values, "t": tracker},
            )
        return names

    # --- trackers ----------------------------------------------------------------------------------------
    def insert_tracker(self, tracker: NewTracker, status: str, now: datetime, lease_until: datetime) -> str:
        name = new_name("BOT")
        by = tracker.requested_by
        row = {
            "name": name, "creation": site_time(now), "modified": site_time(now), "owner": by, "modified_by": by,
            "docstatus": 0,
            "idx": 0, "operation_type": tracker.operation_type, "source_import": tracker.source_import,
            "status": status, "priority": tracker.priority, "total_records": tracker.total_records,
            "processed_records": 0, "successful_records": 0, "failed_records": 0, "current_batch": 0,
            "total_batches": tracker.total_batches, "batch_size": tracker.batch_size, "requested_by": by,
            "preparation_expires_at": lease_until,
        }  # fmt: skip
        self.db.bulk_insert(TRACKER, list(row), [tuple(row.values())])
        return name

    def get_tracker(self, name: str) -> TrackerView | None:
        rows = self._rows(
            "SELECT name, operation_type, source_import, status, total_records, processed_records, "
            "successful_records, failed_records, current_batch, total_batches, batch_size, requested_by, "
            f"started_at, completed_at, error_summary, modified, error_summary_text FROM {_TRACKERS} "
            "WHERE name = %(name)s",
            {"name": name},
        )
        if not rows:
            return None
        row = list(rows[0])
        for i in range(4, 11):
            row[i] = row[i] or 0
        row[14] = saved_text(row[14], row.pop())
        row[15] = engine_time(row[15]) if row[15] else None
        return TrackerView(*row)

    def renew_preparation(self, name: str, now: datetime, lease_until: datetime) -> bool:
        # Locked first: an UPDATE writing the values the row has would report no row (see the module's notes).
        if not self._rows(
            f"SELECT name FROM {_TRACKERS} WHERE name = %(n)s AND status = 'Preparing' FOR UPDATE", {"n": name}
        ):
            return False
        self._execute(
            f"UPDATE {_TRACKERS} SET preparation_expires_at = %(until)s, modified = %(site_now)s WHERE name = %(n)s",
            {"n": name, "until": lease_until, "now": now},
        )
        return True

    def seal_tracker(
        self,
        name: str,
        status: str,
        total_records: int,
        now: datetime,
        error_summary: str | None = None,
        lease_expired_before: datetime | None = None,
    ) -> bool:
        condition = "name = %(n)s AND status = 'Preparing'"
        if lease_expired_before is not None:
            condition += " AND preparation_expires_at < %(before)s"
        done = self._execute(
            f"UPDATE {_TRACKERS} SET status = %(status)s, total_records = %(total)s, error_summary = %(summary)s, "
            "error_summary_text = %(text)s, preparation_expires_at = NULL, modified = %(site_now)s, "
            f"completed_at = %(completed)s WHERE {condition}",
            {
                "n": name,
                "before": lease_expired_before,
                "status": status,
                "total": total_records,
                "summary": error_summary,
                "text": _text_json(error_summary),
                "now": now,
                "completed": now if status in TrackerStatus.FINISHED else None,
            },
        )
        return done == 1

    def preparing_trackers(self, lease_expired_before: datetime) -> list[str]:
        rows = self._rows(
            f"SELECT name FROM {_TRACKERS} WHERE status = 'Preparing' AND preparation_expires_at < %(before)s",
            {"before": lease_expired_before},
        )
        return [name for (name,) in rows]

    def start_tracker(self, name: str, batch_number: int, now: datetime) -> bool:
        values = {"n": name, "b": batch_number, "now": now}
        self._execute(
            f"UPDATE {_TRACKERS} SET current_batch = %(b)s WHERE name = %(n)s AND current_batch < %(b)s", values
        )
        started = self._execute(
            f"UPDATE {_TRACKERS} SET status = 'Processing', started_at = %(now)s, modified = %(site_now)s "
            "WHERE name = %(n)s AND status = 'Queued'",
            values,
        )
        return started == 1

    def add_to_tracker(self, name: str, processed: int, successful: int, failed: int, now: datetime) -> None:
        self._execute(
            f"UPDATE {_TRACKERS} SET processed_records = processed_records + %(p)s, "
            "successful_records = successful_records + %(s)s, failed_records = failed_records + %(f)s, "
            "modified = %(site_now)s WHERE name = %(n)s",
            {"n": name, "p": processed, "s": successful, "f": failed, "now": now},
        )

    def finish_tracker(
        self, name: str, status: str, successful: int, failed: int, now: datetime, error_summary: str | None
    ) -> bool:
        done = self._execute(
            f"UPDATE {_TRACKERS} SET status = %(status)s, completed_at = %(now)s, modified = %(site_now)s, "
            "error_summary = %(summary)s, error_summary_text = %(text)s WHERE name = %(n)s AND status = 'Processing' "
            "AND processed_records >= total_records AND successful_records = %(s)s AND failed_records = %(f)s",
            {
                "n": name,
                "status": status,
                "now": now,
                "summary": error_summary,
                "text": _text_json(error_summary),
                "s": successful,
                "f": failed,
            },
        )
        return done == 1

    def unfinished_trackers(self) -> list[str]:
        rows = self._rows(
            f"SELECT name FROM {_TRACKERS} WHERE status = 'Processing' AND processed_records >= total_records"
        )
        return [name for (name,) in rows]

    def reopen_tracker(self, name: str, retried: int, from_status: str, now: datetime) -> bool:
        done = self._execute(
            f"UPDATE {_TRACKERS} SET status = 'Processing', completed_at = NULL, error_summary = NULL, "
            "error_summary_text = NULL, "
            "modified = %(site_now)s, processed_records = processed_records - %(r)s, "
            "failed_records = failed_records - %(r)s WHERE name = %(n)s AND status = %(from_status)s",
            {"n": name, "r": retried, "from_status": from_status, "now": now},
        )
        return done == 1

    # --- batch slots -------------------------------------------------------------------------------------
    def take_slot(self, pool: str, slot: int, holder: str, now: datetime, lease_until: datetime) -> bool:
        key = {"name": f"{pool}-{slot}", "pool": pool, "slot": slot, "holder": holder, "until": lease_until}
        taken = self._execute(
            f"UPDATE {_SLOTS} SET holder = %(holder)s, lease_expires_at = %(until)s WHERE name = %(name)s "
            "AND pool = %(pool)s AND slot = %(slot)s AND (holder IS NULL OR lease_expires_at < %(now)s)",
            {**key, "now": now},
        )
        if taken == 1:
            return True
        # Not taken: held, or never used. The primary key decides (a snapshot count might miss a new row).
        try:
            with self._savepoint():
                self.db.bulk_insert(
                    SLOT,
                    [*_STANDARD, "pool", "slot", "holder", "lease_expires_at"],
                    [
                        (
                            key["name"],
                            now,
                            now,
                            frappe.session.user,
                            frappe.session.user,
                            0,
                            0,
                            pool,
                            slot,
                            holder,
                            lease_until,
                        )
                    ],
                )
        except pymysql.err.IntegrityError as exc:
            if not _duplicate(exc):
                raise
            return False
        return True

    def renew_slot(self, pool: str, slot: int, holder: str, lease_until: datetime) -> bool:
        key = {"name": f"{pool}-{slot}", "holder": holder, "until": lease_until}
        if not self._rows(f"SELECT name FROM {_SLOTS} WHERE name = %(name)s AND holder = %(holder)s FOR UPDATE", key):
            return False
        self._execute(f"UPDATE {_SLOTS} SET lease_expires_at = %(until)s WHERE name = %(name)s", key)
        return True

    def release_slot(self, pool: str, slot: int, holder: str) -> bool:
        done = self._execute(
            f"UPDATE {_SLOTS} SET holder = NULL, lease_expires_at = NULL WHERE name = %(name)s AND holder = %(holder)s",
            {"name": f"{pool}-{slot}", "holder": holder},
        )
        return done == 1

    def held_slots(self, pool: str, now: datetime) -> int:
        rows = self._rows(
            f"SELECT COUNT(*) FROM {_SLOTS} WHERE pool = %(pool)s AND holder IS NOT NULL "
            "AND lease_expires_at >= %(now)s",
            {"pool": pool, "now": now},
        )
        return int(rows[0][0] or 0)

    # --- audit: comments on the document's timeline ------------------------------------------------------
    def add_audit(self, entries: list[AuditEntry], now: datetime) -> None:
        rows, at = [], site_time(now)
        for e in entries:
            text = audit_text(e)
            rows.append((
                _audit_name(), at, at, e.by, e.by, 0, 0, AUDIT_COMMENT, e.by, e.doctype, e.docname, str(text),
                json.dumps(text.as_dict(), default=str), 0, 0,
            ))  # fmt: skip
        if rows:
            fields = ["name", "creation", "modified", "owner", "modified_by", "docstatus", "idx", "comment_type"]
            fields += ["comment_email", "reference_doctype", "reference_name", "content", "subject"]
            fields += ["published", "seen"]
            self.db.bulk_insert("Comment", fields, rows, chunk_size=CHUNK)


def audit_text(entry: AuditEntry) -> Text:
    """'<from> → <to> by <who> [on <worker>]: <reason>', in English, with its template for other languages."""
    before, after = Text(entry.from_status or FROM_NOTHING), Text(entry.to_status)
    text = Text("{before} → {after} by {by}", before=before, after=after, by=entry.by)
    if entry.worker:
        text = Text("{text} on {worker}", text=text, worker=entry.worker)
    return Text("{text}: {reason}", text=text, reason=entry.reason) if entry.reason else text


if TYPE_CHECKING:

    def _keeps_the_contract(store: FrappeStore) -> "Store":
        return store
