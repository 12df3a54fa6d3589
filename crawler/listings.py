"""The category spider's memory of listing pages across runs
(``finews.storage.listings``), kept through the crawl's database.

Reads and writes run in a thread, never on the reactor. Without a database
(down, refused) nothing is remembered or recalled, and the run finds its
listings as it always did: through the home page and the posts' back links.
"""

from __future__ import annotations

import logging

from twisted.internet import threads

from crawler.database import CrawlDatabase
from finews.storage import listings
from finews.storage.store import utcnow

logger = logging.getLogger(__name__)


class ListingMemory:
    def __init__(self, crawler):
        self.crawler = crawler  # its stats exist once the crawl starts
        self.database = CrawlDatabase.of(crawler)
        self.sweep_seconds = crawler.settings.getfloat("FINEWS_LISTING_SWEEP_SECONDS", listings.SWEEP_SECONDS)

    async def recall(self) -> list[tuple[str, bool]]:
        """Remembered listing paths and whether each is due for a full sweep."""
        found = await self.database.call_in_thread(listings.remembered, utcnow(), self.sweep_seconds,
                                                   failing="Reading the remembered listings")
        found = found or []
        self.crawler.stats.set_value("finews/listings_remembered", len(found))
        return found

    def found(self, path: str) -> None:
        self._later(listings.remember, [path], utcnow())

    def swept(self, path: str) -> None:
        self.crawler.stats.inc_value("finews/listings_swept")
        self._later(listings.swept, path, utcnow())

    def gone(self, path: str) -> None:
        logger.warning("Listing %s is gone from the site; no longer read", path)
        self.crawler.stats.inc_value("finews/listings_forgotten")
        self._later(listings.forget, path)

    def _later(self, function, *args) -> None:
        threads.deferToThread(self.database.call, function, *args, failing="Updating the listing memory")
