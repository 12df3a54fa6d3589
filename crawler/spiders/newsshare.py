"""Fetch news-share pages and their article text by infoCode."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import scrapy

from crawler.items import PostItem
from crawler.spiders.base import SiteSpider
from finews.core.infocode import normalize_info_code
from finews.core.pages import PageError, parse_share_text, share_page_title
from finews.core.reasons import Reason

SHARE_PAGE = "/html_News/NewsShare.html?infoCode={}"
SHARE_TEXT = "/NewsData/GetNewsText.do?id={}"


class NewsShareSpider(SiteSpider):
    """``scrapy crawl newsshare -a info_codes=NW…,NW… | -a codes_file=PATH [-a site=URL]``"""

    name = "newsshare"
    default_site = "http://finews.zning.xyz"

    def __init__(self, info_codes: str | None = None, codes_file: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.info_codes = [c for c in (info_codes or "").replace("\n", ",").split(",") if c.strip()]
        self.codes_file = Path(codes_file) if codes_file else None
        if not self.info_codes and not self.codes_file:
            raise ValueError("needs info_codes=NW…,NW… or codes_file=PATH")
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
        for raw in self.codes():
            code = raw.strip()
            url = self.url(SHARE_PAGE.format(quote(code)))
            if not normalize_info_code(code):
                yield self.rejected(url, Reason.BAD_INFO_CODE, f"not an infoCode: {code[:100]!r}", raw_code=code[:100])
                continue
            yield scrapy.Request(url, callback=self.parse_share_page, errback=self.failed,
                                 cb_kwargs={"code": code})

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
            text = parse_share_text(self.page_text(response, expect_html=False))
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
        )
