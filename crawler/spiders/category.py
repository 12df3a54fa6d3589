"""Crawl the mirror's category listings and the post pages they list."""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import unquote, urljoin, urlsplit

import scrapy
from w3lib.url import canonicalize_url

from crawler.items import PostItem
from crawler.listings import ListingMemory
from crawler.middlewares import REFRESH_MODES
from crawler.spiders.base import SiteSpider
from finews.core.infocode import code_kind, info_code_from_url, normalize_info_code
from finews.core.pages import (
    MIRROR_URL,
    PageError,
    category_listing_urls,
    is_listing_url,
    parse_listing,
    parse_post_page,
)
from finews.core.reasons import Reason
from finews.core.slugs import ROLLING_NEWS_SLUG, listing_path, media_slug


class CategorySpider(SiteSpider):
    """``scrapy crawl category [-a categories=hebeiribao,河北日报,emnews] [-a refresh=new|changed|all] [-a site=URL]``

    Without ``categories`` it starts from the home page and ``/emnews/`` and
    follows the listings they link to (``/categories/``) and those the posts'
    back links name (category pages); never a URL derived from another.
    Posts already stored are not fetched again unless ``refresh`` says so
    (see ``SkipKnownPostsMiddleware``). Every listing page found by an
    earlier run is read again (``crawler.listings``), so that a post missed
    once is found by the next run, and read to its last page when its sweep
    is due (``FINEWS_LISTING_SWEEP_SECONDS``, a day).
    """

    name = "category"
    source = "mirror"  # a stored post no mirror page was read for is fetched once (SkipKnownPostsMiddleware)
    default_site = MIRROR_URL

    def __init__(self, categories: str | None = None, refresh: str = "new", **kwargs):
        super().__init__(**kwargs)
        if refresh not in REFRESH_MODES:
            raise ValueError(f"refresh must be one of {', '.join(REFRESH_MODES)}, got {refresh!r}")
        self.refresh = refresh
        names = [c.strip() for c in (categories or "").split(",") if c.strip()]
        self.categories = [media_slug(name) for name in names]
        self._listings: set[str] = set()  # canonical URLs asked for in this run
        self._posts: set[str] = set()
        self.memory: ListingMemory | None = None
        self._remembered: set[str] = set()  # listing paths the database already holds

    @classmethod
    def from_crawler(cls, crawler, *args, **kwargs):
        spider = super().from_crawler(crawler, *args, **kwargs)
        if not spider.categories:
            spider.memory = ListingMemory(crawler)
        return spider

    async def start(self):
        if self.locked:
            return
        # Without categories: the home page (newest posts, a link to
        # /categories/) and the rolling news listing the site contract names;
        # other listings are found as links on the pages, never derived from post URLs.
        # Named categories are read to their last page; so is a remembered
        # listing whose sweep is due.
        paths = [listing_path(slug) for slug in self.categories] or ["/", listing_path(ROLLING_NEWS_SLUG)]
        due = dict(await self.memory.recall()) if self.memory is not None else {}
        self._remembered = set(due)
        for path in [*paths, *due]:
            request = self.listing_request(self.url(path), sweep=bool(self.categories) or due.get(path, False))
            if request is not None:
                yield request

    def listing_request(self, url: str, sweep: bool = False, listing: str | None = None):
        """A request for a listing page, or None when this run asked for it
        already. ``listing``: the path of the listing's first page (for its
        next pages); ``sweep``: read it to its last page."""
        key = canonicalize_url(url)
        if key in self._listings:
            return None
        self._listings.add(key)
        parts = urlsplit(url)
        if (listing is None and self.memory is not None and is_listing_url(url) and not parts.query
                and parts.path not in self._remembered):
            self.memory.found(parts.path)  # remembered once linked, before it is fetched
        return scrapy.Request(url, callback=self.parse_listing, errback=self.listing_failed,
                              meta={"listing": listing or parts.path, "sweep": sweep})

    def listing_failed(self, failure):
        """A remembered listing the site no longer has (404, 410) is forgotten."""
        response = getattr(failure.value, "response", None)
        request = failure.request
        if (self.memory is not None and response is not None and response.status in (404, 410)
                and not urlsplit(request.url).query):
            self.memory.gone(request.meta.get("listing") or urlsplit(request.url).path)
        yield from self.failed(failure)

    def parse_listing(self, response):
        """Any page that lists posts: home, ``/categories/``, ``/emnews/``, a category page."""
        try:
            text = self.page_text(response)
        except PageError as error:
            yield self.retry_or_reject(response, error)
            return
        listing = parse_listing(text, response.url)
        self.crawler.stats.inc_value("finews/listing_links", len(listing.links))
        first_page = response.meta.get("listing") or urlsplit(response.url).path
        sweep = bool(response.meta.get("sweep"))
        for url, title in listing.links:
            request = self.post_request(url, title)
            if request is not None:
                yield request
        if listing.next_url and self.on_site(listing.next_url):
            request = self.listing_request(listing.next_url, sweep=sweep, listing=first_page)
            if request is not None:
                # Outside a sweep, a next page is read only while this one lists
                # posts not stored before this run (SkipKnownPostsMiddleware decides).
                if not sweep:
                    request.meta["unless_all_known"] = [
                        code for code in (normalize_info_code(_stem_of(url)) for url, _ in listing.links) if code]
                yield request
        elif self.memory is not None and is_listing_url(self.url(first_page)):
            self.memory.swept(first_page)  # read to its last page
        for url in category_listing_urls(text, response.url) if not self.categories else ():
            request = self.listing_request(url) if self.on_site(url) else None
            if request is not None:
                yield request

    def post_request(self, url: str, title: str):
        """A request for a post page, once per run however many listings show it."""
        key = canonicalize_url(url)
        if key in self._posts:
            return None
        self._posts.add(key)
        meta = {}
        stem = _stem_of(url)
        code = normalize_info_code(stem)
        if code:
            meta["known_check"] = (code, code_kind(stem), title)
        return scrapy.Request(url, callback=self.parse_post, errback=self.failed, meta=meta,
                              cb_kwargs={"listing_title": title})

    def parse_post(self, response, listing_title: str = ""):
        self.crawler.stats.inc_value("finews/post_pages")
        try:
            page = parse_post_page(self.page_text(response))
        except PageError as error:
            yield self.retry_or_reject(response, error, listing_title=listing_title)
            return
        stem = _stem_of(response.url)
        # Jekyll titles a file without front matter after its name (the stem, or
        # titleized: "Nw2022…"), with no tags and no category in the URL.
        untitled = page.title.replace(" ", "-").lower() == stem.lower()
        if not page.tags and untitled and not _category_of(response.url, page.back_links):
            self.crawler.stats.inc_value("finews/page_failed/no_front_matter")
            yield self.rejected(response.url, Reason.NO_FRONT_MATTER,
                                "published from a post file without front matter: the title is the file name "
                                "and the front matter shows as text", listing_title=listing_title)
            return
        # The page's name is the post's key (Jekyll names it after the file);
        # an article link naming another code is not allowed to move the post.
        code = stem if normalize_info_code(stem) else ""
        linked = info_code_from_url(page.source_url)
        if code and linked and normalize_info_code(linked) != normalize_info_code(code):
            self.crawler.stats.inc_value("finews/link_code_mismatch")
            self.logger.warning("Article link of %s names %s; keeping the page's code", response.url, linked)
        yield PostItem(
            spider=self.name,
            url=response.url,
            listing_title=listing_title,
            title=page.title,
            time_text=page.time_text,
            raw_html=page.body_html,
            raw_article=page.raw_article,
            source_url=page.source_url,
            raw_code=code,  # also when there is no article link (kramdown renders "<>" as text)
            category=_category_of(response.url, page.back_links),
            tags=page.tags,
        )
        if not self.categories:
            for href in page.back_links:
                url = self.on_mirror(urljoin(response.url, href))
                request = self.listing_request(url) if url and is_listing_url(url) else None
                if request is not None:
                    yield request


_CATEGORY_PAGE = re.compile(r"^/category/([^/]+)\.html$")


def _stem_of(url: str) -> str:
    """Jekyll names a post page after its file: ``…/<infoCode>.html``."""
    return unquote(urlsplit(url).path.rsplit("/", 1)[-1]).removesuffix(".html")


def _category_of(url: str, back_links: Sequence[str] = ()) -> str:
    """Jekyll's permalink starts with the category slug
    (``/<category>/<YYYY>/<MM>/<DD>/<stem>.html``), lower-cased and split at
    spaces; a post without a category starts with its date. The back link to
    the category page (``/category/CBOT.html``) keeps the slug as written."""
    segments = [unquote(s) for s in urlsplit(url).path.split("/") if s]
    dated = len(segments) >= 4 and all(s.isdigit() for s in segments[-4:-1])
    leading = [s.lower() for s in segments[:-4 if dated else -1]]
    for href in back_links:
        listed = _CATEGORY_PAGE.match(unquote(urlsplit(href).path))
        if listed and listed.group(1).lower().split() == leading:
            return listed.group(1)
    return leading[0] if leading else ""
