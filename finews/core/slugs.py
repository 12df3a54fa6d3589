"""Category slugs exactly as the mirror makes them.

The site names each media's listing after the pinyin of the media name with
the separators removed (``xpinyin``'s ``get_pinyin(name).replace("-", "")``);
Latin letters, digits, spaces and brackets pass through. Rolling news is the
exception and lives under ``emnews``.
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import quote

from xpinyin import Pinyin

ROLLING_NEWS_SLUG = "emnews"
ROLLING_NEWS_TAG = "东财滚动新闻"
TAG_SUFFIX = "新闻"

_HAN = re.compile(r"[\u3400-\u9fff]")
_pinyin = Pinyin()


@lru_cache(maxsize=4096)
def media_slug(name: str) -> str:
    """Slug for a media name (河北日报 → hebeiribao); slugs pass unchanged."""
    name = name.strip()
    if name in (ROLLING_NEWS_TAG, media_from_tag(ROLLING_NEWS_TAG)):
        return ROLLING_NEWS_SLUG
    if not _HAN.search(name):
        return name
    spelled: str = _pinyin.get_pinyin(name)
    return spelled.replace("-", "")


def media_from_tag(tag: str) -> str:
    """The media name behind a listing tag: ``<media name>新闻``."""
    tag = tag.strip()
    return tag[: -len(TAG_SUFFIX)] if tag.endswith(TAG_SUFFIX) else tag


def listing_path(slug: str) -> str:
    """Path of a category's listing, percent-encoded (slugs may hold spaces)."""
    if slug == ROLLING_NEWS_SLUG:
        return f"/{ROLLING_NEWS_SLUG}/"
    return f"/category/{quote(slug)}.html"
