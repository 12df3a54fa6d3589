"""Where sources disagree: one post per article, every source remembered.

The same article reaches finews from a list feed (as a rolling ``id`` or an
``NW`` infoCode), from the mirror's post page and from the share page. The
store keeps one post and, called by ``pipelines/mongo.py`` (``add_source_fields``)
and in ``PostStore.write_posts`` (``split_batch``, ``prefer_stored``, ``record``):

- records in ``sources`` every source that saw it (``mirror``, ``share``, or
  the feed's name), also for posts that were not fetched again;
- keeps each feed item (``feed_items``) and each ``GetNewsText.do`` answer
  (``raw_articles.payload``, compressed), from which the export rebuilds the
  original pipeline's files;
- lets a better time source win (``feed`` > ``share`` > ``page``): a value
  from a worse source never replaces a stored one from a better source, and
  a feed item replaces the title and time of a post stored from the mirror
  (as a new version), since only the feed knows the true time.
"""

from __future__ import annotations

import logging
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from bson import Binary
from pymongo import UpdateOne

from finews.core.dates import parse_published
from finews.core.feeds import FEED_ITEMS, FEEDS, SOURCE_OF_SPIDER, category, item_from_kept, page_digest
from finews.core.infocode import ROLLING
from finews.core.model import current
from finews.core.normalize import TIME_RANK, content_hash
from finews.core.slugs import TAG_SUFFIX
from finews.storage.db import POSTS, RAW_ARTICLES
from finews.storage.doctypes import Db, Doc

logger = logging.getLogger(__name__)

SOURCES_FIELD, PAYLOAD_FIELD, LISTING_FIELD, PAGE_FIELD = "_sources", "_text_payload", "_feed_listing", "_page"
# A raw_articles document holds the page's source and, for a feed post, the
# text answer, each compressed; either one over this is not kept (flagged
# ``<name>_omitted``), so the two together stay under MongoDB's 16 MiB.
MAX_KEPT_BYTES = 7 * 1024 * 1024
_TRANSIENT = (SOURCES_FIELD, PAYLOAD_FIELD, PAGE_FIELD)
MAX_DIGEST = 20_000  # characters of a page's digest kept

# Which source fills which field of a post: the first source named that has
# seen the post wins, a later one of the same rank replaces it, a worse one
# never does. Applied on every write (``prefer_stored``), also by ``finews
# reprocess``, which writes through the same store, and read the same way
# by the export (``finews.core.feeds.Original``). ``text``: a
# ``GetNewsText.do`` answer, fetched by ``newsshare`` or ``newslist``.
SOURCE_RULE = {
    "title": ("feed", "share", "page"),
    "published_at": ("feed", "share", "page"),
    "media": ("feed", "share", "page"),  # with category and tags; a twin of the other kind changes nothing
    "body": ("text", "page"),  # body_html, body_text, images and the kept article source
    "source_url": ("feed", "page", "share"),  # the original's article link; a share page only without it
}
_PREFERRED = ("title", "published_at", "time_source")  # from a better time source
_MEDIA_FIELDS = ("media", "category", "tags")  # also, when the kinds agree


def source_name(spider: str | None, feed: str | None) -> str:
    return feed or SOURCE_OF_SPIDER.get(spider or "", spider or "unknown")


def listing_doc(adapter: Mapping[str, Any]) -> Doc:
    """A feed's listing as the store takes it: its items become ``feed_items``."""
    return {LISTING_FIELD: {"feed": adapter.get("feed"), "url": adapter.get("url"),
                            "items": adapter.get("feed_listing")}}


def add_source_fields(doc: Doc, adapter: Mapping[str, Any]) -> Doc:
    """A post also carries its time source, the source that saw it, the text
    answer and, from a mirror page, what the page says of it; the store keeps
    these apart from the post (``split_batch``)."""
    doc["time_source"] = adapter.get("time_source") or "page"
    doc[SOURCES_FIELD] = [source_name(adapter.get("spider"), adapter.get("feed"))]
    if adapter.get("text_payload"):
        doc[PAYLOAD_FIELD] = adapter["text_payload"]
    if doc["time_source"] == "page" and adapter.get("spider") == "category":
        doc[PAGE_FIELD] = page_item(adapter, doc)
    return doc


