"""Normalize a crawled post into the stored shape, or give the reason it
cannot be stored.

``normalize_post`` is a plain function of the item's fields; the pipeline
(``pipelines/normalize.py``) marks rejected items (``reject_reason``) and lets them flow on to storage,
which files them in ``rejects`` rather than losing them.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import urljoin, urlsplit

from finews.core.dates import OutOfRange, read_published
from finews.core.infocode import MEDIA, ROLLING, code_kind, info_code_from_url, normalize_info_code
from finews.core.model import CRAWLED_FIELDS, TIME_SOURCES
from finews.core.reasons import Reason
from finews.core.slugs import ROLLING_NEWS_SLUG, TAG_SUFFIX, media_from_tag, media_slug

# When the same article is found as rolling news and as media news, the media
# version (its own category, media name and article text) is the one kept.
KIND_RANK = {ROLLING: 0, MEDIA: 1}

# Where a post's title and time came from, worst to best. The mirror's page
# shows some times 8 hours late (a file date without +0800); the share JSON
# and the list feeds give the source's own values, and the feed item is the
# source of truth. A stored value is only ever replaced by an equal or better one.
TIME_RANK = {name: rank for rank, name in enumerate(TIME_SOURCES)}
_TIME_SOURCE_OF_SPIDER = {"category": "page", "newsshare": "share", "newslist": "feed"}


def time_source_of(fields: dict[str, Any]) -> str:
    """Where an item's time came from: its own say, else its spider's kind."""
    given = fields.get("time_source")
    return given if given in TIME_RANK else _TIME_SOURCE_OF_SPIDER.get(fields.get("spider") or "", "page")


class Rejected(ValueError):
    def __init__(self, reasons: list[str]):
        super().__init__(", ".join(reasons))
        self.reasons = reasons

    @property
    def reason(self) -> str:
        return self.reasons[0]


def normalize_post(fields: dict[str, Any]) -> dict[str, Any]:
    """The stored fields of a post; raises ``Rejected`` listing every problem.

    A crawled field of the model (``finews/core/model.py``) not worked out here is
    kept as found, when the item has a value for it."""
    reasons: list[str] = []
    title = " ".join((fields.get("title") or fields.get("listing_title") or "").split())
    if not title:
        reasons.append(Reason.MISSING_TITLE)
    try:
        published_at = read_published(fields.get("time_text"))
        if not published_at:
            reasons.append(Reason.MISSING_DATE)
    except OutOfRange:
        published_at = None
        reasons.append(Reason.DATE_OUT_OF_RANGE)
    raw_code = (fields.get("raw_code") or info_code_from_url(fields.get("source_url")) or "").strip()
    info_code = normalize_info_code(raw_code)
    if not raw_code:
        reasons.append(Reason.MISSING_LINK)
    elif not info_code:
        reasons.append(Reason.BAD_INFO_CODE)
    if not (fields.get("body_text") or "").strip():
        reasons.append(Reason.EMPTY_BODY)
    if reasons:
        raise Rejected(reasons)
    assert published_at is not None  # no date is a reason above

    kind = code_kind(raw_code)
    tags = [t for t in (fields.get("tags") or []) if t]
    media = (fields.get("media") or "").strip() or (media_from_tag(tags[0]) if tags else "")
    category = (fields.get("category") or "").strip()
    if not category:
        category = ROLLING_NEWS_SLUG if kind == ROLLING else media_slug(media)
    if not tags and media:
        tags = [media + TAG_SUFFIX]
    page_url = fields.get("url") or ""
    body_html = fields.get("body_html") or ""
    normalized = {
        "info_code": info_code,
        "kind": kind,
        "title": title,
        "published_at": published_at,
        "media": media,
        "category": category,
        "tags": tags,
        "body_html": body_html,
        "body_text": fields.get("body_text") or "",
        "url": page_url,
        # No article link (``<>`` on the page) stays empty, never the page's own URL.
        "source_url": article_link(page_url, fields.get("source_url")),
        "images": [urljoin(page_url, src) for src in fields.get("images") or []],
        "content_hash": content_hash(title, published_at.isoformat(), body_html),
        "time_source": time_source_of(fields),
    }
    as_found = {name: fields[name] for name in CRAWLED_FIELDS
                if name not in normalized and fields.get(name) is not None}
    return normalized | as_found


def article_link(page_url: str, link: str | None) -> str:
    """The article's http(s) address; any other scheme (``javascript:``,
    ``data:``, ``file:``) is stored as no link at all."""
    if not link:
        return ""
    url = urljoin(page_url, link.strip())
    return url if urlsplit(url).scheme.lower() in ("http", "https") else ""


def content_hash(*parts: str) -> str:
    """What decides whether a re-fetched post changed."""
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode("utf-8")).hexdigest()
