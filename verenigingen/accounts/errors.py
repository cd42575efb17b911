"""Why account creation failed, and whether trying again can help.

Classification looks at the exception's type first (including its base classes, by qualified name,
so hosts' database and Redis errors count without importing them here), then at database error codes,
and only then at its message. Only known passing faults are retryable: anything else (a missing table,
access denied, a corrupt database) is permanent, so that it shows up at once instead of after retries.
"""

import re
from collections.abc import Iterator

from verenigingen.accounts.states import ErrorCategory
from verenigingen.text import Text


class AccountCreationError(Exception):
    category = ErrorCategory.PERMANENT


class RetryableError(AccountCreationError):
    """A passing fault: timeouts, lost connections, deadlocks, lock waits, Redis unavailable."""

    category = ErrorCategory.RETRYABLE


class ConflictError(RetryableError):
    """Two transactions wanted the same rows (deadlock, lock wait, a record changed meanwhile):
    retried in place a few times before it costs one of the member's retries."""


class PermanentError(AccountCreationError):
    """Trying again gives the same answer: the data or the permission must change first."""


class PermissionDenied(PermanentError):
    pass


class ValidationFailed(PermanentError):
    pass


class DuplicateUserError(PermanentError):
    pass


class MissingFieldError(ValidationFailed):
    pass


class DatabaseError(PermanentError):
    """The database refused in a way no retry fixes (missing table, access denied, corruption)."""


class IntegrityConflict(DatabaseError):
    """A unique rule refused a write that the engine did not expect to collide (two processes raced)."""


class Throttled(AccountCreationError):
    """The host allows no new user right now (Frappe's limit on users created per minute). Not a failure:
    the member waits ``wait_seconds`` and is tried again, without using one of its retries."""

    def __init__(self, wait_seconds: float, message: str = Text("the site's limit on new users per minute")):
        super().__init__(message)
        self.wait_seconds = wait_seconds


class QueueingInterrupted(AccountCreationError):
    """The sweeper sealed a bulk operation whose queueing had stopped; this late writer must stop."""

    def __init__(self, tracker: str):
        super().__init__(f"bulk operation {tracker} was sealed by the sweeper while queueing")


# Exception types, by qualified name, that are passing faults wherever they come from.
CONFLICT_TYPE_NAMES = frozenset(
    {
        "frappe.exceptions.QueryDeadlockError",
        "frappe.exceptions.QueryTimeoutError",  # lock wait timeout
        "frappe.exceptions.TimestampMismatchError",  # "the record has changed since you opened it"
    }
)
RETRYABLE_TYPE_NAMES = frozenset(
    {
        "builtins.TimeoutError",
        "builtins.ConnectionError",
        "socket.timeout",
        "redis.exceptions.ConnectionError",
        "redis.exceptions.TimeoutError",
        "redis.exceptions.BusyLoadingError",
    }
)
PERMANENT_TYPE_NAMES = frozenset(
    {
        "frappe.exceptions.PermissionError",
        "frappe.exceptions.ValidationError",
        "frappe.exceptions.DuplicateEntryError",
        "frappe.exceptions.InvalidEmailAddressError",
        "frappe.exceptions.MandatoryError",
        "builtins.ValueError",
        "builtins.KeyError",
    }
)
# Exceptions that mean "this job must end now" (its time is up): never recorded as a member's failure.
JOB_ENDING_TYPE_NAMES = frozenset({"rq.timeouts.JobTimeoutException", "rq.timeouts.BaseTimeoutException"})

# MariaDB/MySQL error codes of passing faults.
CONFLICT_CODES = {1020: Text("record changed"), 1205: Text("lock wait timeout"), 1213: Text("deadlock")}
PASSING_CODES = {
    1040: Text("too many connections"),
    1053: Text("server shutting down"),
    1159: Text("network read interrupted"),
    1161: Text("network write interrupted"),
    1317: Text("query interrupted"),
    1927: Text("connection killed"),
    2002: Text("cannot connect"),
    2003: Text("cannot connect"),
    2006: Text("server gone away"),
    2013: Text("lost connection"),
    2055: Text("lost connection"),
    4031: Text("disconnected by the server"),
}
CONNECTION_LOST = Text("connection lost")


def on_database(problem: str) -> Text:
    """A database fault, as a failure reason says it: 'database: <problem>'."""
    return Text("database: {problem}", problem=problem)


