"""Item pipeline: replace each item's raw article HTML with its clean form
(``finews.core.clean``)."""

from __future__ import annotations

from itemadapter import ItemAdapter

from finews.core.clean import clean_article
from pipelines.guard import rejects_on_error


class CleanPipeline:
    """Replace the raw article HTML of each item with its clean form."""

    @rejects_on_error("clean")
    def process_item(self, item, spider=None):
        adapter = ItemAdapter(item)
        if adapter.get("reject_reason"):
            return item
        article = clean_article(adapter.get("raw_html") or "")
        adapter["body_html"] = article.body_html
        adapter["body_text"] = article.body_text
        adapter["images"] = article.images
        return item