def split_batch(docs: list[Doc]) -> tuple[list[Doc], list[Doc], dict[str, Doc]]:
    """A batch as the pipeline hands it over: ``(posts, listings, extras)``.
    ``extras`` holds, by infoCode, what travels with a post but is stored
    elsewhere (the sources that saw it, its text answer, its page's words);
    the posts keep these fields until ``prefer_stored`` has read them."""
    posts: list[Doc] = []
    listings: list[Doc] = []
    for doc in docs:
        (listings if LISTING_FIELD in doc else posts).append(doc)
    extras: dict[str, Doc] = {}
    for doc in posts:
        extra = extras.setdefault(doc["info_code"], {})
        if doc.get(SOURCES_FIELD):
            extra.setdefault(SOURCES_FIELD, set()).update(doc[SOURCES_FIELD])
        if doc.get(PAYLOAD_FIELD):
            extra[PAYLOAD_FIELD] = doc[PAYLOAD_FIELD]
        if doc.get(PAGE_FIELD):
            extra.setdefault(PAGE_FIELD, {})[doc[PAGE_FIELD]["kind"]] = doc[PAGE_FIELD]
    return posts, [doc[LISTING_FIELD] for doc in listings], extras


def post_fields(doc: Doc) -> Doc:
    """The post as stored: without the fields ``split_batch`` set apart."""
    return {k: v for k, v in doc.items() if k not in _TRANSIENT}


def prefer_stored(db: Db, posts: list[Doc]) -> None:
    """Keep stored values where they came from a better source than the
    incoming post's (``SOURCE_RULE``): title and time (and media, for the
    same kind), the article link, and, against a mirror page, a body read
    from a text answer. Two queries at most."""
    weaker = {doc["info_code"]: doc for doc in posts
              if TIME_RANK.get(doc.get("time_source") or "", 0) < max(TIME_RANK.values())}
    if not weaker:
        return
    fields = dict.fromkeys((*_PREFERRED, *_MEDIA_FIELDS, "kind", "sources", "source_url"), 1)
    pages = [code for code, doc in weaker.items() if doc.get(PAGE_FIELD)]
    with_text = {d["_id"] for d in db[RAW_ARTICLES].find({"_id": {"$in": pages}, "payload": {"$exists": True}},
                                                         {"_id": 1})} if pages else set()
    if with_text:
        fields |= dict.fromkeys(_BODY_FIELDS, 1)
    for old in db[POSTS].find({"_id": {"$in": list(weaker)}}, fields):
        for doc in [d for d in posts if d["info_code"] == old["_id"]]:
            same_kind = old.get("kind") == doc.get("kind")
            if same_kind and old["_id"] in with_text and doc.get(PAGE_FIELD):
                _keep_body(doc, old)
            if same_kind and _link_rank(old) > _link_rank(doc) and old.get("source_url"):
                doc["source_url"] = old["source_url"]
            if old.get("time_source") in TIME_RANK and \
                    TIME_RANK.get(old.get("time_source") or "", 0) > TIME_RANK.get(doc.get("time_source") or "", 0):
                _overlay(doc, old, same_kind=same_kind)


_BODY_FIELDS = ("body_html", "body_text", "images")
# A source name (``sources``) as a source of the article link.
_LINK_SOURCE = {"mirror": "page", "share": "share", **dict.fromkeys(FEEDS, "feed")}


def _link_rank(post: Doc) -> int:
    """Rank of the best source of a post's article link (higher is better)."""
    order = SOURCE_RULE["source_url"]
    names = post.get("sources") or post.get(SOURCES_FIELD) or []
    if post.get(SOURCES_FIELD) is None and post.get("time_source") == "feed":
        names = [*names, "rolling"]  # a stored post dated by a feed item: its link came from one
    ranks = [len(order) - order.index(_LINK_SOURCE[name]) for name in names if name in _LINK_SOURCE]
    return max(ranks, default=0)


