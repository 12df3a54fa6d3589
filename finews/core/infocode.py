"""infoCodes: the key every stored post is filed under.

A rolling-news id is 18 digits (``202112082206672930``); a media or market
news code is ``NW`` followed by the same kind of 18 digits
(``NW202203012292975846``). Both name the same article when the digits match,
so the normalized key is always ``NW`` + 18 digits.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

_CODE = re.compile(r"^(?:NW)?(\d{18})$", re.IGNORECASE)
_EASTMONEY_NEWS = re.compile(r"/news/[^/,]*,(\d{18})\.html?$")
_ROLLING = re.compile(r"^\d{18}$")


def normalize_info_code(raw: str | None) -> str | None:
    """Return the canonical ``NW…`` key for a code, or None if it is not one."""
    if not raw:
        return None
    match = _CODE.match(raw.strip())
    if not match:
        return None
    digits = match.group(1)
    if not _plausible_date(digits[:8]):
        return None
    return "NW" + digits


MEDIA, ROLLING = "media", "rolling"


def is_rolling_news_code(raw: str) -> bool:
    """Rolling news (东财滚动新闻) uses the bare 18-digit id."""
    return bool(_ROLLING.match(raw.strip()))


def code_kind(raw: str) -> str:
    """``rolling`` for a bare 18-digit id, ``media`` for an ``NW`` code."""
    return ROLLING if is_rolling_news_code(raw) else MEDIA


def site_code(info_code: str, kind: str | None) -> str:
    """The code as the site writes it for a post of this kind: rolling news
    drops the ``NW`` (the inverse of ``normalize_info_code``)."""
    return info_code[2:] if kind == ROLLING else info_code


def info_code_from_url(url: str | None) -> str | None:
    """The raw code an article link points at, as written in the link.

    Accepts share pages (``NewsShare.html?infoCode=…``), the JSON endpoint
    (``GetNewsText.do?id=…``) and eastmoney article pages
    (``/news/<column>,<id>.html``).
    """
    if not url:
        return None
    parts = urlsplit(url.strip())
    query = parse_qs(parts.query)
    for key in ("infoCode", "infocode", "id"):
        if query.get(key):
            return query[key][0].strip()
    match = _EASTMONEY_NEWS.search(parts.path)
    return match.group(1) if match else None


def _plausible_date(yyyymmdd: str) -> bool:
    year, month, day = int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:])
    return 2000 <= year <= 2100 and 1 <= month <= 12 and 1 <= day <= 31
