"""Middlewares: skip posts already stored; honour Retry-After; never leave the
site; name why a page too large or redirected in circles was not read."""

from __future__ import annotations

import asyncio
import functools
import logging
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

from scrapy import Request
from scrapy.downloadermiddlewares.httpcompression import HttpCompressionMiddleware
from scrapy.downloadermiddlewares.retry import get_retry_request
from scrapy.exceptions import DownloadCancelledError, IgnoreRequest
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet import threads
from w3lib.url import canonicalize_url

from crawler import scope
from crawler.database import CrawlDatabase
from crawler.scope import Refused
from finews.core.normalize import KIND_RANK
from finews.core.reasons import Reason
from finews.core.retry import HTTP
from finews.storage.db import POSTS

logger = logging.getLogger(__name__)

REFRESH_MODES = ("new", "changed", "all")


class SkipKnownPostsMiddleware:
    """Drop requests for posts the database already holds.

    A spider marks post requests with ``meta["known_check"] = (info_code,
    kind, listing_title)``, and a listing's next page with
    ``meta["unless_all_known"] = [codes this page lists]``: that page is asked
    only when one of them was not stored before this run. All such requests from one listing page are checked
    in one query, so memory and cost follow the page, not the database. The
    spider's ``refresh`` chooses what is fetched again: ``new`` (default: only
    unknown posts), ``changed`` (also posts whose listing title differs from
    the stored one) or ``all``. A media post whose stored twin is rolling news
    is always fetched, since it replaces the twin.

    A spider with a ``source`` (``category``: ``mirror``) also asks for a
    stored post whose ``sources`` lack it, once, so that every source's
    payload is kept whichever came first.

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
        checked, next_pages = [], []
        async for output in result:
            if isinstance(output, Request) and "known_check" in output.meta:
                checked.append(output)
            elif isinstance(output, Request) and output.meta.get("unless_all_known") is not None:
                next_pages.append(output)
            else:
                yield output
        refresh = self.refresh
        listed = {code for r in next_pages for code in r.meta["unless_all_known"]}
        stored: dict[str, dict] | None
        if (not checked and not listed) or refresh == "all":
            stored = {}
        else:
            stored = await maybe_deferred_to_future(threads.deferToThread(self._stored, checked, listed))
        if stored is None:
            # Without the database every post looks new: fetch them all (storage
            # is idempotent) rather than lose any.
            self.stats.inc_value("finews/known_check_failed")
            stored, listed = {}, set()
        for request in self._unknown(checked, stored, refresh):
            yield request
        # A listing is newest first: past a page whose posts were all stored
        # before this run, its next pages are read only by its sweep.
        for request in next_pages:
            codes = request.meta["unless_all_known"]
            if refresh == "all" or not codes or any(self._new_in_this_run(stored.get(code)) for code in codes):
                yield request
            else:
                self.stats.inc_value("finews/listing_pages_left_for_sweep")

    def _new_in_this_run(self, post: dict | None) -> bool:
        """Not stored, or first stored by this run (earlier pages of the run,
        such as ``/categories/``, listed it too)."""
        if post is None:
            return True
        started, seen = self.stats.get_value("start_time"), post.get("first_seen_at")
        if started is None or seen is None:
            return started is None
        return (seen if seen.tzinfo else seen.replace(tzinfo=UTC)) >= started

    def _stored(self, requests: list[Request], codes=()) -> dict | None:
        """The stored posts among the requests' codes and ``codes``; None
        without a database (every post is then fetched)."""
        codes = sorted({r.meta["known_check"][0] for r in requests} | set(codes))
        return self.database.call(_known_posts, codes,
                                  failing=f"Cannot check known posts (fetching all {len(requests)}): the query")

    def _unknown(self, requests: list[Request], stored: dict, refresh: str):
        if refresh == "all":
            yield from requests
            return
        skipped = 0
        source = getattr(self.crawler.spider, "source", None)
        for request in requests:
            code, kind, listing_title = request.meta["known_check"]
            known = stored.get(code)
            if known is None or KIND_RANK.get(kind, 0) > KIND_RANK.get(known.get("kind"), 0):
                yield request
            elif source and known.get("sources") and source not in known["sources"]:
                self.stats.inc_value("finews/fetched_for_source")  # stored from elsewhere: keep this source too
                yield request
            elif refresh == "changed" and " ".join(listing_title.split()) != known.get("title"):
                self.stats.inc_value("finews/refetched_changed_title")
                yield request
            else:
                skipped += 1
        if skipped:
            self.stats.inc_value("finews/skipped_known", skipped)


class RetryAfterMiddleware:
    """Back off on 429 and 503 (``finews.core.retry.HTTP``) for as long as the server's ``Retry-After`` asks
    (capped), then retry; Scrapy's own retry would come back at once."""

    STATUSES = HTTP.retry_after_codes

    def __init__(self, crawler, max_wait: float):
        self.crawler = crawler
        self.max_wait = max_wait

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler, crawler.settings.getfloat("FINEWS_RETRY_AFTER_MAX", HTTP.retry_after_max))

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
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class OffSite(Refused):
    """A request dropped for leaving the site; ``reason`` names how."""


