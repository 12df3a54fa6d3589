"""Fetching only what is meant (issue 18, part 3), middleware by middleware as
Scrapy builds them (``get_crawler`` + ``from_crawler``): which URLs are on the
site, what a redirect may lead to, robots.txt for every request, and a body
too large to read. Each refusal carries the reason its reject gets."""

from __future__ import annotations

import asyncio
import gzip

import pytest
from scrapy import Request
from scrapy.exceptions import DownloadCancelledError, IgnoreRequest
from scrapy.http import Response, TextResponse
from scrapy.utils.test import get_crawler

from crawler import scope
from crawler.middlewares import DecompressionLimit, StayOnSiteMiddleware
from crawler.robots import RobotsTxtMiddleware
from crawler.spiders.category import CategorySpider
from crawler.spiders.newslist import NewsListSpider
from finews.core.reasons import FETCH, Reason

SITE = "http://127.0.0.1:8000"
PAGE = f"{SITE}/hebeiribao/2022/03/01/NW202203012292975846.html"

# The rule as the issue states it: http(s), and scheme, host and port (80/443
# when not written) those of the configured site.
ON_SITE = [
    f"{SITE}/category/x.html",
    "HTTP://127.0.0.1:8000/x",             # a scheme is case-insensitive
    "http://127.0.0.1:08000/x",            # the same port, written oddly
]
OFF_SITE = [
    "file://127.0.0.1:8000/category/x.html",   # the file handler ignores the host: a local file
    "file://127.0.0.1/etc/passwd",
    "ftp://127.0.0.1:8000/category/x.html",
    "s3://127.0.0.1:8000/x",
    "data:text/html,<a href=x>x</a>",
    "https://127.0.0.1:8000/x",            # same host and port, another scheme
    "http://127.0.0.1:27017/x",            # another port of the site's host (the database's)
    "http://127.0.0.1/x",                  # port 80
    "http://sub.127.0.0.1:8000/x",         # subdomains are other hosts
    "http://elsewhere.example:8000/x",
    "http://user@127.0.0.1:8000/x",        # credentials: hosts read them differently
    "http://127.0.0.1:99999/x",            # no such port
    "javascript:alert(1)",
    "//127.0.0.1:8000/x",                  # no scheme: not a URL a request can have
]


def _crawler(spider_cls=CategorySpider, **spider_args):
    crawler = get_crawler(spider_cls, settings_dict={"RETRY_TIMES": 1, "REDIRECT_MAX_TIMES": 3,
                                                     "ROBOTSTXT_OBEY": True})
    crawler.spider = spider_cls.from_crawler(crawler, **({"site": SITE} | spider_args))
    return crawler


@pytest.mark.parametrize("url", ON_SITE + OFF_SITE)
def test_the_spider_and_the_downloader_apply_one_rule(url):
    """The spider's link check and the downloader's guard give the same answer."""
    crawler = _crawler()
    guard = StayOnSiteMiddleware.from_crawler(crawler)
    expected = url in ON_SITE
    assert crawler.spider.on_site(url) is expected
    assert guard._on_site(url) is expected
    assert scope.on_site(url, scope.origins_of(crawler.spider)) is expected


def test_both_paths_ask_crawler_scope_and_nothing_else(monkeypatch):
    """Not two rules that agree on the samples above: the spider's link checks
    (``on_site``, ``on_mirror``) and the guard's request and redirect checks
    all answer with ``crawler.scope.on_site``; a rule changed there changes
    all of them. Here it allows only ``file://`` and another port: the very
    URLs the real rule refuses."""
    crawler = _crawler()
    guard = StayOnSiteMiddleware.from_crawler(crawler)
    inverted, asked = {"file://127.0.0.1:8000/x", "http://127.0.0.1:27017/x"}, []
    monkeypatch.setattr(scope, "on_site", lambda url, origins: asked.append(url) or url in inverted)
    for url in sorted(inverted):
        assert crawler.spider.on_site(url) and crawler.spider.on_mirror(url) == url
        assert guard.process_request(Request(url)) is None
        request = Request(url)
        redirect = _redirect(request, next(other for other in inverted if other != url))
        assert guard.process_response(request, redirect) is redirect  # on "the site": Scrapy follows it
    assert crawler.spider.on_site(PAGE) is False
    with pytest.raises(IgnoreRequest):
        guard.process_request(Request(PAGE))
    assert len(asked) == 4 * len(inverted) + 2


