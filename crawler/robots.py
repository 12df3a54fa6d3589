"""Scrapy's robots.txt middleware, honoured for every request however many
wait on one robots.txt, with a reason for what it forbids and one log line
for a robots.txt that cannot be fetched."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from scrapy.downloadermiddlewares import robotstxt
from scrapy.exceptions import IgnoreRequest
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.defer import Deferred

from crawler.scope import Refused
from finews.core.reasons import Reason

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
    """``ROBOTSTXT_OBEY`` as Scrapy does it, with ``OneLineRobotsErrors``,
    for every request, and a forbidden page a ``robots_forbidden`` reject.

    Scrapy (2.19) makes the requests that arrive while a host's robots.txt is
    being fetched wait on one shared Deferred; the first waiter's callback
    returns None, so every later waiter gets None, read as "no robots.txt",
    and is fetched whatever robots.txt says (3 of 5 feeds started at once).
    The parser is read again from ``_parsers`` once the wait is over: by then
    it holds the parsed robots.txt, or None when it could not be fetched.
    """

    def __init__(self, crawler):
        super().__init__(crawler)
        if not any(isinstance(f, OneLineRobotsErrors) for f in FILTERED_LOGGER.filters):
            FILTERED_LOGGER.addFilter(OneLineRobotsErrors())

    async def robot_parser(self, request):
        parser = await super().robot_parser(request)
        settled = self._parsers.get(urlparse_cached(request).netloc)
        return parser if isinstance(settled, Deferred) else settled

    def process_request_2(self, rp, request):
        try:
            super().process_request_2(rp, request)
        except Refused:
            raise
        except IgnoreRequest:
            raise Refused(Reason.ROBOTS_FORBIDDEN, f"{request.url} is disallowed by robots.txt") from None
