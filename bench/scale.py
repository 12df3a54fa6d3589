"""The same crawl with N posts already stored: pages/s with near-duplicate
flagging on and off, and the store's cost per batch, for each N.

    python bench/scale.py [--stored 0,20000,100000] [--site-posts 2000] [--repeats 1]

The database is pre-filled in bulk (posts as the store writes them, with
their signatures and LSH buckets; the pre-fill rate is printed), then a
replica of ``--site-posts`` posts none of which is stored is crawled twice,
flagging off and on (order alternating between sizes); the crawled posts are
removed again after each crawl, so every crawl sees exactly N stored posts.
With ``--repeats R`` each N gets R such pairs (order alternating); the
table gives medians and the ratios' min / median / max. The cost per batch
at 1,000,000 is extrapolated from the largest two N. Beside the figures: the
replica's and the database's own ceilings.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from _common import Timer, crawl, insert_ceiling, replica, replica_ceiling, stat, stored_posts, synthesizer, table
from bson import Binary
from pymongo import UpdateOne

from finews.storage.db import NEAR_DUPLICATE_INDEX, RAW_ARTICLES, WRITE_JOURNAL, EmbeddedMongo, connect, ensure_indexes
from finews.core.infocode import normalize_info_code
from finews.storage.neardup import BUCKETS, NearDuplicateIndex, add_to_buckets, band_keys, by_ids, signature

CHUNK = 2_000


def prefill(db, posts, start: int, count: int, buckets: set[str]) -> float:
    """Store ``count`` posts numbered from ``start`` with a bare
    ``insert_many``, and their signatures and buckets; returns posts/s.
    ``buckets``: band keys stored so far (this is the only writer)."""
    with Timer() as timer:
        for first in range(start, start + count, CHUNK):
            docs = stored_posts(posts, first, min(CHUNK, start + count - first))
            db.posts.insert_many(docs, ordered=False)
            rows, additions = [], {}
            for doc in docs:
                values = signature(doc["body_text"])
                if values is None:
                    continue
                keys = band_keys(values)
                rows.append({"_id": doc["_id"], "lsh": keys, "minhash": Binary(values.astype("uint32").tobytes())})
                for key in keys:
                    additions.setdefault(key, set()).add(doc["_id"])
            db[NEAR_DUPLICATE_INDEX].insert_many(rows, ordered=False)
            add_to_buckets(db[BUCKETS], additions, buckets & additions.keys())
            buckets.update(additions)
    return count / timer.seconds if count else 0.0


def forget(db, codes: list[str]) -> None:
    """Remove the crawled posts so the next crawl finds them new again, and
    their codes from the buckets (left there, every band key of the next
    crawl's posts would find a bucket, which a real new post does not)."""
    keys = sorted({key for doc in by_ids(db[NEAR_DUPLICATE_INDEX], codes, {"lsh": 1}) for key in doc.get("lsh", ())})
    gone, kept = [], []
    for bucket in by_ids(db[BUCKETS], keys):
        rest = sorted(set(bucket["codes"]) - set(codes))
        (kept.append(UpdateOne({"_id": bucket["_id"]}, {"$set": {"codes": rest}})) if rest else gone.append(bucket["_id"]))
    for first in range(0, len(gone), 1_000):
        db[BUCKETS].delete_many({"_id": {"$in": gone[first:first + 1_000]}})
    if kept:
        db[BUCKETS].bulk_write(kept, ordered=False)
    for name in ("posts", RAW_ARTICLES, NEAR_DUPLICATE_INDEX, WRITE_JOURNAL):
        db[name].delete_many({"_id": {"$in": codes}})
    db.post_versions.delete_many({"info_code": {"$in": codes}})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stored", default="0,20000,100000", help="comma-separated N, increasing")
    parser.add_argument("--site-posts", type=int, default=2_000, help="new posts crawled at each N")
    parser.add_argument("--repeats", type=int, default=1, help="pairs of crawls (off, on) at each N")
    args = parser.parse_args()
    sizes = [int(n) for n in args.stored.split(",")]
    posts = synthesizer(args.site_posts)  # the replica's sequence: its posts are 0 … site_posts - 1
    site_codes = [normalize_info_code(post.raw_code) for post in posts.batch(0, args.site_posts)]
    work = Path(tempfile.mkdtemp(prefix="finews-bench-"))
    rows, stored, buckets, first_on, curve = [], 0, set(), None, []
    with (replica(scale=args.site_posts) as site, EmbeddedMongo(work / "db") as database,
          connect(database.uri) as client):
        db = client.bench_scale
        ensure_indexes(db)
        NearDuplicateIndex(db).ensure_buckets()  # an empty store: the buckets are complete
        for level, n in enumerate(sizes):
            rate = prefill(db, posts, args.site_posts + stored, n - stored, buckets)
            stored = n
            figures: dict[str, list[tuple]] = {"0": [], "1": []}
            for repeat in range(args.repeats):
                for flagging in ("0", "1") if (level + repeat) % 2 == 0 else ("1", "0"):
                    env = {"MONGO_URI": database.uri, "MONGO_DATABASE": "bench_scale",
                           "FINEWS_NEAR_DUPLICATES": flagging,
                           "FINEWS_DATA_DIR": str(work / f"var{level}{flagging}{repeat}")}
                    log, _ = crawl("category", [f"site={site}"], env)
                    batches = max(1.0, stat(log, "finews/posts/inserted") / 100)
                    figures[flagging].append((stat(log, "response_received_count") / stat(log, "elapsed_time_seconds"),
                                              stat(log, "finews/db/write_seconds") / batches,
                                              int(stat(log, "finews/posts/inserted"))))
                    forget(db, site_codes)
            on, on_cost, on_new = (statistics.median(column) for column in zip(*figures["1"]))
            off, off_cost, off_new = (statistics.median(column) for column in zip(*figures["0"]))
            first_on = first_on or on
            ratios = sorted(a[0] / b[0] for a, b in zip(figures["1"], figures["0"]))
            rows.append((f"{n:,}", f"{rate:,.0f}" if rate else "-", f"{on_new:,.0f} / {off_new:,.0f}", on, off,
                         f"{ratios[0]:.2f} / {statistics.median(ratios):.2f} / {ratios[-1]:.2f}",
                         f"{on / first_on:.2f}", on_cost, off_cost))
            curve.append((n, on_cost))
        ceiling = replica_ceiling(site)
        inserts = insert_ceiling(database.uri, stored_posts(posts, args.site_posts + stored, 1_000))
    table(f"Crawl of new posts with N posts stored ({args.site_posts:,}-post replica; embedded SecantusDB; "
          "2 cores shared by replica, database and crawler)",
          ("N stored", "pre-fill posts/s", "posts stored on / off", "pages/s flagging on", "pages/s off",
           "on / off (min / median / max)",
           "on / on at first N",
           "store s/batch on", "store s/batch off"), rows)
    table("Ceilings on this machine", ("limit", "per second"),
          [("replica: post pages served to 4 bare keep-alive HTTP clients", ceiling),
           ("database: bare insert_many of the same posts, batches of 100", inserts)])
    if len(curve) >= 2 and curve[-1][0] > curve[-2][0]:
        (n1, c1), (n2, c2) = curve[-2:]
        at_million = c2 + (c2 - c1) / (n2 - n1) * (1_000_000 - n2)
        print(f"store s/batch with flagging at 1,000,000 stored, extrapolated from N = {n1:,} and {n2:,}: "
              f"{at_million:.2f} ({at_million / curve[0][1]:.2f}x N = {curve[0][0]:,}; target within 1.5x)")
    print("targets: on / off ≥ 0.8 and on / on at N = 0 ≥ 0.8 at 100,000 stored")


if __name__ == "__main__":
    main()