# Those a Request can be made of (Scrapy itself refuses a URL without "://",
# but data:, and a port over 65535).
@pytest.mark.parametrize("url", [u for u in OFF_SITE if not u.startswith(("//", "javascript:")) and ":99999" not in u])
def test_an_off_site_request_is_refused_through_the_errback(url):
    crawler = _crawler()
    with pytest.raises(IgnoreRequest) as refused:
        StayOnSiteMiddleware.from_crawler(crawler).process_request(Request(url))
    assert refused.value.reason == "offsite"


def test_back_links_to_the_mirror_host_are_read_on_the_site_only_over_http():
    spider = _crawler().spider
    assert spider.on_mirror("https://finews.withounder.com/category/hebeiribao.html") == \
        f"{SITE}/category/hebeiribao.html"
    assert spider.on_mirror("http://finews.zning.me/category/x.html?p=2") == f"{SITE}/category/x.html?p=2"
    assert spider.on_mirror(f"{SITE}/category/x.html") == f"{SITE}/category/x.html"
    for link in ("file://finews.withounder.com/category/x.html", "ftp://finews.withounder.com/category/x.html",
                 "file://127.0.0.1:8000/category/x.html", "http://127.0.0.1:27017/category/x.html",
                 "data:text/html,finews.withounder.com"):
        assert spider.on_mirror(link) is None, link


def test_newslist_is_on_site_on_each_configured_host_and_port_only():
    spider = _crawler(NewsListSpider, site=None, market_api="http://127.0.0.1:1818",
                      list_api="http://127.0.0.1:9001", text_site="http://127.0.0.1:9002").spider
    guard = StayOnSiteMiddleware.from_crawler(spider.crawler)
    for port, expected in ((1818, True), (9001, True), (9002, True), (80, False), (27017, False)):
        url = f"http://127.0.0.1:{port}/list.json"
        assert spider.on_site(url) is expected and guard._on_site(url) is expected, port


@pytest.mark.parametrize("site", ["file:///tmp/site", "ftp://127.0.0.1", "http://user@127.0.0.1:8000", "127.0.0.1"])
def test_a_site_that_is_not_an_http_origin_is_refused(site):
    with pytest.raises(ValueError):
        CategorySpider.from_crawler(get_crawler(CategorySpider), site=site)


def _redirect(request: Request, location: str, status: int = 302) -> Response:
    return Response(request.url, status=status, headers={"Location": location}, request=request)


@pytest.mark.parametrize("location", ["file://127.0.0.1:8000/category/x.html", "http://127.0.0.1:27017/",
                                      "ftp://127.0.0.1:8000/x", "data:text/html,hi"])
def test_a_redirect_to_another_scheme_or_port_is_retried_then_refused(location):
    crawler = _crawler()
    guard = StayOnSiteMiddleware.from_crawler(crawler)
    request = Request(PAGE)
    retry = guard.process_response(request, _redirect(request, location))
    assert isinstance(retry, Request) and retry.url == PAGE  # RETRY_TIMES = 1
    with pytest.raises(IgnoreRequest) as refused:
        guard.process_response(retry, _redirect(retry, location))
    assert refused.value.reason == "redirect_offsite"
    assert "hi" not in str(refused.value)  # a data: URL's content is not repeated in the reject


def test_a_redirect_back_to_its_own_chain_is_a_loop_at_once():
    crawler = _crawler()
    guard = StayOnSiteMiddleware.from_crawler(crawler)
    first = Request(f"{SITE}/a.html")
    assert guard.process_response(first, _redirect(first, "/b.html")).status == 302  # RedirectMiddleware follows
    second = Request(f"{SITE}/b.html", meta={"redirect_urls": [first.url], "redirect_times": 1})
    with pytest.raises(IgnoreRequest) as refused:
        guard.process_response(second, _redirect(second, "/a.html#top"))
    assert refused.value.reason == "redirect_loop"
    itself = Request(f"{SITE}/c.html")
    with pytest.raises(IgnoreRequest) as refused:
        guard.process_response(itself, _redirect(itself, "/c.html", status=301))
    assert refused.value.reason == "redirect_loop"
    assert crawler.stats.get_value("finews/redirect_loops") == 2


