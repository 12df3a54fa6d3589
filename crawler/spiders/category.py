"""Crawl the mirror's category listings and the post pages they list."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

import scrapy

from crawler.items import PostItem
from crawler.middlewares import REFRESH_MODES
from crawler.spiders.base import SiteSpider
from finews.infocode import code_kind, normalize_info_code
from finews.pages import PageError, category_listing_urls, parse_listing, parse_post_page
from finews.slugs import listing_path, media_slug


class CategorySpider(SiteSpider):
    """``scrapy crawl category [-a categories=hebeiribao,河北日报,emnews] [-a refresh=new|changed|all] [-a site=URL]``

    Without ``categories`` it starts from the home page and crawls every
    category shown there. Posts already stored are not fetched again unless
    ``refresh`` says so (see ``SkipKnownPostsMiddleware``).
    """

    name = "category"
    default_site = "https://finews.withounder.com"

    def __init__(self, categories: str | None = None, refresh: str = "new", **kwargs):
        super().__init__(**kwargs)
        if refresh not in REFRESH_MODES:
            raise ValueError(f"refresh must be one of {', '.join(REFRESH_MODES)}, got {refresh!r}")
        self.refresh = refresh
        names = [c.strip() for c in (categories or "").split(",") if c.strip()]
        self.categories = [media_slug(name) for name in names]

    async def start(self):
        if self.locked:
            return
        if not self.categories:
            yield scrapy.Request(self.url("/"), callback=self.parse_home, errback=self.failed)
        for slug in self.categories:
            yield scrapy.Request(self.url(listing_path(slug)), callback=self.parse_listing, errback=self.failed)

    def parse_home(self, response):
        try:
            text = self.page_text(response)
        except PageError as error:
            yield self.retry_or_reject(response, error)
            return
        for url in category_listing_urls(text, response.url):
            yield response.follow(url, callback=self.parse_listing, errback=self.failed)

    def parse_listing(self, response):
        try:
            text = self.page_text(response)
        except PageError as error:
            yield self.retry_or_reject(response, error)
            return
        listing = parse_listing(text, response.url)
        self.crawler.stats.inc_value("finews/listing_links", len(listing.links))
        for url, title in listing.links:
            meta = {}
            stem = _stem_of(url)
            code = normalize_info_code(stem)
            if code:
                meta["known_check"] = (code, code_kind(stem), title)
            yield response.follow(url, callback=self.parse_post, errback=self.failed, meta=meta,
                                  cb_kwargs={"listing_title": title})
        if listing.next_url:
            yield response.follow(listing.next_url, callback=self.parse_listing, errback=self.failed)

    def parse_post(self, response, listing_title: str = ""):
        self.crawler.stats.inc_value("finews/post_pages")
        try:
            page = parse_post_page(self.page_text(response))
        except PageError as error:
            yield self.retry_or_reject(response, error, listing_title=listing_title)
            return
        yield PostItem(
            spider=self.name,
            url=response.url,
            listing_title=listing_title,
            title=page.title,
            time_text=page.time_text,
            raw_html=page.body_html,
            raw_article=page.raw_article,
            source_url=page.source_url,
            category=_category_of(response.url),
            tags=page.tags,
        )


def _stem_of(url: str) -> str:
    """Jekyll names a post page after its file: ``…/<infoCode>.html``."""
    return unquote(urlsplit(url).path.rsplit("/", 1)[-1]).removesuffix(".html")


def _category_of(url: str) -> str:
    """Jekyll's permalink starts with the category slug."""
    segments = [s for s in urlsplit(url).path.split("/") if s]
    return unquote(segments[0]) if len(segments) > 1 else ""
