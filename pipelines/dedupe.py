"""Drop posts already seen in this run, by normalized infoCode.

A rolling-news id and its ``NW`` twin are one key; when the twin that arrives
second is the preferred kind (media news), it replaces the first instead of
being dropped. Memory grows with the run, not with the database.
"""

from __future__ import annotations

import logging

from itemadapter import ItemAdapter
from scrapy.exceptions import DropItem

from finews.core.normalize import KIND_RANK
from pipelines.guard import rejects_on_error

logger = logging.getLogger(__name__)


class DedupePipeline:
    def __init__(self, stats=None):
        self.stats = stats
        self.seen: dict[str, int] = {}

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler.stats)

    @rejects_on_error("dedupe")
    def process_item(self, item, spider=None):
        adapter = ItemAdapter(item)
        code = adapter.get("info_code")
        if adapter.get("reject_reason") or not code:
            return item
        rank = KIND_RANK.get(adapter.get("kind") or "", 0)
        if code in self.seen and self.seen[code] >= rank:
            if self.stats:
                self.stats.inc_value("finews/duplicates_dropped")
            raise DropItem(f"duplicate infoCode {code} (from {adapter.get('url')})")
        self.seen[code] = rank
        return item
