"""The one private Scrapy attribute finews relies on still exists.

``pyproject.toml`` pins Scrapy to the minor version tested; when the pin moves,
this test says at once whether the shared scheduler's fast idle polling
(``crawler/scheduler.py``) still works or silently fell back to Scrapy's 5 s.
"""

from scrapy.core.engine import ExecutionEngine


def test_the_engine_still_has_its_idle_heartbeat_interval():
    assert isinstance(getattr(ExecutionEngine, "_SLOT_HEARTBEAT_INTERVAL", None), (int, float))


def test_the_public_close_spider_async_exists():
    """Run records stop a locked or refused crawl with it (``crawler/extensions.py``)."""
    assert callable(getattr(ExecutionEngine, "close_spider_async", None))
