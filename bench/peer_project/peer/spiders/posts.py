"""Every post of the mirror (``-a site=http://host:port``): the home page
and the categories page list posts, a post page links its category listing
(``a.next`` to its further pages), listings list posts; a post page gives
its title, date and article (the ``<section>``) with parsel, as the
tutorial teaches."""

import re
from urllib.parse import urlsplit

import scrapy

POST = re.compile(r"^/[^/]+/\d{4}/\d{2}/\d{2}/[^/]+\.html$")
LISTING = re.compile(r"^/(category/[^/]+\.html|categories/|emnews/)$")


class PostsSpider(scrapy.Spider):
    name = "posts"

    def __init__(self, site="http://127.0.0.1:4000", **kwargs):
        super().__init__(**kwargs)
        self.site = site.rstrip("/")
        self.start_urls = [f"{self.site}/", f"{self.site}/categories/"]

    def parse(self, response):
        for href in response.css("a::attr(href)").getall():
            parts = urlsplit(response.urljoin(href))
            if POST.match(parts.path):
                yield scrapy.Request(f"{self.site}{parts.path}", callback=self.parse_post)
            elif LISTING.match(parts.path):  # the mirror links its listings under the real site's host
                yield scrapy.Request(f"{self.site}{parts.path}" + (f"?{parts.query}" if parts.query else ""))

    def parse_post(self, response):
        section = response.css("section")
        yield {
            "url": response.url,
            "title": section.css("h1::text").get(),
            "date": section.css("small::text").re_first(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}"),
            "section": section.get(),
        }
        yield from self.parse(response)  # its category listing (the dupe filter drops what was seen)
