"""What both spiders share: the configured site, reading pages, and turning
every failure into a retry or a reject with its reason."""

from __future__ import annotations

import functools
from urllib.parse import urlsplit, urlunsplit

import scrapy
from scrapy import signals
from scrapy.downloadermiddlewares.retry import get_retry_request
from scrapy.exceptions import IgnoreRequest
from scrapy.spidermiddlewares.httperror import HttpError
from scrapy.utils.defer import deferred_from_coro

from crawler import scope
from crawler.items import PostItem
from finews.core.pages import MIRROR_HOSTS, PageError, decode_page
from finews.core.reasons import RETRIED_REASONS, Reason, fetch_error, http


class SiteSpider(scrapy.Spider):
    """A spider bound to one base URL (``-a site=…``), never leaving its host.

    Scrapy's duplicate filter is off (``DUPEFILTER_CLASS``): the skip-known
    middleware decides what is fetched, and a URL remembered as seen by a
    killed run (``JOBDIR``) must not hide a post that was never stored. A
    shared crawl (``FINEWS_REDIS_URL``) does filter, so that workers do not
    fetch a page twice, with a seen-set that every run starts empty.
    No request sets ``dont_filter``: in a shared crawl it would bypass the
    seen-set, and every worker would fetch the page.
    """

    default_site = ""
    locked = False  # set by the RunRecord extension when another run holds the job

    def __init__(self, site: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.site = (site or self.default_site).rstrip("/")
        if scope.origin(self.site) is None:
            raise ValueError(f"site must be an http:// or https:// URL with a host (and no user@), got {site!r}")
        self.allowed_domains = [urlsplit(self.site).hostname]

    @classmethod
    def from_crawler(cls, crawler, *args, **kwargs):
        spider = super().from_crawler(crawler, *args, **kwargs)
        crawler.signals.connect(spider.request_dropped, signal=signals.request_dropped)
        return spider

    def url(self, path: str) -> str:
        return self.site + path

    def on_site(self, url: str) -> bool:
        """http(s) on a configured scheme, host and port: ``crawler.scope``,
        the rule StayOnSiteMiddleware applies to every request."""
        return scope.on_site(url, self.origins)

    @functools.cached_property
    def origins(self) -> frozenset:
        """The configured origins, read once (a spider's hosts are fixed
        once it is built; this is asked for every link)."""
        return scope.origins_of(self)

    def on_mirror(self, url: str) -> str | None:
        """The URL on the configured site, for a link to it or to the mirror's
        own host: the real pages' back links are absolute links to
        finews.withounder.com (or the older finews.zning.me), whatever host
        serves the copy, and name the page at the same path here."""
        if self.on_site(url):
            return url
        parts = urlsplit(url)
        if parts.scheme.lower() not in scope.DEFAULT_PORTS or (parts.hostname or "").lower() not in MIRROR_HOSTS:
            return None  # file://finews.withounder.com/… is not a page of the mirror
        return self.site + urlunsplit(("", "", parts.path or "/", parts.query, ""))

    def request_dropped(self, request, spider=None):
        """Signal: the scheduler refused a request. In a shared crawl its
        seen-set refuses what another worker already holds; otherwise nothing
        should be refused, and a refused page becomes a reject, not a silence."""
        self.crawler.stats.inc_value("finews/requests_dropped")
        if self.settings.get("FINEWS_REDIS_URL") or getattr(request.errback, "__self__", None) is not self:
            return  # only requests whose errback files a reject (all of this spider's) become one
        self.logger.warning("Request dropped by the scheduler: %s", request.url)
        item = self.rejected(request.url, Reason.DROPPED, "the scheduler refused the request",
                             raw_code=request.cb_kwargs.get("code", ""),
                             listing_title=request.cb_kwargs.get("listing_title", ""))
        # Through the item pipelines as a yielded item goes, by Scrapy's public
        # entry (Scraper.start_itemproc_async, guarded by tests/test_scrapy_api.py).
        # Its first step counts the item as in process; that step is queued now,
        # ahead of any close the engine can schedule, so the run cannot close
        # before the reject is stored.
        processing = deferred_from_coro(self.crawler.engine.scraper.start_itemproc_async(item, response=None))
        processing.addErrback(lambda failure: self.logger.error(
            "Could not file the reject of the dropped request %s: %s", request.url, failure.getErrorMessage()))

    def page_text(self, response, expect_html: bool = True) -> str:
        """The response as text; ``PageError`` for binary or cut-off bodies."""
        content_type = response.headers.get("Content-Type", b"").decode("latin-1")
        return decode_page(response.body, content_type, expect_html)

    def retry_or_reject(self, response, error: PageError, **fields):
        """Transient-looking damage (truncated, binary, bad JSON) is retried
        like a network error; anything else, or the last retry, is a reject."""
        if error.reason in RETRIED_REASONS:
            retry = get_retry_request(response.request, spider=self, reason=error.reason)
            if retry is not None:
                retry.meta.pop("download_latency", None)  # belongs to the damaged response
                return retry
        self.crawler.stats.inc_value(f"finews/page_failed/{error.reason}")
        return self.rejected(response.url, error.reason, str(error), **fields)

    def failed(self, failure):
        """Errback: a request that finally failed becomes a reject, not a silence."""
        request = failure.request
        url = request.meta.get("redirect_urls", [request.url])[0]  # the page asked for, not where it led
        if failure.check(HttpError):
            reason = http(failure.value.response.status)
        elif failure.check(IgnoreRequest):
            reason = getattr(failure.value, "reason", Reason.IGNORED)
        else:
            reason = fetch_error(failure.value)
        self.crawler.stats.inc_value(f"finews/fetch_failed/{reason}")
        self.logger.warning("Giving up on %s: %s", url, failure.getErrorMessage())
        yield self.rejected(url, reason, failure.getErrorMessage()[:500],
                            raw_code=request.cb_kwargs.get("code", ""),
                            listing_title=request.cb_kwargs.get("listing_title", ""))

    def rejected(self, url: str, reason: str, detail: str = "", **fields) -> PostItem:
        return PostItem(spider=self.name, url=url, reject_reason=reason, reject_detail=detail or reason, **fields)
