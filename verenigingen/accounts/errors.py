"""Why account creation failed, and whether trying again can help.

Classification looks at the exception's type first (including its base classes, by qualified name,
so hosts' database and Redis errors count without importing them here), then at its message.
"""

import re

from verenigingen.accounts.states import ErrorCategory


class AccountCreationError(Exception):
    category = ErrorCategory.PERMANENT


class RetryableError(AccountCreationError):
    """A passing fault: timeouts, lost connections, deadlocks, lock waits, Redis unavailable."""

    category = ErrorCategory.RETRYABLE


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


# Exception types, by qualified name, that are passing faults wherever they come from.
RETRYABLE_TYPE_NAMES = frozenset(
    {
        "builtins.TimeoutError",
        "builtins.ConnectionError",
        "socket.timeout",
        "redis.exceptions.ConnectionError",
        "redis.exceptions.TimeoutError",
        "redis.exceptions.BusyLoadingError",
        "rq.timeouts.JobTimeoutException",
        "frappe.exceptions.QueryDeadlockError",
        "frappe.exceptions.QueryTimeoutError",
        "frappe.exceptions.DatabaseOperationalError",
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
# Only when the type says nothing: wording of passing faults across MariaDB, SQLite and Redis.
_RETRYABLE_WORDS = re.compile(
    r"deadlock|lock wait timeout|database is locked|timed? ?out|lost connection|gone away|"
    r"connection (refused|reset)|too many connections|try restarting transaction|throttled",
    re.IGNORECASE,
)


def _type_names(exc: BaseException) -> set[str]:
    return {f"{cls.__module__}.{cls.__qualname__}" for cls in type(exc).__mro__}


def classify(exc: BaseException) -> str:
    """ErrorCategory.RETRYABLE or ErrorCategory.PERMANENT for ``exc``."""
    if isinstance(exc, AccountCreationError):
        return exc.category
    names = _type_names(exc)
    if names & RETRYABLE_TYPE_NAMES:
        return ErrorCategory.RETRYABLE
    if names & PERMANENT_TYPE_NAMES:
        return ErrorCategory.PERMANENT
    cause = exc.__cause__ or exc.__context__
    if cause is not None and cause is not exc and classify(cause) == ErrorCategory.RETRYABLE:
        return ErrorCategory.RETRYABLE
    return ErrorCategory.RETRYABLE if _RETRYABLE_WORDS.search(str(exc)) else ErrorCategory.PERMANENT


def describe(exc: BaseException) -> str:
    """A failure reason safe to store: the type and the engine's own message, never raw data values."""
    if isinstance(exc, AccountCreationError):
        return str(exc)
    return type(exc).__name__
