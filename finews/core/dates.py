"""Publication times. The site writes Asia/Shanghai local times, with or
without ``+0800``; everything is stored as UTC."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import dateparser

SITE_TZ = ZoneInfo("Asia/Shanghai")
_STAMP = re.compile(
    r"(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}(?::\d{2})?)(?:\.\d+)?\s*(Z|[+-]\d{2}:?\d{2})?"
)
_BARE_OFFSET = re.compile(r"^\s*(?:[+-]\d{2}:?\d{2}|Z)?\s*$")
_DATEPARSER_SETTINGS = {
    "TIMEZONE": "Asia/Shanghai",
    "TO_TIMEZONE": "UTC",
    "RETURN_AS_TIMEZONE_AWARE": True,
    "PREFER_DAY_OF_MONTH": "first",
}


def parse_published(text: str | None) -> datetime | None:
    """A UTC datetime for the site's time text, or None when there is none.

    The common ``YYYY-MM-DD HH:MM:SS[ +0800]`` shape is read directly (it is
    on every page, and dateparser costs a millisecond a call); anything else
    goes to dateparser.
    """
    if not text or _BARE_OFFSET.match(text):
        return None
    match = _STAMP.search(text)
    if match:
        date, clock, offset = match.groups()
        if clock.count(":") == 1:
            clock += ":00"
        try:
            local = datetime.strptime(f"{date} {clock}", "%Y-%m-%d %H:%M:%S")
        except ValueError:
            return None
        if offset:
            offset = "+00:00" if offset == "Z" else offset
            stamp = datetime.strptime(offset.replace(":", ""), "%z").tzinfo
            return local.replace(tzinfo=stamp).astimezone(timezone.utc)
        return local.replace(tzinfo=SITE_TZ).astimezone(timezone.utc)
    parsed = dateparser.parse(text, settings=_DATEPARSER_SETTINGS, languages=["zh", "en"])
    return parsed.astimezone(timezone.utc) if parsed else None
