"""Log dropped duplicates in one line instead of dumping the whole item."""

import logging

from scrapy.logformatter import LogFormatter


class FinewsLogFormatter(LogFormatter):
    def dropped(self, item, exception, response, spider=None):
        return {"level": logging.INFO, "msg": "Dropped: %(exception)s", "args": {"exception": exception}}