def test_a_chain_longer_than_redirect_max_times_is_named():
    crawler = _crawler()  # REDIRECT_MAX_TIMES = 3
    guard = StayOnSiteMiddleware.from_crawler(crawler)
    chain = [f"{SITE}/r{i}.html" for i in range(3)]
    request = Request(f"{SITE}/r3.html", meta={"redirect_urls": chain, "redirect_times": 3})
    with pytest.raises(IgnoreRequest) as refused:
        guard.process_response(request, _redirect(request, "/r4.html"))
    assert refused.value.reason == "too_many_redirects"
    shorter = Request(f"{SITE}/r2.html", meta={"redirect_urls": chain[:2], "redirect_times": 2})
    assert guard.process_response(shorter, _redirect(shorter, "/r3.html")).status == 302


def _bomb(size: int) -> bytes:
    return gzip.compress(b"\0" * size, compresslevel=9)


def test_a_gzip_bomb_is_download_too_large():
    crawler = get_crawler(CategorySpider, settings_dict={"DOWNLOAD_MAXSIZE": 1_000_000})
    middleware = DecompressionLimit.from_crawler(crawler)
    request = Request(PAGE)
    bomb = _bomb(20_000_000)
    assert len(bomb) < 100_000  # small as sent: DOWNLOAD_MAXSIZE alone does not stop it
    response = Response(PAGE, body=bomb, headers={"Content-Encoding": "gzip"}, request=request)
    with pytest.raises(IgnoreRequest) as refused:
        middleware.process_response(request, response)
    assert refused.value.reason == "download_too_large"
    small = Response(PAGE, body=gzip.compress(b"<html>ok</html>"), headers={"Content-Encoding": "gzip"},
                     request=request)
    assert middleware.process_response(request, small).body == b"<html>ok</html>"


def test_a_body_cut_at_download_maxsize_is_download_too_large():
    middleware = DecompressionLimit.from_crawler(get_crawler(CategorySpider))
    with pytest.raises(IgnoreRequest) as refused:
        middleware.process_exception(Request(PAGE), DownloadCancelledError("Received 9000000 bytes…"))
    assert refused.value.reason == "download_too_large"
    assert middleware.process_exception(Request(PAGE), TimeoutError()) is None  # left to retries


class _Engine:
    """Answers robots.txt after a pause, as a real host does, and counts it."""

    def __init__(self, body: bytes):
        self.body, self.asked = body, 0

    async def download_async(self, request):
        self.asked += 1
        await asyncio.sleep(0.05)
        return TextResponse(request.url, body=self.body, request=request)


def _robots(body: bytes, requests: list[Request]):
    crawler = _crawler()
    crawler.engine = _Engine(body)
    middleware = RobotsTxtMiddleware.from_crawler(crawler)

    async def all_at_once():
        return await asyncio.gather(*(middleware.process_request(r) for r in requests), return_exceptions=True)

    return crawler, asyncio.run(all_at_once())


def test_robots_txt_is_honoured_for_every_request_waiting_on_it():
    """Five feeds asked at once: Scrapy let the third to fifth through."""
    requests = [Request(f"{SITE}/feed{i}.json") for i in range(5)]
    crawler, results = _robots(b"User-agent: *\nDisallow: /\n", requests)
    assert crawler.engine.asked == 1
    assert [getattr(r, "reason", r) for r in results] == ["robots_forbidden"] * 5
    assert all(isinstance(r, IgnoreRequest) for r in results)
    assert crawler.stats.get_value("robotstxt/forbidden") == 5


def test_robots_txt_still_lets_allowed_pages_through():
    requests = [Request(f"{SITE}/open/{i}.html") for i in range(3)] + [Request(f"{SITE}/closed/x.html")]
    _, results = _robots(b"User-agent: *\nDisallow: /closed/\n", requests)
    assert results[:3] == [None] * 3 and results[3].reason == "robots_forbidden"


@pytest.mark.parametrize("name", ["robots_forbidden", "redirect_loop", "too_many_redirects",
                                  "download_too_large", "ignored", "offsite", "redirect_offsite"])
def test_a_page_not_fetched_leaves_the_run_partial(name):
    """These reasons are fetch failures, which the run record counts as partial."""
    assert Reason(name).kind == FETCH
