"""The crawl's MongoDB connection, shared by every component of one crawler.

The storage pipeline, the skip-known middleware and the run record all need
the database; this opens it once per crawler (starting the embedded server
when ``MONGO_URI`` is unset) and closes it when the engine stops, after the
pipelines have flushed.

It is also the crawl's one circuit breaker: after a call fails for want of
the database, every component treats it as down for ``MONGO_OUTAGE_COOLDOWN``
seconds (spooling, fetching without the known-posts check) instead of each
waiting out the server-selection timeout again; then one caller probes it.
Wrong credentials or a malformed ``MONGO_URI`` are not an outage: the crawl
stops at once.
"""

from __future__ import annotations

import logging
import threading
import time

from pymongo.errors import NetworkTimeout, PyMongoError, ServerSelectionTimeoutError
from scrapy import signals
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet import threads

from finews.core.environment import data_paths
from finews.core.retry import DATABASE
from finews.storage.db import (
    EmbeddedMongo,
    InvalidURI,
    checked_connect,
    ensure_indexes,
    is_auth_failure,
    redact,
    redact_uri,
)

logger = logging.getLogger(__name__)


class DatabaseRefused(Exception):
    """The crawl cannot use the database and waiting will not help: it refused
    the credentials, or ``MONGO_URI`` is not a MongoDB URI."""


class CrawlDatabase:
    def __init__(self, settings):
        self.uri = settings.get("MONGO_URI") or None
        self.name = settings.get("MONGO_DATABASE", "finews")
        self.server_path = data_paths(settings).db
        self.timeout_ms = settings.getint("MONGO_TIMEOUT_MS", DATABASE.timeout_ms)
        self.cooldown = settings.getfloat("MONGO_OUTAGE_COOLDOWN", DATABASE.outage_cooldown)
        self.server: EmbeddedMongo | None = None
        self.client = None
        self._db = None
        self.refused: str | None = None  # why the database refused us, once it has
        self._down_until: float | None = None  # None: up
        self._probing = False
        self._lock = threading.Lock()

    @classmethod
    def of(cls, crawler) -> CrawlDatabase:
        """The crawler's one instance, created on first use."""
        database = getattr(crawler, "_finews_database", None)
        if database is None:
            database = cls(crawler.settings)
            crawler._finews_database = database
            crawler.signals.connect(database.close, signal=signals.engine_stopped)
        return database

    @property
    def db(self):
        if self.refused:
            raise DatabaseRefused(self.refused)
        if self._db is None:
            if not self.uri:
                self.server = EmbeddedMongo(self.server_path).start()
                self.uri = self.server.uri
            logger.info("Using MongoDB at %s, database %r", redact_uri(self.uri), self.name)
            try:
                self.client = checked_connect(self.uri, serverSelectionTimeoutMS=self.timeout_ms,
                                              connectTimeoutMS=self.timeout_ms,
                                              socketTimeoutMS=max(self.timeout_ms, 30_000))
            except InvalidURI as error:
                self.refused = f"MONGO_URI: {error}"
                logger.error("Database refused the crawl: %s", self.refused)
                raise DatabaseRefused(self.refused) from None
            self._db = self.client[self.name]
            try:
                ensure_indexes(self._db)
            except PyMongoError as error:
                self.failed(error)
                if self.refused:
                    raise DatabaseRefused(self.refused) from None
                logger.error("Database unreachable at start (%s): writes will be spooled until it is back", error)
        return self._db

    # The breaker. Callers ask ``usable()`` before a call and report with
    # ``succeeded()`` / ``failed(error)``.

    def usable(self) -> bool:
        """Whether to call the database now: it is up, or its cool-down is
        over and this caller is the one that probes it."""
        with self._lock:
            if self.refused:
                return False
            if self._down_until is None:
                return True
            if self._probing or time.monotonic() < self._down_until:
                return False
            self._probing = True
            return True

    @property
    def down(self) -> bool:
        """Marked down (cooling down, or being probed)."""
        return self._down_until is not None or bool(self.refused)

    def succeeded(self) -> None:
        with self._lock:
            if self._down_until is not None:
                logger.info("The database is back")
            self._down_until, self._probing = None, False

    def failed(self, error: BaseException, exhausted: bool = False) -> None:
        """Record a failed call: an authentication failure refuses the crawl;
        a call that waited out a timeout, or a write whose retries are
        ``exhausted``, marks the database down for the cool-down. A quick
        failure (a dropped connection) is left to the callers' retries."""
        with self._lock:
            self._probing = False
            if is_auth_failure(error):
                if not self.refused:
                    detail = redact(str(error).split(", full error")[0], self.uri)
                    self.refused = f"authentication failed for {redact_uri(self.uri)} ({detail})"
                    logger.error("Database refused the crawl: %s", self.refused)
                return
            if exhausted or isinstance(error, (ServerSelectionTimeoutError, NetworkTimeout)):
                self._down_until = time.monotonic() + self.cooldown

    def call(self, function, *args, failing: str = "Database call"):
        """``function(db, *args)`` under the breaker: its result, or None
        when the database is down or refused us, or the call failed (the
        failure recorded, and logged in one line starting ``failing``)."""
        if not self.usable():
            return None
        try:
            result = function(self.db, *args)
        except DatabaseRefused:
            return None
        except PyMongoError as error:
            self.failed(error)
            logger.warning("%s failed (%s)", failing, (str(error).splitlines() or [""])[0][:200])
            return None
        self.succeeded()
        return result

    async def call_in_thread(self, function, *args, failing: str = "Database call"):
        """``call`` in a thread, never on the reactor."""
        return await maybe_deferred_to_future(threads.deferToThread(self.call, function, *args, failing=failing))

    def close(self) -> None:
        if self.client:
            self.client.close()
            self.client = None
        if self.server:
            self.server.stop()
            self.server = None
        self._db = None
