"""The store's bulk path for new posts against bare ``insert_many`` of the
same documents, in paired, interleaved repetitions.

Posts arrive as the crawl hands them to the store: normalized, with their
page source and the source that saw them. Baselines, all bare
``insert_many`` of documents computed before the clock starts:

- posts only, into a collection without indexes or validator (the issue's figure);
- what the store writes without flagging: posts into ``posts`` (validator and
  indexes of ``ensure_indexes``) and the compressed sources into ``raw_articles``;
- the same plus the near-duplicate signatures and band buckets.

The store's own figures include everything it does (existence reads,
journal, compressing, MinHash, bucket reads). Each repetition uses fresh
databases; the order of baselines and store alternates.

    python bench/bulk_upsert.py [--docs 2000] [--batch 100] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import zlib
from contextlib import nullcontext

from _common import Timer, scratch, synthesizer, table
from bson import Binary

from finews.core.clean import clean_article
from finews.core.minhash import band_keys, signature
from finews.core.model import current
from finews.core.normalize import normalize_post
from finews.storage.db import NEAR_DUPLICATE_INDEX, EmbeddedMongo, connect, ensure_indexes, insert_new
from finews.storage.neardup import BUCKETS
from finews.storage.sources import SOURCES_FIELD
from finews.storage.store import RAW_FIELD, PostStore, utcnow


def documents(count: int) -> list[dict]:
    """New posts as the pipeline hands them to the store."""
    docs = []
    for post in synthesizer(count).batch(0, count):
        article = clean_article(post.body.split("\n\n<")[0])
        doc = normalize_post({"url": "http://127.0.0.1/x", "title": post.title, "time_text": post.date,
                              "source_url": post.link, "tags": post.tags, "category": post.category,
                              "body_html": article.body_html, "body_text": article.body_text})
        docs.append({**doc, "time_source": "page", RAW_FIELD: post.body, SOURCES_FIELD: ["mirror"]})
    return docs


def written(batch: list[dict], signed: bool) -> dict[str, list[dict]]:
    """The documents the store writes for a batch of new posts, by collection."""
    now = utcnow()
    rows = {
        "posts": [current({k: v for k, v in d.items() if k not in (RAW_FIELD, SOURCES_FIELD)}
                          | {"_id": d["info_code"], "version": 1, "first_seen_at": now, "crawled_at": now,
                             "sources": d[SOURCES_FIELD]}) for d in batch],
        "raw_articles": [{"_id": d["info_code"], "raw": Binary(zlib.compress(d[RAW_FIELD].encode("utf-8"), 6)),
                          "encoding": "zlib+utf-8", "stored_at": now} for d in batch],
    }
    if signed:
        rows[NEAR_DUPLICATE_INDEX], buckets = [], {}
        for d in batch:
            values = signature(d["body_text"])
            keys = band_keys(values)
            rows[NEAR_DUPLICATE_INDEX].append({"_id": d["info_code"], "lsh": keys,
                                               "minhash": values.astype("uint32").tobytes()})
            for key in keys:
                buckets.setdefault(key, []).append(d["info_code"])
        rows[BUCKETS] = [{"_id": key, "codes": codes} for key, codes in buckets.items()]
    return rows


def bare(db, batches: list[dict[str, list[dict]]], indexed: bool) -> float:
    if indexed:
        ensure_indexes(db)
    with Timer() as clock:
        for batch in batches:
            for name, rows in batch.items():
                insert_new(db[name], [dict(r) for r in rows])  # a bucket key seen in an earlier batch: skipped
    return clock.seconds


def through_store(db, batches: list[list[dict]], flagging: bool) -> tuple[float, float]:
    ensure_indexes(db)
    store = PostStore(db, near_duplicates=flagging)
    with Timer() as new:
        for batch in batches:
            store.write_batch([dict(d) for d in batch], [])
    with Timer() as again:
        for batch in batches:
            store.write_batch([dict(d) for d in batch], [])
    return new.seconds, again.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=2_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    docs = documents(args.docs)
    batches = [docs[i:i + args.batch] for i in range(0, len(docs), args.batch)]
    plain = [{"posts": written(b, False)["posts"]} for b in batches]
    unsigned = [written(b, False) for b in batches]
    signed = [written(b, True) for b in batches]
    uri = os.environ.get("MONGO_URI")
    server = nullcontext() if uri else EmbeddedMongo(scratch())
    runs: dict[str, list[float]] = {}
    with server as running, connect(uri or running.uri) as client:
        for repeat in range(args.repeats):
            steps = [("bare posts", lambda db: bare(db, plain, indexed=False)),
                     ("bare off", lambda db: bare(db, unsigned, indexed=True)),
                     ("bare on", lambda db: bare(db, signed, indexed=True)),
                     ("store off", lambda db: through_store(db, batches, False)),
                     ("store on", lambda db: through_store(db, batches, True))]
            for label, step in steps if repeat % 2 == 0 else steps[::-1]:
                client.drop_database("bench_bulk")
                result = step(client.bench_bulk)
                if isinstance(result, tuple):
                    assert client.bench_bulk.posts.count_documents({}) == args.docs
                    runs.setdefault(label, []).append(result[0])
                    runs.setdefault(label + " again", []).append(result[1])
                else:
                    runs.setdefault(label, []).append(result)
        client.drop_database("bench_bulk")

    def rate(label):
        return args.docs / statistics.median(runs[label])

    def ratio(label, base):
        values = sorted(runs[base][i] / runs[label][i] for i in range(args.repeats))
        return f"{values[0]:.2f} / {statistics.median(values):.2f} / {values[-1]:.2f}"

    rows = [
        ("insert_many: posts only, no indexes", rate("bare posts"), "1.00", "–"),
        ("insert_many: posts (validator, indexes) + raw_articles", rate("bare off"),
         ratio("bare off", "bare posts"), "1.00"),
        ("insert_many: the same + signatures + buckets", rate("bare on"), ratio("bare on", "bare posts"), "1.00"),
        ("PostStore, new posts, flagging off", rate("store off"), ratio("store off", "bare posts"),
         ratio("store off", "bare off")),
        ("PostStore, new posts, flagging on", rate("store on"), ratio("store on", "bare posts"),
         ratio("store on", "bare on")),
        ("PostStore, unchanged re-fetch, flagging off", rate("store off again"),
         ratio("store off again", "bare posts"), "–"),
        ("PostStore, unchanged re-fetch, flagging on", rate("store on again"),
         ratio("store on again", "bare posts"), "–"),
    ]
    table(f"Bulk writes, batches of {args.batch}, {args.docs} posts, {args.repeats} paired repetitions "
          f"({'MONGO_URI' if uri else 'embedded SecantusDB'}); ratios min / median / max",
          ("write", "docs/s (median)", "vs bare posts", "vs bare, same documents"), rows)


if __name__ == "__main__":
    main()