def _keep_body(doc: Doc, old: Doc) -> None:
    """A mirror page after a text answer: the stored body stays (the text
    answer is the original's own), and so does its kept source."""
    for key in _BODY_FIELDS:
        if key in old:
            doc[key] = old[key]
    doc.pop("raw_article", None)
    doc["content_hash"] = content_hash(doc["title"], doc["published_at"].isoformat(), doc.get("body_html") or "")


def _overlay(doc: Doc, better: Doc, same_kind: bool) -> None:
    for key in (*_PREFERRED, *(_MEDIA_FIELDS if same_kind else ())):
        if key in better:
            doc[key] = better[key]
    doc["content_hash"] = content_hash(doc["title"], doc["published_at"].isoformat(), doc.get("body_html") or "")


def feed_values(feed: str, fields: Doc) -> Doc:
    """Title, time and media a feed item gives its post."""
    item = item_from_kept(feed, fields)
    return {"title": item.title, "published_at": parse_published(item.time_text), "time_source": "feed",
            "media": item.media, "category": category(item), "tags": [item.media + TAG_SUFFIX]}


def record(db: Db, extras: list[Doc], listings: list[Doc], revise: Callable[[Doc, datetime], str]) -> Counter[str]:
    """Sources, kept feed items, text answers; feed values for stored posts
    that only the mirror or the share page had dated, written as a new
    version through ``revise`` (the store's)."""
    now, counts = _now(), Counter[str]()
    seen: dict[str, set[str]] = defaultdict(set)
    for extra in extras:
        for name in extra.get(SOURCES_FIELD) or []:
            seen[name].add(extra["code"])
    items: list[UpdateOne] = []
    listed: dict[str, tuple[str, Doc]] = {}
    for listing in listings:
        feed = listing["feed"]
        for entry in listing["items"]:
            seen[feed].add(entry["info_code"])
            items.append(UpdateOne(
                {"_id": f"{feed}:{entry['code']}"},
                {"$set": {"info_code": entry["info_code"], "feed": feed, "item": entry["fields"],
                          "last_seen_at": now}, "$setOnInsert": {"first_seen_at": now}},
                upsert=True))
            listed.setdefault(entry["info_code"], (feed, entry["fields"]))
            if FEEDS[feed].kind == "media":
                listed[entry["info_code"]] = (feed, entry["fields"])  # media beats its rolling twin
    for name, codes in seen.items():
        db[POSTS].update_many({"_id": {"$in": sorted(codes)}}, {"$addToSet": {"sources": name}})
    if items:
        db[FEED_ITEMS].create_index("info_code", name="info_code")  # export finds a post's items by it
        db[FEED_ITEMS].bulk_write(items, ordered=False)
        counts["feed_items_kept"] += len(items)
    payloads = []
    for extra in extras:
        fields = {}
        if extra.get(PAYLOAD_FIELD):
            fields = kept_text(extra["code"], "payload", extra[PAYLOAD_FIELD], counts) | {"payload_at": now}
        for kind, page in (extra.get(PAGE_FIELD) or {}).items():
            fields[f"pages.{kind}"] = {k: v for k, v in page.items() if k != "kind"} | {"seen_at": now}
        if fields:
            payloads.append(UpdateOne({"_id": extra["code"]}, {"$set": fields} | unset_omitted(fields), upsert=True))
    if payloads:
        db[RAW_ARTICLES].bulk_write(payloads, ordered=False)
    if listed:
        counts.update(_apply_feed_values(db, listed, revise))
    return counts


