"""Discover articles at the source: the five list feeds, then each new
article's text by infoCode."""

from __future__ import annotations

from urllib.parse import quote, urlsplit

import scrapy

from crawler.database import CrawlDatabase
from crawler.items import PostItem
from crawler.middlewares import REFRESH_MODES
from crawler.spiders.base import SiteSpider
from finews.core.feeds import (
    DEFAULT_COUNT,
    FEEDS,
    LIST_API,
    MARKET_API,
    TEXT_PATH,
    TEXT_SITE,
    article_html,
    category,
    item_from_kept,
    parse_feed,
    parse_text,
    source_link,
)
from finews.core.pages import PageError
from finews.core.slugs import TAG_SUFFIX
from finews.storage.db import POSTS
from finews.storage.sources import codes_with_text

LISTING_SLICE = 500  # feed items per kept listing item


class NewsListSpider(SiteSpider):
    """``scrapy crawl newslist [-a feeds=rolling,media,market37,market38,market39] [-a site=URL]
    [-a list_api=URL] [-a market_api=URL] [-a text_site=URL] [-a count=100] [-a refresh=new|changed|all]``

    Reads each feed once, keeps every item it lists (``feed_items``) and
    fetches ``GetNewsText.do`` only for items whose post is not stored yet
    (one database query per feed page, ``SkipKnownPostsMiddleware``) or is
    stored without a kept text answer (a post first found on the mirror). The feed
    item gives title, time and media; the text answer gives the article. An
    item that cannot become a post is a reject with its reason; the rest of
    its feed goes on. ``site`` points all three hosts at one place (the
    replica); the others point one host each.
    """

    name = "newslist"
    default_site = TEXT_SITE

    def __init__(self, feeds: str | None = None, site: str | None = None, list_api: str | None = None,
                 market_api: str | None = None, text_site: str | None = None, count: str | int = DEFAULT_COUNT,
                 refresh: str = "new", **kwargs):
        super().__init__(site=text_site or site, **kwargs)
        names = [f.strip() for f in (feeds or ",".join(FEEDS)).split(",") if f.strip()]
        unknown = [n for n in names if n not in FEEDS]
        if unknown or not names:
            raise ValueError(f"feeds must be some of {', '.join(FEEDS)}, got {feeds!r}")
        if refresh not in REFRESH_MODES:
            raise ValueError(f"refresh must be one of {', '.join(REFRESH_MODES)}, got {refresh!r}")
        if not str(count).isdigit() or int(count) < 1:
            raise ValueError(f"count must be a positive number, got {count!r}")
        self.feeds, self.refresh, self.count = names, refresh, int(count)
        self.hosts = {
            "list": (list_api or site or LIST_API).rstrip("/"),
            "market": (market_api or site or MARKET_API).rstrip("/"),
            "text": self.site,
        }
        for label, base in self.hosts.items():
            if not urlsplit(base).hostname:
                raise ValueError(f"{label} host must be an absolute URL, got {base!r}")
        hostnames = {urlsplit(base).hostname or "" for base in self.hosts.values()}  # each has one, checked above
        self.allowed_domains = [*sorted(hostnames)]  # a list display: SiteSpider's is a list[str | None]

    async def start(self):
        if self.locked:
            return
        for name in self.feeds:
            feed = FEEDS[name]
            yield scrapy.Request(feed.url(self.hosts[feed.api], self.count), callback=self.parse_feed,
                                 errback=self.failed, cb_kwargs={"feed": name})

    def parse_feed(self, response, feed: str):
        """The feed's listing, rejects and text requests; where the skip-known
        middleware would drop a stored post's request, a post stored without
        a kept text answer (found on the mirror only) is asked anyway."""
        if self.refresh == "all" or not any(
                path.endswith("SkipKnownPostsMiddleware") for path in self.settings.getdict("SPIDER_MIDDLEWARES")):
            return self._feed_outputs(response, feed)
        return self._upgrading(response, feed)

    async def _upgrading(self, response, feed: str):
        outputs = list(self._feed_outputs(response, feed))
        checked = [o for o in outputs if isinstance(o, scrapy.Request) and "known_check" in o.meta]
        missing = await self.without_text([o.meta["known_check"][0] for o in checked]) if checked else None
        for output in outputs:
            if missing and output in checked and output.meta["known_check"][0] in missing:
                del output.meta["known_check"]
                self.crawler.stats.inc_value("finews/text_upgrades_requested")
            yield output

    def _feed_outputs(self, response, feed: str):
        try:
            page = parse_feed(feed, self.page_text(response, expect_html=False))
        except PageError as error:  # bad_json, feed_no_items, …: retried as finews/core/reasons.py says
            yield self.retry_or_reject(response, error)
            return
        stats = self.crawler.stats
        stats.inc_value(f"finews/feed_items/{feed}", len(page.items))
        for reject in page.rejects:
            stats.inc_value(f"finews/feed_item_rejected/{reject.reason}")
            yield self.rejected(f"{response.url}#{reject.code or f'item-{reject.index}'}", reject.reason,
                                reject.detail, raw_code=reject.code, title=reject.title)
        if not page.items:
            return
        # Every listed item is kept, known or not: which feeds saw a post, and
        # what the original would have published, do not depend on fetching.
        # In slices, so that a feed of any length fits the store's batches.
        listing = [{"code": item.site_code, "info_code": item.info_code, "fields": item.fields} for item in page.items]
        for start in range(0, len(listing), LISTING_SLICE):
            yield PostItem(spider=self.name, url=response.url, feed=feed,
                           feed_listing=listing[start:start + LISTING_SLICE])
        for item in page.items:
            yield scrapy.Request(
                f"{self.hosts['text']}{TEXT_PATH}?id={quote(item.text_id)}",
                callback=self.parse_text, errback=self.failed,
                meta={"known_check": (item.info_code, item.kind, item.title)},
                cb_kwargs={"feed": feed, "fields": item.fields, "code": item.site_code},
            )

    async def without_text(self, codes: list[str]) -> set[str] | None:
        """The stored posts among ``codes`` with no kept text answer (one
        query pair, in a thread); None without the database, when the
        skip-known middleware decides alone."""
        return await CrawlDatabase.of(self.crawler).call_in_thread(
            _stored_without_text, codes, failing="Looking for posts without a text answer")

    def parse_text(self, response, feed: str, fields: dict, code: str):
        self.crawler.stats.inc_value(f"finews/text_fetched/{feed}")
        item = item_from_kept(feed, fields)
        try:
            text = self.page_text(response, expect_html=False)
            payload = parse_text(text)
            html = article_html(item, payload)
        except PageError as error:
            yield self.retry_or_reject(response, error, raw_code=code, title=item.title)
            return
        yield PostItem(
            spider=self.name,
            url=response.url,
            title=item.title,
            time_text=item.time_text,
            raw_html=html,
            raw_article=html,
            source_url=source_link(item),
            raw_code=item.site_code,
            category=category(item),
            tags=[item.media + TAG_SUFFIX],
            media=item.media,
            feed=feed,
            feed_item=fields,
            text_payload=text,
            time_source="feed",
        )


def _stored_without_text(db, codes: list[str]) -> set[str]:
    stored = {doc["_id"] for doc in db[POSTS].find({"_id": {"$in": codes}}, {"_id": 1})}
    return stored - codes_with_text(db, sorted(stored))
