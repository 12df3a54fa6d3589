"""Reading the database for people: counts, recent runs, exports."""

from __future__ import annotations

import json
import sys
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import IO, Any, Literal, overload

from finews.core.clean import clean_article
from finews.core.dates import EARLIEST, LATEST, SITE_TZ
from finews.core.feeds import FEED_ITEMS, NotOriginal, Original, item_from_kept, original_of_answer
from finews.core.infocode import MEDIA, ROLLING, site_code
from finews.core.jekyll import post_file, post_path
from finews.core.model import CRAWLED_FIELDS
from finews.core.normalize import Rejected, normalize_post
from finews.core.slugs import media_from_tag
from finews.storage.db import CRAWL_RUNS, POSTS, RAW_ARTICLES
from finews.storage.doctypes import Db, Doc
from finews.storage.store import PostStore, read_raw


def posts_per_category_and_day(db: Db, since: datetime | None = None) -> list[tuple[str, str, int]]:
    """(day in Asia/Shanghai, category, posts), newest day first. Only posts
    whose time lies in the stored range are counted: an older finews stored
    times such as 9999-12-31 23:59 UTC, whose Shanghai day the server cannot
    make (``finews stats`` counts them apart)."""
    match = {"published_at": {"$gte": max(since, EARLIEST) if since else EARLIEST, "$lt": LATEST}}
    pipeline: list[Doc] = [
        {"$match": match},
        {"$group": {"_id": {"day": {"$dateToString": {"format": "%Y-%m-%d", "date": "$published_at",
                                                       "timezone": str(SITE_TZ)}},
                            "category": "$category"}, "posts": {"$sum": 1}}},
        {"$sort": {"_id.day": -1, "_id.category": 1}},
    ]
    return [(row["_id"]["day"], row["_id"]["category"], row["posts"]) for row in db[POSTS].aggregate(pipeline)]


def recent_runs(db: Db, limit: int = 10) -> list[Doc]:
    return list(db[CRAWL_RUNS].find({}, {"stats": 0, "failed_pages": 0}).sort("started_at", -1).limit(limit))


def export_query(since: datetime | None, category: str | None) -> Doc:
    query: Doc = {}
    if since:
        query["published_at"] = {"$gte": since}
    if category:
        query["category"] = category
    return query


def iter_posts(db: Db, query: Doc) -> Iterator[Doc]:
    """Posts oldest first, streamed (the cursor never holds the collection)."""
    return db[POSTS].find(query).sort("published_at", 1).batch_size(500)


def write_jsonl(posts: Iterable[Doc], out: IO[str]) -> int:
    written = 0
    for post in posts:
        out.write(json.dumps(post, ensure_ascii=False, default=_json_value, sort_keys=True) + "\n")
        written += 1
    return written


def _json_value(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    raise TypeError(f"cannot export {type(value).__name__}")


def open_output(path: str) -> IO[str]:
    if path == "-":
        return sys.stdout
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return open(path, "w", encoding="utf-8")


class Exported(int):
    """Files written (an ``int``, as before), and ``not_exact``: how many of
    them (or of a post's twin files, not written) could not be the original's
    bytes, by reason."""

    not_exact: Counter[str]

    def __new__(cls, written: int, not_exact: Counter[str]) -> Exported:
        value = super().__new__(cls, written)
        value.not_exact = +not_exact
        return value

    def describe(self) -> str:
        """``"; 3 not as the original wrote them (no_text_answer 2, format_unknown 1)"``, or ''."""
        if not self.not_exact:
            return ""
        reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(self.not_exact.items()))
        return f"; {sum(self.not_exact.values())} not as the original wrote them ({reasons})"


def write_jekyll(db: Db, posts: Iterable[Doc], folder: Path, batch: int = 500) -> Exported:
    """Post files under ``folder/_posts``; kept sources read a batch at a time.

    Each post is written as the original pipeline wrote it, in the format of
    its date, one file per kind it was published as (a media post and its
    rolling twin are two files), from its kept sources: feed items, the text
    answer, the mirror's pages (``finews.core.feeds.Original``). Where they
    cannot give the original's bytes (``NotOriginal``: why), the post's own
    file is written from its kept article source or cleaned HTML, and the
    reason is counted in the result's ``not_exact``.
    """
    written, not_exact = 0, Counter[str]()
    for name, text in jekyll_files(db, posts, batch, not_exact):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))
        written += 1
    return Exported(written, not_exact)


def jekyll_files(db: Db, posts: Iterable[Doc], batch: int = 500,
                 not_exact: Counter[str] | None = None) -> Iterator[tuple[str, str]]:
    """``("_posts/<name>", text)`` of every file ``write_jekyll`` writes, in
    its order (``finews serve`` renders the site from them); ``not_exact``
    counts why a file could not be the original's bytes."""
    not_exact = Counter[str]() if not_exact is None else not_exact
    for chunk in with_sources(db, posts, batch, kept=True):
        items = feed_items_of(db, [post["_id"] for post, _ in chunk])
        for post, kept in chunk:
            files, reasons = original_files(post, kept, items.get(post["_id"], []))
            not_exact.update(reasons.values())
            if post.get("kind") in reasons:
                files[post_path(post)] = post_file(post, read_raw(kept))
            yield from files.items()


