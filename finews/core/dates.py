"""Publication times. The site writes Asia/Shanghai local times, with or
without ``+0800``; everything is stored as UTC."""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo

import dateparser

SITE_TZ = ZoneInfo("Asia/Shanghai")
# Stored publication times lie in this range (UTC): older or later is no news
# date but a source's mistake, and years near 1 or 9999 overflow on the way
# to local time. Outside it a post is a ``date_out_of_range`` reject.
EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


def in_range(when: datetime) -> bool:
    """Whether a stored time may hold ``when`` (aware, any zone)."""
    try:
        return EARLIEST <= when < LATEST
    except (OverflowError, TypeError):
        return False
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


class OutOfRange(ValueError):
    """A time that parses but lies outside ``EARLIEST``..``LATEST``."""


# Longer time text is no time the site writes; dateparser's cost grows with it.
_MAX_TEXT = 200


def parse_published(text: str | None) -> datetime | None:
    """A UTC datetime for the site's time text; None when there is none, it
    does not parse, or it lies outside the stored range. Never raises."""
    try:
        return read_published(text)
    except OutOfRange:
        return None


def read_published(text: str | None) -> datetime | None:
    """A UTC datetime for the site's time text, or None when there is none
    that parses; ``OutOfRange`` for a time outside ``EARLIEST``..``LATEST``.

    The common ``YYYY-MM-DD HH:MM:SS[ +0800]`` shape is read directly (it is
    on every page, and dateparser costs a millisecond a call); anything else
    goes to dateparser.
    """
    if not text or _BARE_OFFSET.match(text) or len(text) > _MAX_TEXT:
        return None
    match = _STAMP.search(text)
    if match:
        date, clock, offset = match.groups()
        if clock.count(":") == 1:
            clock += ":00"
        try:
            local = datetime.strptime(f"{date} {clock}", "%Y-%m-%d %H:%M:%S")
            zone: tzinfo | None = SITE_TZ
            if offset:
                offset = "+00:00" if offset == "Z" else offset
                zone = datetime.strptime(offset.replace(":", ""), "%z").tzinfo
        except ValueError:  # 2022-02-30, 25:00, an offset such as +2400
            return None
        return _checked(local.replace(tzinfo=zone), text)
    try:
        parsed = dateparser.parse(text, settings=_DATEPARSER_SETTINGS, languages=["zh", "en"])
    except (ValueError, OverflowError):
        return None
    return _checked(parsed, text) if parsed else None


def _checked(when: datetime, text: str) -> datetime:
    """``when`` in UTC, or ``OutOfRange`` (years near 1 and 9999 overflow
    on the way to UTC, so the range is checked first)."""
    if not EARLIEST.year - 1 <= when.year <= LATEST.year:
        raise OutOfRange(f"time {text[:60]!r} is outside {EARLIEST:%Y-%m-%d}..{LATEST:%Y-%m-%d}")
    utc = when.astimezone(UTC)
    if not in_range(utc):
        raise OutOfRange(f"time {text[:60]!r} is outside {EARLIEST:%Y-%m-%d}..{LATEST:%Y-%m-%d}")
    return utc