def _apply_feed_values(db: Db, listed: dict[str, tuple[str, Doc]],
                       revise: Callable[[Doc, datetime], str]) -> Counter[str]:
    """A feed item dates (and titles) a stored post from a worse source."""
    counts = Counter[str]()
    query = {"_id": {"$in": list(listed)}, "time_source": {"$ne": "feed"}}
    for old in db[POSTS].find(query):
        feed, fields = listed[old["_id"]]
        if FEEDS[feed].kind != old.get("kind"):
            continue  # a twin's feed item does not rename the other twin
        doc = current({k: v for k, v in old.items() if k not in ("_id", "version", "first_seen_at")})
        values = feed_values(feed, fields)
        _overlay(doc, values, same_kind=True)
        if doc["content_hash"] == old.get("content_hash"):
            db[POSTS].update_one({"_id": old["_id"]}, {"$set": {"time_source": "feed"}})
            continue
        outcome = revise(doc, _now())
        counts[f"feed_values_{outcome}"] += 1
    return counts


def _now() -> datetime:
    # Milliseconds, as MongoDB stores them (the store's own clock does the same).
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def kept_text(code: str, name: str, text: str, counts: Counter[str]) -> Doc:
    """``{name: compressed text}``, or for a text over ``MAX_KEPT_BYTES``
    compressed, ``{name_omitted: why}`` (logged, counted ``name_too_large``)."""
    packed = pack(text)
    if len(packed) <= MAX_KEPT_BYTES:
        return {name: packed}
    why = f"{len(packed)} bytes compressed, over the {MAX_KEPT_BYTES}-byte limit"
    counts[f"{name}_too_large"] += 1
    logger.warning("Post %s: %s not kept (%s)", code, name, why)
    return {f"{name}_omitted": why}


def unset_omitted(fields: Doc) -> Doc:
    """A text left out this time must not leave an older one in place."""
    gone = {name.removesuffix("_omitted"): "" for name in fields if name.endswith("_omitted")}
    return {"$unset": gone} if gone else {}


def pack(text: str) -> Binary:
    return Binary(zlib.compress(text.encode("utf-8"), 6))


def page_item(adapter: Mapping[str, Any], doc: Doc) -> Doc:
    """What a mirror page says of its post besides the article, kept per kind
    (``raw_articles.pages``) so that the export can write the original's file
    of each twin: title and time as shown, article link, tags, category and,
    for rolling news, the digest the page shows."""
    digest = page_digest(adapter.get("raw_article") or "") if doc.get("kind") == ROLLING else None
    return {"kind": doc.get("kind"), "title": adapter.get("title") or "", "time_text": adapter.get("time_text") or "",
            "source_url": adapter.get("source_url") or "", "tags": list(adapter.get("tags") or []),
            "category": adapter.get("category") or ""} | (
        {"digest": digest} if digest is not None and len(digest) <= MAX_DIGEST else {})


def codes_with_text(db: Db, codes: list[str]) -> set[str]:
    """The codes among ``codes`` whose post has a kept text answer."""
    if not codes:
        return set()
    return {doc["_id"] for doc in db[RAW_ARTICLES].find({"_id": {"$in": list(codes)}, "payload": {"$exists": True}},
                                                        {"_id": 1})}


def posts_missing_text(db: Db, limit: int | None = None, batch: int = 1000) -> Iterator[tuple[str, str | None]]:
    """``(info_code, kind)`` of stored posts without a kept text answer,
    oldest code first, at most ``limit``: what ``newsshare -a missing=text``
    fetches. Reads the posts a batch at a time (memory follows the batch)."""
    found, after = 0, None
    while limit is None or found < limit:
        query: Doc = {"_id": {"$gt": after}} if after else {}
        chunk = list(db[POSTS].find(query, {"kind": 1}).sort("_id", 1).limit(batch))
        if not chunk:
            return
        after = chunk[-1]["_id"]
        kept = codes_with_text(db, [doc["_id"] for doc in chunk])
        for doc in chunk:
            if doc["_id"] not in kept:
                yield doc["_id"], doc.get("kind")
                found += 1
                if limit is not None and found >= limit:
                    return
