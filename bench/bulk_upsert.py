"""Bulk upsert documents per second (PostStore: existence query, $setOnInsert
upserts, near-duplicate index) next to a plain ``insert_many`` baseline,
against the same database server.

    python bench/bulk_upsert.py [--docs 20000] [--batch 100] [MONGO_URI env to use another server]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from contextlib import nullcontext
from pathlib import Path

from _common import Timer, table

from finews.storage.db import EmbeddedMongo, connect, ensure_indexes
from finews.replica.site import ReplicaSite
from finews.replica.synth import PostSynthesizer
from finews.core.clean import clean_article
from finews.storage.store import PostStore
from finews.core.normalize import normalize_post


def documents(count: int) -> list[dict]:
    corpus = [entry.post for entry in ReplicaSite.from_folder().entries]
    synthesizer = PostSynthesizer(corpus, total_hint=count)
    docs = []
    for post in synthesizer.batch(0, count):
        article = clean_article(post.body.split("\n\n<")[0])
        docs.append(normalize_post({"url": "http://127.0.0.1/x", "title": post.title, "time_text": post.date,
                                    "source_url": post.link, "tags": post.tags, "category": post.category,
                                    "body_html": article.body_html, "body_text": article.body_text}))
    return docs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    docs = documents(args.docs)
    batches = [docs[i:i + args.batch] for i in range(0, len(docs), args.batch)]
    uri = os.environ.get("MONGO_URI")
    server = nullcontext() if uri else EmbeddedMongo(Path(tempfile.mkdtemp(prefix="finews-bench-")))
    rows = []
    with server as running, connect(uri or running.uri) as client:
        baseline = client.bench_baseline
        baseline.drop_collection("posts")
        with Timer() as plain:
            for batch in batches:
                baseline.posts.insert_many([{**d, "_id": d["info_code"]} for d in batch], ordered=False)
        rows.append(("insert_many (baseline)", args.docs, plain.seconds, args.docs / plain.seconds, "1.00x"))

        for label, near_duplicates in (("", True), (", no near-dup index", False)):
            db = client.bench_store
            client.drop_database("bench_store")
            ensure_indexes(db)
            store = PostStore(db, near_duplicates=near_duplicates)
            with Timer() as first:
                for batch in batches:
                    store.write_posts(batch)
            rows.append((f"PostStore.write_posts, new{label}", args.docs, first.seconds, args.docs / first.seconds,
                         f"{plain.seconds / first.seconds:.2f}x"))
            with Timer() as again:
                for batch in batches:
                    store.write_posts(batch)
            rows.append((f"PostStore.write_posts, unchanged{label}", args.docs, again.seconds,
                         args.docs / again.seconds, f"{plain.seconds / again.seconds:.2f}x"))
            assert db.posts.count_documents({}) == args.docs
        client.drop_database("bench_store")
        client.drop_database("bench_baseline")
    table(f"Bulk writes, batches of {args.batch} ({'MONGO_URI' if uri else 'embedded SecantusDB'})",
          ("write", "documents", "seconds", "docs/s", "vs insert_many"), rows)


if __name__ == "__main__":
    main()
