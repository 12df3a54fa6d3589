"""Middlewares: skip posts already stored; honour Retry-After; never leave the site."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

from pymongo.errors import PyMongoError
from scrapy import Request
from scrapy.downloadermiddlewares.retry import get_retry_request
from scrapy.exceptions import IgnoreRequest
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet import threads

from crawler.database import CrawlDatabase, DatabaseRefused
from finews.storage.db import POSTS
from finews.core.reasons import Reason
from finews.core.normalize import KIND_RANK

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

    The query runs in a thread, never on the reactor: a slow or absent
    database delays one listing's posts, not the downloads. While the crawl's
    database is marked down (``CrawlDatabase``), no query is tried at all.
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

    async def process_spider_output(self, response, result, spider=None):
        checked = []
        async for output in result:
            if isinstance(output, Request) and "known_check" in output.meta:
                checked.append(output)
            else:
                yield output
        refresh = self.refresh
        if not checked or refresh == "all":
            stored = {}
        else:
            stored = await maybe_deferred_to_future(threads.deferToThread(self._stored, checked))
        if stored is None:
            # Without the database every post looks new: fetch them all (storage
            # is idempotent) rather than lose any.
            self.stats.inc_value("finews/known_check_failed")
            stored = {}
        for request in self._unknown(checked, stored, refresh):
            yield request

    def _stored(self, requests: list[Request]) -> dict | None:
        """The stored posts among the requests' codes; None without a database."""
        if not self.database.usable():
            return None
        codes = list({r.meta["known_check"][0] for r in requests})
        try:
            stored = {doc["_id"]: doc for doc in
                      self.database.db[POSTS].find({"_id": {"$in": codes}}, {"title": 1, "kind": 1})}
        except (PyMongoError, DatabaseRefused) as error:
            if isinstance(error, PyMongoError):
                self.database.failed(error)
            logger.warning("Cannot check known posts (%s); fetching all %d", error, len(requests))
            return None
        self.database.succeeded()
        return stored

    def _unknown(self, requests: list[Request], stored: dict, refresh: str):
        if refresh == "all":
            yield from requests
            return
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


class RetryAfterMiddleware:
    """Back off on 429 and 503 for as long as the server's ``Retry-After`` asks
    (capped), then retry; Scrapy's own retry would come back at once."""

    STATUSES = (429, 503)

    def __init__(self, crawler, max_wait: float):
        self.crawler = crawler
        self.max_wait = max_wait

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler, crawler.settings.getfloat("FINEWS_RETRY_AFTER_MAX", 120.0))

    async def process_response(self, request, response, spider=None):
        if response.status not in self.STATUSES or request.meta.get("dont_retry"):
            return response
        wait = retry_after_seconds(response.headers.get("Retry-After", b"").decode("latin-1"))
        if wait is None:
            return response  # RetryMiddleware handles it like any 5xx
        retry = get_retry_request(request, spider=self.crawler.spider, reason=f"{response.status} Retry-After")
        if retry is None:
            return response  # out of retries: the errback records the failure
        self.crawler.stats.inc_value("finews/retry_after_waits")
        await asyncio.sleep(min(wait, self.max_wait))
        return retry


def retry_after_seconds(value: str) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or HTTP date."""
    value = (value or "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


class OffSite(IgnoreRequest):
    """A request dropped for leaving the site; ``reason`` names how."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


class StayOnSiteMiddleware:
    """Nothing is fetched off the configured hosts, and no post is lost to a
    redirect that points there.

    Scrapy's offsite filter lets ``dont_filter`` and ``allow_offsite``
    requests through, and drops the others without calling their errback (a
    listed post lost in silence), so it is disabled in the settings: this
    guard refuses every off-site request through its errback, where it becomes
    a reject (``offsite``). A redirect off the site is
    caught before RedirectMiddleware follows it (where the offsite filter
    would drop it without calling the errback): the page is asked again, and
    when retries run out the errback records the failure.
    """

    def __init__(self, crawler):
        self.crawler = crawler
        self._allowed: list[str] | None = None

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def _on_site(self, url: str) -> bool:
        if self._allowed is None:  # the spider's hosts are fixed once it exists
            self._allowed = [d.lower() for d in getattr(self.crawler.spider, "allowed_domains", None) or []]
        host = (urlsplit(url).hostname or "").lower()
        return not self._allowed or any(host == d or host.endswith("." + d) for d in self._allowed)

    def process_request(self, request, spider=None):
        if not self._on_site(request.url):
            self.crawler.stats.inc_value("finews/offsite_blocked")
            raise OffSite(Reason.OFFSITE, f"request to {urlsplit(request.url).hostname} blocked")
        return None

    def process_response(self, request, response, spider=None):
        location = response.headers.get("Location")
        if not (300 <= response.status < 400 and location):
            return response
        target = response.urljoin(location.decode("latin-1"))
        if self._on_site(target):
            return response
        self.crawler.stats.inc_value("finews/offsite_redirects")
        retry = get_retry_request(request, spider=self.crawler.spider, reason=Reason.REDIRECT_OFFSITE)
        if retry is not None:
            return retry
        raise OffSite(Reason.REDIRECT_OFFSITE, f"{request.url} redirects to {target}")
