"""The crawl's MongoDB connection, shared by every component of one crawler.

The storage pipeline and the skip-known middleware both need the database;
this opens it once per crawler (starting the embedded server when
``MONGO_URI`` is unset) and closes it when the engine stops, after the
pipelines have flushed.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pymongo.errors import PyMongoError
from scrapy import signals

from finews.db import EmbeddedMongo, connect, ensure_indexes, redact_uri

logger = logging.getLogger(__name__)


class CrawlDatabase:
    def __init__(self, settings):
        self.uri = settings.get("MONGO_URI") or None
        self.name = settings.get("MONGO_DATABASE", "finews")
        data_dir = Path(settings.get("FINEWS_DATA_DIR", "var"))
        self.server_path = Path(settings.get("FINEWS_DB_PATH") or data_dir / "db")
        self.timeout_ms = settings.getint("MONGO_TIMEOUT_MS", 10_000)
        self.server: EmbeddedMongo | None = None
        self.client = None
        self._db = None

    @classmethod
    def of(cls, crawler) -> "CrawlDatabase":
        """The crawler's one instance, created on first use."""
        database = getattr(crawler, "_finews_database", None)
        if database is None:
            database = cls(crawler.settings)
            crawler._finews_database = database
            crawler.signals.connect(database.close, signal=signals.engine_stopped)
        return database

    @property
    def db(self):
        if self._db is None:
            if not self.uri:
                self.server = EmbeddedMongo(self.server_path).start()
                self.uri = self.server.uri
            logger.info("Using MongoDB at %s, database %r", redact_uri(self.uri), self.name)
            self.client = connect(self.uri, serverSelectionTimeoutMS=self.timeout_ms,
                                  connectTimeoutMS=self.timeout_ms, socketTimeoutMS=max(self.timeout_ms, 30_000))
            self._db = self.client[self.name]
            try:
                ensure_indexes(self._db)
            except PyMongoError as error:
                logger.error("Database unreachable at start (%s): writes will be spooled until it is back", error)
        return self._db

    def close(self) -> None:
        if self.client:
            self.client.close()
            self.client = None
        if self.server:
            self.server.stop()
            self.server = None
        self._db = None
