"""The JOBDIR queue names a request's callback and errback as Scrapy's own
does, from the spider's methods alone (issue 23: Scrapy's lookup reads every
attribute of the spider per request)."""

from __future__ import annotations

import scrapy
from scrapy.utils.test import get_crawler

from crawler.scheduler import PickleLifoDiskQueue, _Callbacks
from crawler.spiders.category import CategorySpider


def _spider():
    crawler = get_crawler(CategorySpider, {"FINEWS_REDIS_URL": None})
    crawler.spider = CategorySpider.from_crawler(crawler, site="http://127.0.0.1:1")
    return crawler


def test_callbacks_are_named_as_scrapy_names_them():
    spider = _spider().spider
    for callback, errback in ((spider.parse_listing, spider.listing_failed), (spider.parse_post, spider.failed)):
        request = scrapy.Request("http://127.0.0.1:1/x", callback=callback, errback=errback, meta={"a": 1})
        assert request.to_dict(spider=_Callbacks(spider)) == request.to_dict(spider=spider)
        assert request.to_dict(spider=_Callbacks(spider))["callback"] == callback.__name__


def test_the_disk_queue_gives_back_the_request_it_took(tmp_path):
    crawler = _spider()
    spider = crawler.spider
    queue = PickleLifoDiskQueue.from_crawler(crawler, str(tmp_path / "q"))
    queue.push(scrapy.Request("http://127.0.0.1:1/a", callback=spider.parse_post, errback=spider.failed))
    popped = queue.pop()
    assert (popped.url, popped.callback, popped.errback) == ("http://127.0.0.1:1/a", spider.parse_post, spider.failed)
    queue.close()
