"""The same crawl with N posts already stored: pages/s with near-duplicate
flagging on and off, and the store's cost per batch, for each N.

    python bench/scale.py [--stored 0,20000,100000] [--site-posts 2000] [--repeats 1] [--crawl-max N]

The database is pre-filled in bulk (posts as the store writes them, with
their signatures and LSH buckets; the pre-fill rate is printed), then a
replica of ``--site-posts`` posts none of which is stored is crawled twice,
flagging off and on (order alternating between sizes); the crawled posts are
removed again after each crawl, so every crawl sees exactly N stored posts.
With ``--repeats R`` each N gets R such pairs (order alternating); the
table gives medians and the ratios' min / median / max. At every N the store
alone is timed too (``--store-batches`` batches of 100 new
posts handed to ``PostStore.write_batch`` as the crawl hands them, flagging on
and off, removed again after): the cost per batch without the crawl's noise,
so the curve can go further than crawls do: ``--crawl-max`` skips the crawls
above it (``--stored 0,100000,300000,1000000 --crawl-max 100000``). Where 1,000,000
is not measured it is extrapolated from the largest two N, linearly and
logarithmically. Beside the figures: the replica's and the database's own
ceilings.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import statistics

from _common import (
    Timer,
    crawl,
    insert_ceiling,
    replica,
    replica_ceiling,
    scratch,
    stat,
    stored_posts,
    synthesizer,
    table,
)
from bson import Binary
from pymongo import UpdateOne

from finews.core.infocode import normalize_info_code
from finews.core.minhash import band_keys, signature
from finews.storage.db import NEAR_DUPLICATE_INDEX, RAW_ARTICLES, WRITE_JOURNAL, EmbeddedMongo, connect, ensure_indexes
from finews.storage.neardup import BUCKETS, NearDuplicateIndex, add_to_buckets, by_ids
from finews.storage.store import RAW_FIELD, PostStore

CHUNK = 2_000
STORE_BATCH = 100
_posts = None


def _chunk(job: tuple[int, int, int]) -> tuple[list[dict], list[dict], dict[str, set[str]]]:
    """In a worker process: posts ``first`` … as stored, their signature rows
    and band buckets (making them is CPU work the database need not wait for)."""
    global _posts
    total_hint, first, count = job
    if _posts is None:
        _posts = synthesizer(total_hint)
    docs = stored_posts(_posts, first, count)
    rows, additions = [], {}
    for doc in docs:
        values = signature(doc["body_text"])
        if values is None:
            continue
        keys = band_keys(values)
        rows.append({"_id": doc["_id"], "lsh": keys, "minhash": Binary(values.astype("uint32").tobytes())})
        for key in keys:
            additions.setdefault(key, set()).add(doc["_id"])
    return docs, rows, additions


def prefill(db, total_hint: int, start: int, count: int) -> float:
    """Store ``count`` posts numbered from ``start`` with a bare
    ``insert_many``, and their signatures and buckets; returns posts/s.
    One process makes the next chunk while this one stores the last."""
    if not count:
        return 0.0
    jobs = [(total_hint, first, min(CHUNK, start + count - first)) for first in range(start, start + count, CHUNK)]
    with Timer() as timer, multiprocessing.get_context("spawn").Pool(1) as pool:
        for done, (docs, rows, additions) in enumerate(pool.imap(_chunk, jobs), 1):
            db.posts.insert_many(docs, ordered=False)
            db[NEAR_DUPLICATE_INDEX].insert_many(rows, ordered=False)
            add_to_buckets(db[BUCKETS], additions)
            if done % 50 == 0:
                print(f"  pre-filled {done * CHUNK:,} of {count:,} more posts ({done * CHUNK / timer.elapsed():.0f}/s)",
                      flush=True)
    return count / timer.seconds


def store_cost(db, posts, first: int, batches: int) -> dict[str, float]:
    """Seconds per batch of ``STORE_BATCH`` new posts written by the store
    alone (no crawl), flagging on and off, each on its own fresh posts,
    removed again after; the median batch of each."""
    costs = {}
    for number, flagging in enumerate((True, False)):
        start = first + number * batches * STORE_BATCH
        docs = stored_posts(posts, start, batches * STORE_BATCH)
        for doc in docs:  # as the crawl hands a post to the store
            for field in ("_id", "version", "first_seen_at", "crawled_at"):
                doc.pop(field, None)
            doc[RAW_FIELD] = f"<html><body>{doc['body_html']}</body></html>"
        store, seconds = PostStore(db, near_duplicates=flagging), []
        for at in range(0, len(docs), STORE_BATCH):
            with Timer() as timer:
                store.write_batch(docs[at:at + STORE_BATCH], [])
            seconds.append(timer.seconds)
        costs["on" if flagging else "off"] = statistics.median(seconds)
        forget(db, [doc["info_code"] for doc in docs])
    return costs


def forget(db, codes: list[str]) -> None:
    """Remove the crawled posts so the next crawl finds them new again, and
    their codes from the buckets (left there, every band key of the next
    crawl's posts would find a bucket, which a real new post does not)."""
    keys = sorted({key for doc in by_ids(db[NEAR_DUPLICATE_INDEX], codes, {"lsh": 1}) for key in doc.get("lsh", ())})
    gone, kept, leaving = [], [], set(codes)
    for bucket in by_ids(db[BUCKETS], keys):
        rest = sorted(set(bucket["codes"]) - leaving)
        if rest:
            kept.append(UpdateOne({"_id": bucket["_id"]}, {"$set": {"codes": rest}}))
        else:
            gone.append(bucket["_id"])
    # Slices of 100 keys: SecantusDB matches each document against the whole `$in`.
    for first in range(0, len(gone), 100):
        db[BUCKETS].delete_many({"_id": {"$in": gone[first:first + 100]}})
    if kept:
        db[BUCKETS].bulk_write(kept, ordered=False)
    for first in range(0, len(codes), 100):
        some = codes[first:first + 100]
        for name in ("posts", RAW_ARTICLES, NEAR_DUPLICATE_INDEX, WRITE_JOURNAL):
            db[name].delete_many({"_id": {"$in": some}})
        db.post_versions.delete_many({"info_code": {"$in": some}})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stored", default="0,20000,100000", help="comma-separated N, increasing")
    parser.add_argument("--site-posts", type=int, default=2_000, help="new posts crawled at each N")
    parser.add_argument("--repeats", type=int, default=1, help="pairs of crawls (off, on) at each N")
    parser.add_argument("--crawl-max", type=int, default=10**9,
                        help="no crawls above this N (the store alone is timed)")
    parser.add_argument("--store-batches", type=int, default=10, help="batches of 100 the store alone writes at each N")
    args = parser.parse_args()
    sizes = [int(n) for n in args.stored.split(",")]
    posts = synthesizer(args.site_posts)  # the replica's sequence: its posts are 0 … site_posts - 1
    site_codes = [normalize_info_code(post.raw_code) for post in posts.batch(0, args.site_posts)]
    work = scratch()
    total_hint = max(sizes[-1] + args.site_posts + 4 * args.store_batches * STORE_BATCH, args.site_posts)
    store_first = 800_000_000  # post numbers of the store-alone batches: never stored, never on the replica
    alone_posts = synthesizer(10**9)
    rows, stored, first_on, curve = [], 0, None, []
    with (replica(scale=args.site_posts) as site, EmbeddedMongo(work / "db") as database,
          connect(database.uri) as client):
        db = client.bench_scale
        ensure_indexes(db)
        NearDuplicateIndex(db).ensure_buckets()  # an empty store: the buckets are complete
        for level, n in enumerate(sizes):
            rate = prefill(db, total_hint, args.site_posts + stored, n - stored)
            stored = n
            alone = store_cost(db, alone_posts, store_first + level * 4 * args.store_batches * STORE_BATCH,
                               args.store_batches)
            curve.append((n, alone["on"], alone["off"]))
            print(f"N = {n:,}: pre-fill {rate:,.0f} posts/s; store alone s/batch on {alone['on']:.3f}, "
                  f"off {alone['off']:.3f}", flush=True)
            if n > args.crawl_max:
                rows.append((f"{n:,}", f"{rate:,.0f}" if rate else "-", "-", "-", "-", "-", "-", "-", "-",
                             alone["on"], alone["off"]))
                continue
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
            on, on_cost, on_new = (statistics.median(column) for column in zip(*figures["1"], strict=True))
            off, off_cost, off_new = (statistics.median(column) for column in zip(*figures["0"], strict=True))
            first_on = first_on or on
            ratios = sorted(a[0] / b[0] for a, b in zip(figures["1"], figures["0"], strict=True))
            rows.append((f"{n:,}", f"{rate:,.0f}" if rate else "-", f"{on_new:,.0f} / {off_new:,.0f}", on, off,
                         f"{ratios[0]:.2f} / {statistics.median(ratios):.2f} / {ratios[-1]:.2f}",
                         f"{on / first_on:.2f}", on_cost, off_cost, alone["on"], alone["off"]))
        ceiling = replica_ceiling(site)
        inserts = insert_ceiling(database.uri, stored_posts(alone_posts, store_first - 1_000, 1_000))
    table(f"Crawl of new posts with N posts stored ({args.site_posts:,}-post replica; embedded SecantusDB; "
          "2 cores shared by replica, database and crawler)",
          ("N stored", "pre-fill posts/s", "posts stored on / off", "pages/s flagging on", "pages/s off",
           "on / off (min / median / max)",
           "on / on at first N",
           "in crawl: store s/batch on", "off", "store alone: s/batch on", "off"), rows)
    table("Ceilings on this machine", ("limit", "per second"),
          [("replica: post pages served to 4 bare keep-alive HTTP clients", ceiling),
           ("database: bare insert_many of the same posts, batches of 100", inserts)])
    print_extrapolation(curve)
    print("targets: on / off ≥ 0.8 and on / on at N = 0 ≥ 0.8 at 100,000 stored")


def print_extrapolation(curve: list[tuple[int, float, float]]) -> None:
    """The store-alone cost per batch with flagging at 1,000,000 stored,
    against N = first: measured, or extrapolated from the largest two N."""
    base_n, base = curve[0][0], curve[0][1]
    measured = [cost for n, cost, _ in curve if n == 1_000_000]
    if measured:
        print(f"store alone, s/batch with flagging at 1,000,000 stored: {measured[0]:.3f} measured "
              f"({measured[0] / base:.2f}x N = {base_n:,}; target within 1.5x)")
        return
    if len(curve) < 2 or curve[-1][0] <= curve[-2][0]:
        return
    (n1, c1, _), (n2, c2, _) = curve[-2:]
    linear = c2 + (c2 - c1) / (n2 - n1) * (1_000_000 - n2)
    logarithmic = c2 + (c2 - c1) / math.log(max(n2, 1) / max(n1, 1)) * math.log(1_000_000 / n2) if n1 else linear
    print(f"store alone, s/batch with flagging at 1,000,000 stored, extrapolated from N = {n1:,} and {n2:,}: "
          f"{linear:.3f} linear ({linear / base:.2f}x N = {base_n:,}), {logarithmic:.3f} logarithmic "
          f"({logarithmic / base:.2f}x); target within 1.5x")


if __name__ == "__main__":
    main()
