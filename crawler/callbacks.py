"""A callback that raises for one page makes that page a reject.

Parsers turn the damage they foresee into ``PageError`` and a reason; this
spider middleware catches everything else a callback raises (a parser bug,
input nobody imagined), so that the page is filed in ``rejects`` with reason
``item_error`` and the error in one line, instead of a traceback in the log
and a page gone in silence.
"""

from __future__ import annotations

import logging

from finews.core.pages import PageError
from finews.core.reasons import Reason

logger = logging.getLogger(__name__)


class CallbackErrorsMiddleware:
    """Turn an exception raised by a spider callback into that page's reject."""

    def __init__(self, stats):
        self.stats = stats

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler.stats)

    def process_spider_exception(self, response, exception, spider=None):
        if not hasattr(spider, "rejected"):
            return None
        reason = exception.reason if isinstance(exception, PageError) else Reason.ITEM_ERROR
        detail = f"{type(exception).__name__}: {str(exception).strip()[:300]}"
        self.stats.inc_value(f"finews/callback_errors/{type(exception).__name__}")
        logger.error("Callback for %s raised %s; the page is kept as a %s reject", response.url, detail, reason)
        kwargs = response.request.cb_kwargs if response.request is not None else {}
        fields = {"raw_code": str(kwargs.get("code") or "")[:100]}
        if kwargs.get("listing_title"):
            fields["listing_title"] = kwargs["listing_title"]
        return [spider.rejected(response.url, reason, detail, **fields)]
