"""Spider middleware that keeps a scheduled run's cost to what is new."""

from __future__ import annotations

import logging

from scrapy import Request

from crawler.database import CrawlDatabase
from finews.db import POSTS
from pipelines.normalize import KIND_RANK

logger = logging.getLogger(__name__)

REFRESH_MODES = ("new", "changed", "all")


class SkipKnownPostsMiddleware:
    """Drop requests for posts the database already holds.

    A spider marks post requests with ``meta["known_check"] = (info_code,
    kind, listing_title)``. All such requests from one listing page are checked
    in one query, so memory and cost follow the page, not the database. The
    spider's ``refresh`` chooses what is fetched again: ``new`` (default: only
    unknown posts), ``changed`` (also posts whose listing title differs from
    the stored one) or ``all``. A media post whose stored twin is rolling news
    is always fetched, since it replaces the twin.
    """

    def __init__(self, crawler):
        self.crawler = crawler
        self.database = CrawlDatabase.of(crawler)
        self.stats = crawler.stats

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    @property
    def refresh(self) -> str:
        return getattr(self.crawler.spider, "refresh", "new")

    def process_spider_output(self, response, result, spider=None):
        checked = []
        for output in result:
            if isinstance(output, Request) and "known_check" in output.meta:
                checked.append(output)
            else:
                yield output
        yield from self._unknown(checked, self.refresh)

    async def process_spider_output_async(self, response, result, spider=None):
        checked = []
        async for output in result:
            if isinstance(output, Request) and "known_check" in output.meta:
                checked.append(output)
            else:
                yield output
        for request in self._unknown(checked, self.refresh):
            yield request

    def _unknown(self, requests: list[Request], refresh: str):
        if not requests or refresh == "all":
            yield from requests
            return
        codes = list({r.meta["known_check"][0] for r in requests})
        stored = {doc["_id"]: doc for doc in self.database.db[POSTS].find({"_id": {"$in": codes}}, {"title": 1, "kind": 1})}
        skipped = 0
        for request in requests:
            code, kind, listing_title = request.meta["known_check"]
            known = stored.get(code)
            if known is None or KIND_RANK.get(kind, 0) > KIND_RANK.get(known.get("kind"), 0):
                yield request
            elif refresh == "changed" and " ".join(listing_title.split()) != known.get("title"):
                self.stats.inc_value("finews/refetched_changed_title")
                yield request
            else:
                skipped += 1
        if skipped:
            self.stats.inc_value("finews/skipped_known", skipped)
