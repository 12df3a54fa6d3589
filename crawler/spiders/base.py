"""What both spiders share: the configured site and failure reporting."""

from __future__ import annotations

from urllib.parse import urlsplit

import scrapy
from scrapy.spidermiddlewares.httperror import HttpError

from crawler.items import PostItem


class SiteSpider(scrapy.Spider):
    """A spider bound to one base URL (``-a site=…``), never leaving its host."""

    default_site = ""

    def __init__(self, site: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.site = (site or self.default_site).rstrip("/")
        host = urlsplit(self.site).hostname
        if not host:
            raise ValueError(f"site must be an absolute URL, got {site!r}")
        self.allowed_domains = [host]

    def url(self, path: str) -> str:
        return self.site + path

    def failed(self, failure):
        """Errback: a page that finally failed becomes a reject, not a silence."""
        request = failure.request
        if failure.check(HttpError):
            reason = f"http_{failure.value.response.status}"
        else:
            reason = f"fetch_{type(failure.value).__name__}"
        self.crawler.stats.inc_value(f"finews/fetch_failed/{reason}")
        self.logger.warning("Giving up on %s: %s", request.url, failure.getErrorMessage())
        yield PostItem(
            spider=self.name,
            url=request.url,
            raw_code=request.cb_kwargs.get("code", ""),
            listing_title=request.cb_kwargs.get("listing_title", ""),
            reject_reason=reason,
            reject_detail=failure.getErrorMessage()[:500],
        )

    def rejected(self, url: str, reason: str, detail: str = "", **fields) -> PostItem:
        return PostItem(spider=self.name, url=url, reject_reason=reason, reject_detail=detail or reason, **fields)