# The statuses RedirectMiddleware follows.
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


class StayOnSiteMiddleware:
    """Nothing is fetched off the configured origins (``crawler.scope``: an
    http(s) URL on a configured scheme, host and port), and no post is lost
    to a redirect that points there or goes round in circles.

    Scrapy's offsite filter lets ``dont_filter`` and ``allow_offsite``
    requests through, and drops the others without calling their errback (a
    listed post lost in silence), so it is disabled in the settings: this
    guard refuses every off-site request through its errback, where it becomes
    a reject (``offsite``). Every redirect is checked before
    RedirectMiddleware follows it: off the site (``file:``, another port…) the
    page is asked again, and when retries run out the errback records
    ``redirect_offsite``; back to a URL of its own chain it is
    ``redirect_loop`` at once; past ``REDIRECT_MAX_TIMES`` it is
    ``too_many_redirects`` (Scrapy's own limit would say nothing of why).
    """

    def __init__(self, crawler):
        self.crawler = crawler
        self.max_redirects = crawler.settings.getint("REDIRECT_MAX_TIMES", 20)

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    @functools.cached_property
    def _origins(self) -> frozenset:
        """Read on the first request: the spider exists by then, and its origins are fixed."""
        return scope.origins_of(self.crawler.spider)

    def _on_site(self, url: str) -> bool:
        return scope.on_site(url, self._origins)

    def process_request(self, request, spider=None):
        if not self._on_site(request.url):
            self.crawler.stats.inc_value("finews/offsite_blocked")
            raise OffSite(Reason.OFFSITE, f"request to {_where(request.url)} blocked")
        return None

    def process_response(self, request, response, spider=None):
        location = response.headers.get("Location")
        if not (300 <= response.status < 400 and location):
            return response
        target = response.urljoin(location.decode("latin-1"))
        if not self._on_site(target):
            self.crawler.stats.inc_value("finews/offsite_redirects")
            retry = get_retry_request(request, spider=self.crawler.spider, reason=Reason.REDIRECT_OFFSITE)
            if retry is not None:
                return retry
            raise OffSite(Reason.REDIRECT_OFFSITE, f"{request.url} redirects to {_where(target)}")
        if response.status not in REDIRECT_STATUSES or request.meta.get("dont_redirect"):
            return response
        chain = [*request.meta.get("redirect_urls", []), request.url]
        if canonicalize_url(target) in {canonicalize_url(url) for url in chain}:
            self.crawler.stats.inc_value("finews/redirect_loops")
            raise Refused(Reason.REDIRECT_LOOP, f"{request.url} redirects back to {target} "
                                                f"after {len(chain) - 1} redirects")
        if request.meta.get("redirect_times", 0) >= self.max_redirects:
            self.crawler.stats.inc_value("finews/too_many_redirects")
            raise Refused(Reason.TOO_MANY_REDIRECTS, f"{chain[0]} still redirects after {self.max_redirects} "
                                                     f"redirects (REDIRECT_MAX_TIMES)")
        return response


def _where(url: str) -> str:
    """Scheme, host and port of a refused URL, for its reject detail (a
    ``data:`` URL's content is not repeated)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else f"{parts.scheme}:"


class DecompressionLimit(HttpCompressionMiddleware):
    """Scrapy's HttpCompressionMiddleware, and a body too large to read is a
    ``download_too_large`` reject, not an unexplained ``ignored``.

    Scrapy cancels a download whose body passes ``DOWNLOAD_MAXSIZE``
    (``DownloadCancelledError``) and drops a response that inflates past it
    (a gzip bomb: an ``IgnoreRequest``, the only one this middleware raises);
    neither is worth a retry.
    """

    def process_response(self, request, response, spider=None):
        try:
            return super().process_response(request, response)
        except Refused:
            raise
        except IgnoreRequest as error:
            if self.stats:
                self.stats.inc_value("finews/download_too_large")
            raise Refused(Reason.DOWNLOAD_TOO_LARGE, f"{response.url} inflates past DOWNLOAD_MAXSIZE "
                                                     f"({len(response.body)} bytes as sent)") from error

    def process_exception(self, request, exception, spider=None):
        if isinstance(exception, DownloadCancelledError):
            if self.stats:
                self.stats.inc_value("finews/download_too_large")
            raise Refused(Reason.DOWNLOAD_TOO_LARGE, f"{request.url}: {exception or 'body over DOWNLOAD_MAXSIZE'}")
        return None


def _known_posts(db, codes: list[str]) -> dict[str, dict]:
    """What the known check reads of the stored posts among ``codes``."""
    fields = {"title": 1, "kind": 1, "first_seen_at": 1, "sources": 1}
    return {doc["_id"]: doc for doc in db[POSTS].find({"_id": {"$in": codes}}, fields)}
