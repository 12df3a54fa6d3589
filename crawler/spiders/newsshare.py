"""Fetch news-share pages and their article text by infoCode."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import scrapy

from crawler.database import CrawlDatabase
from crawler.items import PostItem
from crawler.spiders.base import SiteSpider
from finews.core.feeds import TEXT_SITE
from finews.core.infocode import normalize_info_code, site_code
from finews.core.pages import PageError, parse_share_text, share_page_title
from finews.core.reasons import Reason
from finews.storage.sources import posts_missing_text

SHARE_PAGE = "/html_News/NewsShare.html?infoCode={}"
SHARE_TEXT = "/NewsData/GetNewsText.do?id={}"


class NewsShareSpider(SiteSpider):
    """``scrapy crawl newsshare -a info_codes=NW…,NW… | -a codes_file=PATH | -a missing=text [-a limit=N]
    [-a site=URL]``

    ``missing=text`` upgrades stored posts that have no kept text answer (a
    post found only on the mirror): it asks the database for them (at most
    ``limit``) and fetches each one's ``GetNewsText.do`` answer, nothing
    else. Rate limits, retries and JOBDIR apply as to any crawl; a run after
    a complete one requests nothing.
    """

    name = "newsshare"
    default_site = TEXT_SITE

    def __init__(self, info_codes: str | None = None, codes_file: str | None = None, missing: str | None = None,
                 limit: str | int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.info_codes = [c for c in (info_codes or "").replace("\n", ",").split(",") if c.strip()]
        self.codes_file = Path(codes_file) if codes_file else None
        if missing not in (None, "text"):
            raise ValueError(f"missing must be 'text', got {missing!r}")
        self.missing = missing
        if limit is not None and (not str(limit).isdigit() or int(limit) < 1):
            raise ValueError(f"limit must be a positive number, got {limit!r}")
        self.limit = int(limit) if limit is not None else None
        if self.limit is not None and not self.missing:
            raise ValueError("limit needs missing=text")
        if not self.info_codes and not self.codes_file and not self.missing:
            raise ValueError("needs info_codes=NW…,NW…, codes_file=PATH or missing=text")
        if self.codes_file and not self.codes_file.is_file():
            raise ValueError(f"no codes file at {codes_file}")

    def codes(self):
        yield from self.info_codes
        if self.codes_file:
            with open(self.codes_file, encoding="utf-8") as handle:  # read lazily: files can be long
                for line in handle:
                    if line.strip() and not line.lstrip().startswith("#"):
                        yield line

    async def start(self):
        if self.locked:
            return
        if self.missing:
            for code, kind in await self.posts_missing_text():
                text_id = site_code(code, kind)
                yield scrapy.Request(
                    self.url(SHARE_TEXT.format(quote(text_id))), callback=self.parse_share_text, errback=self.failed,
                    cb_kwargs={"code": text_id, "page_url": self.url(SHARE_PAGE.format(quote(text_id))),
                               "page_title": ""})
        for raw in self.codes():
            code = raw.strip()
            url = self.url(SHARE_PAGE.format(quote(code)))
            if not normalize_info_code(code):
                yield self.rejected(url, Reason.BAD_INFO_CODE, f"not an infoCode: {code[:100]!r}", raw_code=code[:100])
                continue
            yield scrapy.Request(url, callback=self.parse_share_page, errback=self.failed,
                                 cb_kwargs={"code": code})

    async def posts_missing_text(self) -> list[tuple[str, str]]:
        """Stored posts without a kept text answer, read in a thread; none
        (a logged warning, counted) without the database."""
        found = await CrawlDatabase.of(self.crawler).call_in_thread(
            lambda db: list(posts_missing_text(db, self.limit)), failing="Reading the posts without a text answer")
        if found is None:
            self.logger.warning("Cannot read the posts without a text answer (database unavailable); nothing to fetch")
            self.crawler.stats.inc_value("finews/missing_text_unread")
            return []
        self.crawler.stats.set_value("finews/missing_text", len(found))
        return found

    def parse_share_page(self, response, code: str):
        try:
            title = share_page_title(self.page_text(response))
        except PageError as error:
            yield self.retry_or_reject(response, error, raw_code=code)
            return
        yield scrapy.Request(
            self.url(SHARE_TEXT.format(quote(code))),
            callback=self.parse_share_text,
            errback=self.failed,
            cb_kwargs={"code": code, "page_url": response.url, "page_title": title},
        )

    def parse_share_text(self, response, code: str, page_url: str, page_title: str):
        try:
            answer = self.page_text(response, expect_html=False)
            text = parse_share_text(answer)
        except PageError as error:
            yield self.retry_or_reject(response, error, raw_code=code, title=page_title)
            return
        yield PostItem(
            spider=self.name,
            url=page_url,
            title=text.title or page_title,
            time_text=text.showtime,
            raw_html=text.body_html,
            raw_article=text.body_html.strip("\n"),
            source_url=page_url,
            raw_code=code,
            media=text.media,
            text_payload=answer,  # the whole answer, kept: the export writes the original's file from it
        )
