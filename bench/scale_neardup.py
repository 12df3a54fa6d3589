"""The same crawl when a share of its posts are near-duplicates of stored
ones: pages/s against the crawl with none, paired, order alternating.

    python bench/scale_neardup.py [--shares 0,25,100] [--site-posts 2000] [--stored 10000] [--repeats 3]

One embedded SecantusDB holds one database per share, each pre-filled in
bulk with ``--stored`` posts as the store writes them (with their signatures
and LSH buckets). In the database of share s, s % of the replica's posts are
stored already under other codes (the same texts, as ``--scale 10000``
stores them: same post number, other date and code), the rest are posts the
replica does not serve. Each repetition crawls the replica (``--site-posts``,
none stored under its own codes) once into every database, the order of the
shares reversed every other repetition; the crawled posts (and their codes
in the buckets and the flags on the stored twins) are removed after each
crawl, so every crawl sees the same database. The ratio is taken per
repetition against the 0 % crawl of that repetition; min / median / max are
printed, and the store's seconds per batch as the crawl measured them.
"""

from __future__ import annotations

import argparse
import statistics

from _common import Timer, crawl, replica, scratch, stat, stored_posts, synthesizer, table
from bson import Binary
from scale import forget

from finews.core.infocode import normalize_info_code
from finews.core.minhash import band_keys, signature
from finews.storage.db import NEAR_DUPLICATE_INDEX, EmbeddedMongo, connect, ensure_indexes
from finews.storage.neardup import BUCKETS, NearDuplicateIndex, add_to_buckets

FILLER_FIRST = 50_000_000  # post numbers of the unrelated stored posts: never on the replica


def _signed(docs: list[dict]) -> tuple[list[dict], dict[str, set[str]]]:
    rows, additions = [], {}
    for doc in docs:
        values = signature(doc["body_text"])
        if values is None:
            continue
        keys = band_keys(values)
        rows.append({"_id": doc["_id"], "lsh": keys, "minhash": Binary(values.astype("uint32").tobytes())})
        for key in keys:
            additions.setdefault(key, set()).add(doc["_id"])
    return rows, additions


def _other_code(doc: dict) -> dict:
    """The post under a code the replica never serves (a year earlier)."""
    code = "NW2021" + doc["info_code"][6:]
    return {**doc, "_id": code, "info_code": code}


def prefill(db, docs: list[dict]) -> None:
    for first in range(0, len(docs), 2_000):
        some = docs[first:first + 2_000]
        rows, additions = _signed(some)
        db.posts.insert_many([dict(doc) for doc in some], ordered=False)
        db[NEAR_DUPLICATE_INDEX].insert_many(rows, ordered=False)
        add_to_buckets(db[BUCKETS], additions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shares", default="0,25,100", help="near-duplicate shares in %%, comma-separated; 0 first")
    parser.add_argument("--site-posts", type=int, default=2_000, help="posts the replica serves (all crawled)")
    parser.add_argument("--stored", type=int, default=10_000, help="posts stored before each crawl")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of one crawl per share")
    args = parser.parse_args()
    shares = [int(s) for s in args.shares.split(",")]
    if shares[0] != 0:
        shares.insert(0, 0)
    site_codes = [normalize_info_code(post.raw_code) for post in synthesizer(args.site_posts).batch(0, args.site_posts)]
    # As `--scale 10000` stores them: the replica's texts under other dates and codes.
    twins_all = [_other_code(doc) for doc in
                 stored_posts(synthesizer(max(args.stored, args.site_posts)), 0, args.site_posts)]
    assert not {doc["_id"] for doc in twins_all} & set(site_codes)
    filler = stored_posts(synthesizer(10**9), FILLER_FIRST, args.stored)
    work = scratch()
    figures: dict[int, list[tuple[float, float, int, int]]] = {share: [] for share in shares}
    with (replica(scale=args.site_posts) as site, EmbeddedMongo(work / "db") as database,
          connect(database.uri) as client):
        twins_of = {}
        for share in shares:
            db = client[f"bench_nd{share}"]
            ensure_indexes(db)
            NearDuplicateIndex(db).ensure_buckets()  # empty: the buckets are complete
            twins = twins_all[:args.site_posts * share // 100]
            with Timer() as timer:
                prefill(db, twins + filler[:max(0, args.stored - len(twins))])
            twins_of[share] = [doc["_id"] for doc in twins]
            print(f"share {share} %: pre-filled {args.stored:,} posts ({len(twins):,} twins of replica posts) "
                  f"in {timer.seconds:.1f} s", flush=True)
        for repeat in range(args.repeats):
            for share in shares if repeat % 2 == 0 else shares[::-1]:
                env = {"MONGO_URI": database.uri, "MONGO_DATABASE": f"bench_nd{share}",
                       "FINEWS_NEAR_DUPLICATES": "1", "FINEWS_DATA_DIR": str(work / f"var{share}-{repeat}")}
                log, _ = crawl("category", [f"site={site}"], env)
                batches = max(1.0, stat(log, "finews/posts/inserted") / 100)
                pages = stat(log, "response_received_count") / stat(log, "elapsed_time_seconds")
                figures[share].append((pages, stat(log, "finews/db/write_seconds") / batches,
                                       int(stat(log, "finews/posts/inserted")),
                                       int(stat(log, "finews/posts/near_duplicate_pairs"))))
                print(f"round {repeat + 1}, {share} % near-duplicates: {pages:.0f} pages/s", flush=True)
                db = client[f"bench_nd{share}"]
                forget(db, site_codes)
                twins = twins_of[share]
                for first in range(0, len(twins), 100):
                    db.posts.update_many({"_id": {"$in": twins[first:first + 100]}}, {"$unset": {"near_duplicates": 1}})
    rows = []
    base = figures[0]
    for share in shares:
        runs = figures[share]
        ratios = sorted(run[0] / zero[0] for run, zero in zip(runs, base, strict=True))
        rows.append((f"{share} %", statistics.median(r[0] for r in runs),
                     " / ".join(f"{r[0]:.0f}" for r in runs),
                     f"{ratios[0]:.2f} / {statistics.median(ratios):.2f} / {ratios[-1]:.2f}",
                     statistics.median(r[1] for r in runs), f"{statistics.median(r[2] for r in runs):,.0f}",
                     f"{statistics.median(r[3] for r in runs):,.0f}"))
    table(f"Crawl of a {args.site_posts:,}-post replica with a share of near-duplicates among "
          f"{args.stored:,} stored posts (embedded SecantusDB; 2 cores shared by replica, database and crawler; "
          f"{args.repeats} rounds, order alternating)",
          ("near-duplicates", "pages/s median", "pages/s per round", "÷ 0 % (min / median / max)",
           "store s/batch", "posts stored", "pairs flagged"), rows)
    print("target: ≥ 0.8 × the 0 % crawl at 100 % near-duplicates")


if __name__ == "__main__":
    main()