def database_error(code: int | None, kind: str) -> Text:
    """A database error the engine does not retry, by its code and the driver's class name only."""
    return Text("database: error {code} ({kind})", code=code, kind=kind)


def unique_rule_refused(code: int | None) -> Text:
    return Text("database: a unique rule refused the write (error {code})", code=code or "integrity")


# Only when neither type nor code says anything: wording of passing faults across MariaDB, SQLite, Redis.
_CONFLICT_WORDS = re.compile(
    r"deadlock|lock wait timeout|database is locked|database table is locked|record has changed|"
    r"try restarting transaction",
    re.IGNORECASE,
)
_RETRYABLE_WORDS = re.compile(
    r"timed? ?out|lost connection|gone away|connection (refused|reset)|too many connections|throttled",
    re.IGNORECASE,
)


def _type_names(exc: BaseException) -> set[str]:
    return {f"{cls.__module__}.{cls.__qualname__}" for cls in type(exc).__mro__}


_DATABASE_MODULES = ("pymysql", "MySQLdb", "mysql", "mariadb", "sqlalchemy")


def database_code(exc: BaseException) -> int | None:
    """The MariaDB error code of a database driver's error, or of the one SQLAlchemy wraps (in .orig)."""
    for candidate in (exc, getattr(exc, "orig", None)):
        module = type(candidate).__module__.split(".")[0]
        args = getattr(candidate, "args", None)
        if module in _DATABASE_MODULES and args and isinstance(args[0], int):
            return args[0]
    return None


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def is_conflict(exc: BaseException) -> bool:
    """A deadlock, lock wait or changed record: worth trying again in place, straight away."""
    for cause in _causes(exc):
        names = _type_names(cause)
        if isinstance(cause, ConflictError) or names & CONFLICT_TYPE_NAMES:
            return True
        code = database_code(cause)
        if code is not None:  # the code says it; a value quoted in the message must not
            return code in CONFLICT_CODES
        if isinstance(cause, AccountCreationError) or names & PERMANENT_TYPE_NAMES:
            return False
    return bool(_CONFLICT_WORDS.search(str(exc)))


def ends_job(exc: BaseException) -> bool:
    """The job's time is up (or the process is told to stop): put the member back and end the job. Also
    when the timeout struck inside a database call and the driver's clean-up error took its place."""
    return any(not isinstance(cause, Exception) or _type_names(cause) & JOB_ENDING_TYPE_NAMES for cause in _causes(exc))


def classify(exc: BaseException) -> str:
    """ErrorCategory.RETRYABLE or ErrorCategory.PERMANENT for ``exc``. A job's timeout is neither (see
    ``ends_job``): callers check that first; here it is never mistaken for a passing fault."""
    if ends_job(exc):
        return ErrorCategory.PERMANENT
    if isinstance(exc, AccountCreationError):
        return exc.category
    names = _type_names(exc)
    if names & (RETRYABLE_TYPE_NAMES | CONFLICT_TYPE_NAMES):
        return ErrorCategory.RETRYABLE
    if names & PERMANENT_TYPE_NAMES:
        return ErrorCategory.PERMANENT
    code = database_code(exc)
    if code is not None:
        return ErrorCategory.RETRYABLE if code in CONFLICT_CODES or code in PASSING_CODES else ErrorCategory.PERMANENT
    cause = exc.__cause__ or exc.__context__
    if cause is not None and cause is not exc and classify(cause) == ErrorCategory.RETRYABLE:
        return ErrorCategory.RETRYABLE
    text = str(exc)
    passing = _CONFLICT_WORDS.search(text) or _RETRYABLE_WORDS.search(text)
    return ErrorCategory.RETRYABLE if passing else ErrorCategory.PERMANENT


def describe(exc: BaseException) -> str:
    """A failure reason safe to store: the type and the engine's own message, never raw data values."""
    if isinstance(exc, AccountCreationError):
        return exc.args[0] if exc.args and isinstance(exc.args[0], Text) else str(exc)  # a Text stays one
    code = database_code(exc)
    if code is not None:
        known = CONFLICT_CODES.get(code) or PASSING_CODES.get(code)
        return on_database(known) if known else database_error(code, type(exc).__name__)
    return type(exc).__name__
