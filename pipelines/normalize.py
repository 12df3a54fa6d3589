"""Item pipeline: give each item its stored fields (``finews.core.normalize``),
or mark it rejected with every reason found, so that storage files it."""

from __future__ import annotations

from itemadapter import ItemAdapter

from finews.core.normalize import Rejected, normalize_post
from pipelines.guard import rejects_on_error


class NormalizePipeline:
    """Give each item its stored fields, or the reasons it cannot be stored."""

    @rejects_on_error("normalize")
    def process_item(self, item, spider=None):
        adapter = ItemAdapter(item)
        if adapter.get("reject_reason") or adapter.get("feed_listing") is not None:
            return item  # a feed's listing is kept as it is, not a post
        try:
            normalized = normalize_post(adapter.asdict())
        except Rejected as rejected:
            adapter["reject_reason"] = rejected.reason
            adapter["reject_detail"] = str(rejected)
            return item
        for key, value in normalized.items():
            adapter[key] = value
        return item
