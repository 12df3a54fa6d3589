"""An item step that raises for one item makes that item a reject.

Scrapy logs an exception from ``process_item`` and drops the item; a post
lost that way leaves no reject and no count. ``rejects_on_error`` wraps a
pipeline's ``process_item`` so that the item goes on, marked with reason
``item_error`` and the error in one line, and storage files it.
"""

from __future__ import annotations

import functools
import logging

from itemadapter import ItemAdapter
from scrapy.exceptions import DropItem

from finews.core.reasons import Reason

logger = logging.getLogger(__name__)


def rejects_on_error(step: str):
    def decorate(process_item):
        @functools.wraps(process_item)
        def wrapper(self, item, spider=None):
            try:
                return process_item(self, item, spider)
            except DropItem:
                raise
            except Exception as error:  # one item's problem, whatever it is
                adapter = ItemAdapter(item)
                detail = f"{step}: {type(error).__name__}: {str(error).strip()[:300]}"
                logger.error("Item %s: %s; kept as an %s reject", adapter.get("url"), detail, Reason.ITEM_ERROR)
                adapter["reject_reason"] = Reason.ITEM_ERROR
                adapter["reject_detail"] = detail
                return item

        return wrapper

    return decorate
