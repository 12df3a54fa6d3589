"""Scrapy's robots.txt middleware, with one log line for a robots.txt that
cannot be fetched."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from scrapy.downloadermiddlewares import robotstxt

FILTERED_LOGGER = logging.getLogger(robotstxt.__name__)


class OneLineRobotsErrors(logging.Filter):
    """An unreachable site makes Scrapy log the robots.txt failure with a
    full traceback (60 lines per host) before its pages fail on their own.
    The record keeps its level, so it is still counted in ``log_count/ERROR``
    (and by Scrapy in ``robotstxt/exception_count/…``), without the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.exc_info or not isinstance(record.args, dict) or "request" not in record.args:
            return True
        error = record.exc_info[1]
        url = urlsplit(getattr(record.args["request"], "url", ""))
        record.msg = "robots.txt of %s could not be fetched (%s: %s); its pages are fetched without its rules"
        detail = (str(error).strip().splitlines() or [""])[0]
        record.args = (f"{url.scheme}://{url.netloc}", type(error).__name__, detail)
        record.exc_info = record.exc_text = None
        return True


class RobotsTxtMiddleware(robotstxt.RobotsTxtMiddleware):
    """``ROBOTSTXT_OBEY`` as Scrapy does it, with ``OneLineRobotsErrors``."""

    def __init__(self, crawler):
        super().__init__(crawler)
        if not any(isinstance(f, OneLineRobotsErrors) for f in FILTERED_LOGGER.filters):
            FILTERED_LOGGER.addFilter(OneLineRobotsErrors())
