"""An RQ worker that rides out Redis going away: one line when it goes, one when it is back.

RQ retries a lost connection only while it waits for a job, logging every attempt; lost anywhere else
(a heartbeat while a job runs, the registry clean-up, RQ 1.15's command thread) the worker quits with a
traceback. Here RQ's connection messages give way to one line per outage, and a worker that quit
because Redis went away waits for it, pausing between tries, and starts afresh. A worker on an embedded
Redis whose data folder was deleted stops instead: there is nothing left to wait for.
"""

import logging
import time
from contextlib import suppress

from rq import Worker

from verenigingen.standalone import embedded
from verenigingen.standalone.host import StandaloneHost
from verenigingen.standalone.problems import REDIS_ERRORS, redis_named
from verenigingen.standalone.processes import Interrupted, interrupted_by_signals

try:
    from rq.exceptions import StopRequested
except ImportError:  # RQ 1.15
    from rq.worker import StopRequested  # type: ignore[attr-defined,no-redef]

log = logging.getLogger(__name__)
PAUSE = 2.0  # seconds between two tries to reach Redis
_RQ_CONNECTION_MESSAGES = (  # RQ 1.15 logs a job's exception as text, traceback included
    "could not connect to redis",
    "redis connection timeout",
    "redis.exceptions.connectionerror",
    "redis.exceptions.timeouterror",
)


class Outage:
    """Whether Redis is away, shared by the worker, its command thread and RQ's log messages."""

    def __init__(self, shost: StandaloneHost):
        self.environment = shost.environment
        self.active = False
        self.folder_gone = False

    def lost(self, exc: object) -> None:
        if not self.active:
            self.active = True
            reason = str(exc).strip().rstrip(".") or type(exc).__name__
            log.warning(
                "verenigingen worker: %s went away (%s); trying again until it is back",
                redis_named(self.environment),
                reason,
            )

    def back(self) -> None:
        if self.active:
            self.active = False
            log.warning("verenigingen worker: %s is back", redis_named(self.environment))

    def worth_waiting(self) -> bool:
        """False once the data folder of an embedded Redis is gone; else restart that Redis if it died."""
        environment = self.environment
        if not environment.embedded_redis():
            return True
        if not environment.home.is_dir():
            if not self.folder_gone:
                self.folder_gone = True
                log.warning("verenigingen worker: the data folder %s is gone; stopping", environment.home)
            return False
        with suppress(Exception):  # tried again at the next pause
            embedded.ensure_running(environment.home)
        return True


class _QuietConnectionTrouble(logging.Filter):
    """RQ's messages about a lost connection (one per retry, some with a traceback) become our one line."""

    def __init__(self, outage: Outage):
        super().__init__()
        self.outage = outage

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, REDIS_ERRORS) or any(m in record.getMessage().lower() for m in _RQ_CONNECTION_MESSAGES):
            self.outage.lost(exc or "connection lost")
            return False
        return True


class ResilientWorker(Worker):
    outage: Outage

    def heartbeat(self, timeout=None, pipeline=None):
        """Beats at every turn of the wait for a job, also while RQ retries a lost connection."""
        if self.outage.active and not self.outage.worth_waiting():
            raise StopRequested()
        super().heartbeat(timeout, pipeline=pipeline)
        if pipeline is None and self.outage.active and not self.is_horse:
            self.connection.delete(self.key)  # Redis may be back empty: register afresh
            self.register_birth()
            self.outage.back()

    def subscribe(self):
        """RQ's command channel, with a thread that survives a lost connection (RQ 1.15's dies)."""
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        self.pubsub_thread = self.pubsub.run_in_thread(
            sleep_time=1, daemon=True, exception_handler=self._connection_trouble
        )

    def _connection_trouble(self, exc, _pubsub, _thread) -> None:
        if not isinstance(exc, REDIS_ERRORS):
            raise exc
        self.outage.lost(exc)
        time.sleep(PAUSE)


def _wait_for_redis(shost: StandaloneHost, outage: Outage) -> bool:
    """True once Redis answers again; False when the worker should stop instead."""
    try:
        with interrupted_by_signals():
            while outage.worth_waiting():
                try:
                    shost.redis.ping()
                    return True
                except REDIS_ERRORS:
                    time.sleep(PAUSE)
    except Interrupted:
        pass
    return False


def work(shost: StandaloneHost, queues: list[str], burst: bool, worker_ttl: int) -> None:
    """RQ's work loop, started afresh after Redis went away and came back."""
    outage = Outage(shost)
    logging.getLogger("rq.worker").addFilter(_QuietConnectionTrouble(outage))
    while True:
        worker = ResilientWorker(
            queues, connection=shost.redis, job_monitoring_interval=shost.settings.job_monitoring_interval
        )
        worker.worker_ttl = worker_ttl  # how often an idle worker beats: see worker.listening_patience
        worker.outage = outage
        try:
            worker.work(burst=burst, logging_level="WARNING")
        except REDIS_ERRORS as exc:  # RQ's clean-up could not tell Redis it stopped
            outage.lost(exc)
        if not outage.active or getattr(worker, "_stop_requested", False):
            return  # done (a burst), or told to stop
        if not _wait_for_redis(shost, outage):
            return
        outage.back()
