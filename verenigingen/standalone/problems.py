"""What the CLI says, in one line, when the database, Redis or the data folder cannot be used.

Every command reaches them the same way, so the mapping of their exceptions lives here, once: the
``verenigingen`` group turns any of them into one line and exit 2 instead of a traceback. Lines name
the URL that was tried, never its password, and never a value from the data.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from verenigingen.accounts.config import SettingsError
from verenigingen.accounts.errors import AccountCreationError
from verenigingen.standalone import embedded
from verenigingen.standalone.host import DataFolderError, Environment, StandaloneHost

REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError)
# Commands that only read or work on what a data folder holds: run elsewhere, they must not create an
# empty folder (and then report "nothing yet"), but say where they looked.
NEEDS_DATA = frozenset({"status", "retry", "approve", "sweep", "waiting"})
# MariaDB/MySQL errors about reaching the server or logging in: their text names no data, only the server.
_CONNECTION_CODES = {1044, 1045, 1049, 2002, 2003, 2005, 2006, 2013}


def safe_redis_url(url: str) -> str:
    """The URL without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def safe_db_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "VERENIGINGEN_DB"


def redis_named(environment: Environment) -> str:
    if environment.embedded_redis():
        return f"the embedded Redis at {embedded.url(environment.home)}"
    return f"Redis at {safe_redis_url(environment.redis_url or '')}"


def require_data_folder(command: str | None) -> None:
    environment = Environment.from_env()
    if command == "stop" or (command in NEEDS_DATA and environment.keeps_data_in_home()):
        environment.require_home()


def _reason(exc: BaseException) -> str:
    return str(exc).strip().rstrip(".") or type(exc).__name__


def redis_unreachable(shost: StandaloneHost, exc: BaseException | None = None) -> str | None:
    """None when Redis answers; else one line saying which Redis could not be reached, and why."""
    if exc is None:
        try:
            shost.redis.ping()
            return None
        except REDIS_ERRORS as error:
            exc = error
    return f"{redis_named(shost.environment)} cannot be reached ({_reason(exc)})"


def _database_reason(exc: DBAPIError) -> str:
    orig = exc.orig
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int):  # MariaDB/MySQL: (code, message)
        code = args[0]
        return str(args[1]) if code in _CONNECTION_CODES and len(args) > 1 else f"error {code}"
    return _reason(orig) if orig is not None else type(exc).__name__  # SQLite's texts hold no values


def explain(exc: BaseException) -> str | None:
    """One line for a set-up problem; None for anything else (a bug should still show its traceback)."""
    from verenigingen.standalone.store import SchemaOutdated

    if isinstance(exc, (SettingsError, SchemaOutdated, DataFolderError, embedded.EmbeddedRedisError)):
        return str(exc)
    environment = Environment.from_env()
    if isinstance(exc, REDIS_ERRORS):
        return f"{redis_named(environment)} cannot be reached ({_reason(exc)})"
    if isinstance(exc, DBAPIError):
        return f"the database {safe_db_url(environment.db_url)} cannot be used ({_database_reason(exc)})"
    if isinstance(exc, AccountCreationError):  # the engine's own messages name no data
        return str(exc)
    if isinstance(exc, OSError) and exc.filename and str(exc.filename).startswith(str(environment.home)):
        return f"the data folder {environment.home}: {exc.strerror or exc} ({exc.filename})"
    return None


@contextmanager
def quiet_dispatch(quiet: bool) -> Iterator[None]:
    """While the CLI already knows Redis is down (and says so itself, once), the engine's "could not
    enqueue" warnings would only repeat it."""
    logger = logging.getLogger("verenigingen.accounts.dispatch")
    disabled = logger.disabled
    logger.disabled = disabled or quiet
    try:
        yield
    finally:
        logger.disabled = disabled
