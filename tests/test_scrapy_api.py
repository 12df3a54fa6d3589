"""The Scrapy internals finews relies on still exist and behave as it needs.

``pyproject.toml`` pins Scrapy to the minor version tested; when the pin moves,
these tests say at once whether the one private attribute used, the engine's
idle heartbeat (the shared scheduler's fast idle polling in
``crawler/scheduler.py``; without it, Scrapy's 5 s), and the public methods
whose behaviour the code counts on, are still there.
"""

from scrapy.core.engine import ExecutionEngine


def test_the_engine_still_has_its_idle_heartbeat_interval():
    assert isinstance(getattr(ExecutionEngine, "_SLOT_HEARTBEAT_INTERVAL", None), (int, float))


def test_the_public_close_spider_async_exists():
    """Run records stop a locked or refused crawl with it (``crawler/extensions.py``)."""
    assert callable(getattr(ExecutionEngine, "close_spider_async", None))


def test_the_scrapers_public_item_entry_counts_the_item_at_its_first_step():
    """A request the scheduler drops is filed as a reject through
    ``Scraper.start_itemproc_async`` (``crawler/spiders/base.py``), and the run
    must not close before it is stored: the item has to count as in process
    (the scraper not idle) from the coroutine's first step, before any pipeline
    answers. A real Scraper, its pipeline held on a future that never ends."""
    import asyncio

    from scrapy import Spider
    from scrapy.core.scraper import Scraper
    from scrapy.utils.test import get_crawler

    held = asyncio.Future(loop=asyncio.new_event_loop())

    class HeldPipeline:
        async def process_item(self, item):
            await held
            return item

    crawler = get_crawler(Spider, {"ITEM_PIPELINES": {HeldPipeline: 100}})
    crawler.spider = Spider.from_crawler(crawler, name="guard")
    scraper = Scraper(crawler)
    _run_to_first_suspension(scraper.open_spider_async(), finishes=True)
    assert scraper.slot.is_idle()

    processing = scraper.start_itemproc_async({"url": "x"}, response=None)
    _run_to_first_suspension(processing, finishes=False)
    assert not scraper.slot.is_idle()
    processing.close()
    held.get_loop().close()


def _run_to_first_suspension(coroutine, finishes: bool) -> None:
    """Step ``coroutine`` once, as an event loop does when it starts its task."""
    try:
        coroutine.send(None)
    except StopIteration:
        assert finishes, "the coroutine finished without waiting for the pipeline"
        return
    assert not finishes, "the coroutine waited where nothing should"
