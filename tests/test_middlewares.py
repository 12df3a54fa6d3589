"""The downloader and spider middlewares as Scrapy builds them
(``get_crawler`` + ``from_crawler``), against a real database: what each one
lets through, drops or retries, and what it counts."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from scrapy import Request
from scrapy.http import Response
from scrapy.utils.test import get_crawler

from crawler.middlewares import (
    OffSite,
    RetryAfterMiddleware,
    SkipKnownPostsMiddleware,
    StayOnSiteMiddleware,
    retry_after_seconds,
)
from crawler.spiders.category import CategorySpider
from finews.core.infocode import MEDIA, ROLLING

SITE = "http://127.0.0.1:8000"
KNOWN, ROLLING_TWIN, NEW = "NW202203012292975846", "NW202205262391921712", "NW202203012292975000"


def _crawler(spider_args=None, **settings):
    crawler = get_crawler(CategorySpider, settings_dict={"RETRY_TIMES": 2, **settings})
    crawler.spider = CategorySpider.from_crawler(crawler, site=SITE, **(spider_args or {}))
    return crawler


def _post_request(code: str, kind: str = MEDIA, title: str = "标题") -> Request:
    return Request(f"{SITE}/hebeiribao/2022/03/01/{code}.html", meta={"known_check": (code, kind, title)})


@pytest.fixture
def stored(db):
    """One media post and one rolling post already in the database."""
    db.posts.insert_many([{"_id": KNOWN, "info_code": KNOWN, "title": "标题", "kind": MEDIA},
                          {"_id": ROLLING_TWIN, "info_code": ROLLING_TWIN, "title": "滚动", "kind": ROLLING}],
                         bypass_document_validation=True)
    return db


def _skip_known(mongo_uri, db_name, refresh="new"):
    crawler = _crawler({"refresh": refresh}, MONGO_URI=mongo_uri, MONGO_DATABASE=db_name)
    return crawler, SkipKnownPostsMiddleware.from_crawler(crawler)


def test_known_posts_are_not_asked_for_again(stored, mongo_uri, db_name):
    crawler, middleware = _skip_known(mongo_uri, db_name)
    requests = [_post_request(KNOWN), _post_request(NEW), _post_request(ROLLING_TWIN, MEDIA, "滚动")]
    kept = list(middleware._unknown(requests, middleware._stored(requests), middleware.refresh))
    # the new post, and the media version of a post stored as rolling news (it replaces its twin)
    assert [r.meta["known_check"][0] for r in kept] == [NEW, ROLLING_TWIN]
    assert crawler.stats.get_value("finews/skipped_known") == 1


def test_refresh_changed_asks_again_for_posts_whose_listing_title_changed(stored, mongo_uri, db_name):
    crawler, middleware = _skip_known(mongo_uri, db_name, refresh="changed")
    requests = [_post_request(KNOWN, title="新 标题"), _post_request(ROLLING_TWIN, ROLLING, "滚动")]
    kept = list(middleware._unknown(requests, middleware._stored(requests), middleware.refresh))
    assert [r.meta["known_check"][0] for r in kept] == [KNOWN]
    assert crawler.stats.get_value("finews/refetched_changed_title") == 1


def test_without_a_database_every_post_looks_new():
    crawler = _crawler({}, MONGO_URI="mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=200",
                       MONGO_TIMEOUT_MS=200)
    middleware = SkipKnownPostsMiddleware.from_crawler(crawler)
    assert middleware._stored([_post_request(KNOWN)]) is None  # the caller then fetches them all


def test_off_site_requests_are_refused_through_the_errback():
    crawler = _crawler()
    middleware = StayOnSiteMiddleware.from_crawler(crawler)
    assert middleware.process_request(Request(f"{SITE}/category/x.html")) is None
    with pytest.raises(OffSite) as refused:
        middleware.process_request(Request("http://elsewhere.example/x.html"))
    assert refused.value.reason == "offsite"
    assert crawler.stats.get_value("finews/offsite_blocked") == 1


def test_a_redirect_off_site_is_retried_then_refused():
    crawler = _crawler()
    middleware = StayOnSiteMiddleware.from_crawler(crawler)
    request = Request(f"{SITE}/hebeiribao/2022/03/01/{KNOWN}.html")
    away = Response(request.url, status=302, headers={"Location": "http://elsewhere.example/"}, request=request)
    for _ in range(2):  # RETRY_TIMES
        request = middleware.process_response(request, away.replace(request=request))
        assert isinstance(request, Request) and request.url.startswith(SITE)
    with pytest.raises(OffSite) as refused:
        middleware.process_response(request, away.replace(request=request))
    assert refused.value.reason == "redirect_offsite"
    assert crawler.stats.get_value("finews/offsite_redirects") == 3
    on_site = Response(request.url, status=301, headers={"Location": "/category/x.html"}, request=request)
    assert middleware.process_response(request, on_site) is on_site  # Scrapy's redirect follows it


def test_retry_after_waits_as_asked_then_retries():
    crawler = _crawler(FINEWS_RETRY_AFTER_MAX=5)
    middleware = RetryAfterMiddleware.from_crawler(crawler)
    request = Request(f"{SITE}/category/x.html")
    busy = Response(request.url, status=429, headers={"Retry-After": "0"}, request=request)
    retry = asyncio.run(middleware.process_response(request, busy))
    assert isinstance(retry, Request) and retry.meta["retry_times"] == 1
    assert crawler.stats.get_value("finews/retry_after_waits") == 1
    plain = Response(request.url, status=503, request=request)
    assert asyncio.run(middleware.process_response(request, plain)) is plain  # no header: Scrapy's retry decides


def test_retry_after_reads_seconds_and_dates():
    assert retry_after_seconds("120") == 120
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)
    assert 55 <= retry_after_seconds(later) <= 60
    assert retry_after_seconds("soon") is None and retry_after_seconds("") is None
