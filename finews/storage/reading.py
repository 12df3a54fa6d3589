"""Reading the database for people: counts, recent runs, exports."""

from __future__ import annotations

import json
import sys
import zlib
from collections import Counter
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import IO, Iterator

from finews.core.dates import EARLIEST, LATEST, SITE_TZ
from finews.storage.db import CRAWL_RUNS, POSTS, RAW_ARTICLES
from finews.core.feeds import FEED_ITEMS, original_post
from finews.core.infocode import site_code
from finews.core.jekyll import post_file, post_path
from finews.core.model import CRAWLED_FIELDS
from finews.core.clean import clean_article
from finews.storage.store import PostStore, read_raw
from finews.core.normalize import Rejected, normalize_post


def posts_per_category_and_day(db, since: datetime | None = None) -> list[tuple[str, str, int]]:
    """(day in Asia/Shanghai, category, posts), newest day first. Only posts
    whose time lies in the stored range are counted: an older finews stored
    times such as 9999-12-31 23:59 UTC, whose Shanghai day the server cannot
    make (``finews stats`` counts them apart)."""
    match = {"published_at": {"$gte": max(since, EARLIEST) if since else EARLIEST, "$lt": LATEST}}
    pipeline = [
        {"$match": match},
        {"$group": {"_id": {"day": {"$dateToString": {"format": "%Y-%m-%d", "date": "$published_at",
                                                       "timezone": str(SITE_TZ)}},
                            "category": "$category"}, "posts": {"$sum": 1}}},
        {"$sort": {"_id.day": -1, "_id.category": 1}},
    ]
    return [(row["_id"]["day"], row["_id"]["category"], row["posts"]) for row in db[POSTS].aggregate(pipeline)]


def recent_runs(db, limit: int = 10) -> list[dict]:
    return list(db[CRAWL_RUNS].find({}, {"stats": 0, "failed_pages": 0}).sort("started_at", -1).limit(limit))


def export_query(since: datetime | None, category: str | None) -> dict:
    query = {}
    if since:
        query["published_at"] = {"$gte": since}
    if category:
        query["category"] = category
    return query


def iter_posts(db, query: dict) -> Iterator[dict]:
    """Posts oldest first, streamed (the cursor never holds the collection)."""
    return db[POSTS].find(query).sort("published_at", 1).batch_size(500)


def write_jsonl(posts, out: IO[str]) -> int:
    written = 0
    for post in posts:
        out.write(json.dumps(post, ensure_ascii=False, default=_json_value, sort_keys=True) + "\n")
        written += 1
    return written


def _json_value(value):
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    raise TypeError(f"cannot export {type(value).__name__}")


def open_output(path: str) -> IO[str]:
    if path == "-":
        return sys.stdout
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return open(path, "w", encoding="utf-8")


def write_jekyll(db, posts, folder: Path, batch: int = 500) -> int:
    """Post files under ``folder/_posts``; article sources fetched a batch at a time.

    A post that came through ``newslist`` is written as the original pipeline
    wrote it: one file per feed that listed it, from the kept feed items and
    the kept ``GetNewsText.do`` answer, byte for byte. Others are rebuilt from
    the post and its kept article source.
    """
    written = 0
    for chunk in with_sources(db, posts, batch):
        originals = original_files(db, [post["_id"] for post, _ in chunk])
        for post, raw in chunk:
            files = originals.get(post["_id"]) or {post_path(post): post_file(post, raw)}
            for name, text in files.items():
                path = folder / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(text.encode("utf-8"))
                written += 1
    return written


def original_files(db, codes: list[str]) -> dict[str, dict[str, str]]:
    """``{code: {"_posts/<name>": text}}`` as the original pipeline wrote them,
    for the posts with kept feed items and a kept text answer (two queries)."""
    payloads = {doc["_id"]: json.loads(zlib.decompress(doc["payload"]).decode("utf-8"))
                for doc in db[RAW_ARTICLES].find({"_id": {"$in": codes}, "payload": {"$exists": True}},
                                                 {"payload": 1})}
    files: dict[str, dict[str, str]] = {}
    if not payloads:
        return files
    for kept in db[FEED_ITEMS].find({"info_code": {"$in": list(payloads)}}).sort("_id", 1):
        try:
            name, text = original_post(kept["feed"], kept["item"], payloads[kept["info_code"]])
        except (KeyError, ValueError):
            continue  # an answer without this feed's text: the original wrote no file either
        files.setdefault(kept["info_code"], {})[f"_posts/{name}"] = text
    return files


def reprocess(db, posts, batch: int = 100) -> dict:
    """Clean stored posts again from their kept article source.

    A post whose cleaned content changes becomes a new version, exactly as a
    changed re-fetch would; posts without a kept source are counted and left.
    The stored crawled fields are the input, the cleaned article replacing the
    body.
    """
    store, counts = PostStore(db), Counter()
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


def with_sources(db, posts, batch: int) -> Iterator[list[tuple[dict, str | None]]]:
    """``(post, kept article source or None)`` pairs, a batch at a time, with
    one ``raw_articles`` query per batch."""
    posts = iter(posts)
    while chunk := list(islice(posts, batch)):
        found = db[RAW_ARTICLES].find({"_id": {"$in": [post["_id"] for post in chunk]}})
        raws = {doc["_id"]: read_raw(doc) for doc in found}
        yield [(post, raws.get(post["_id"])) for post in chunk]