def feed_items_of(db: Db, codes: list[str]) -> dict[str, list[Doc]]:
    """Kept feed items by post, media feed before market feeds (one query)."""
    found: dict[str, list[Doc]] = {}
    for kept in db[FEED_ITEMS].find({"info_code": {"$in": codes}}):
        found.setdefault(kept["info_code"], []).append(kept)
    for items in found.values():
        items.sort(key=lambda kept: (kept["feed"] != "media", kept["_id"]))
    return found


def original_files(post: Doc, kept: Doc | None, items: list[Doc]) -> tuple[dict[str, str], dict[str, str]]:
    """``({"_posts/<name>": text}, {kind: reason})``: the original's files of
    a post for each kind it was seen as, and why a kind's file cannot be one."""
    kept = kept or {}
    payload = None
    if kept.get("payload"):
        try:
            payload = json.loads(zlib.decompress(kept["payload"]).decode("utf-8"))
        except (ValueError, zlib.error):
            payload = None
    payload = payload if isinstance(payload, dict) else None
    found_pages = kept.get("pages")
    pages: Doc = found_pages if isinstance(found_pages, dict) else {}
    sources: dict[str, list[Original]] = {}
    for item in items:
        try:
            original = Original.of_item(item_from_kept(item["feed"], item["item"]))
        except (KeyError, ValueError):
            continue  # a kept item that is not one any more: the other sources decide
        sources.setdefault(original.kind, []).append(original)
    kinds = [post.get("kind"), *sources, *pages]
    files: dict[str, str] = {}
    reasons: dict[str, str] = {}
    for kind in dict.fromkeys(k for k in kinds if k in (ROLLING, MEDIA)):
        code = site_code(post["info_code"], kind)
        original = (sources.get(kind) or [Original(kind, code)])[0]
        if payload is not None:
            original.fill(original_of_answer(kind, code, payload))
        if isinstance(pages.get(kind), dict):
            original.fill(original_of_page(kind, code, pages[kind]))
        try:
            name, text = original.file(payload)
        except NotOriginal as why:
            reasons[kind] = why.reason
            continue
        files[f"_posts/{name}"] = text
    return files, reasons


def original_of_page(kind: str, code: str, page: Doc) -> Original:
    """What a kept mirror page says (worst source: its time is the one
    shown, 8 hours late for the original's dates without ``+0800``)."""
    tags = page.get("tags") or []
    media = media_from_tag(tags[0]) if tags and isinstance(tags[0], str) else None
    return Original(kind, code, page.get("title") or None, page.get("time_text") or None, media,
                    page.get("digest"), page.get("source_url") or None)


def reprocess(db: Db, posts: Iterable[Doc], batch: int = 100) -> dict[str, int]:
    """Clean stored posts again from their kept article source.

    A post whose cleaned content changes becomes a new version, exactly as a
    changed re-fetch would; posts without a kept source are counted and left.
    The stored crawled fields are the input, the cleaned article replacing the
    body.
    """
    store, counts = PostStore(db), Counter[str]()
    for chunk in with_sources(db, posts, batch):
        docs = []
        for post, raw in chunk:
            if raw is None:
                counts["no_source"] += 1
                continue
            article = clean_article(raw)
            try:
                docs.append(normalize_post({
                    **{name: post[name] for name in CRAWLED_FIELDS if name in post},
                    "time_text": post["published_at"].isoformat(), "body_html": article.body_html,
                    "body_text": article.body_text, "images": article.images,
                    "raw_code": site_code(post["info_code"], post.get("kind")),
                    "time_source": post.get("time_source", "page"),
                }))
            except Rejected as rejected:
                counts[f"rejected_{rejected.reason}"] += 1
        counts.update(store.write_posts(docs))
    return dict(counts)


@overload
def with_sources(db: Db, posts: Iterable[Doc], batch: int,
                 kept: Literal[False] = False) -> Iterator[list[tuple[Doc, str | None]]]: ...


@overload
def with_sources(db: Db, posts: Iterable[Doc], batch: int,
                 kept: Literal[True]) -> Iterator[list[tuple[Doc, Doc | None]]]: ...


def with_sources(db: Db, posts: Iterable[Doc], batch: int, kept: bool = False
                 ) -> Iterator[list[tuple[Doc, Any]]]:
    """``(post, kept article source or None)`` pairs, a batch at a time, with
    one ``raw_articles`` query per batch (``kept``: the whole kept document)."""
    rest = iter(posts)
    while chunk := list(islice(rest, batch)):
        found = db[RAW_ARTICLES].find({"_id": {"$in": [post["_id"] for post in chunk]}})
        raws = {doc["_id"]: doc if kept else read_raw(doc) for doc in found}
        yield [(post, raws.get(post["_id"])) for post in chunk]
