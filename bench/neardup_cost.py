"""Cost of near-duplicate flagging per batch of 100 new posts with N
signatures already stored: the same at every N is the goal.

    python bench/neardup_cost.py [--stored 0,20000,100000] [--batches 5] [--implementation FILE]

The signature store is filled directly in bulk with the signatures of
synthesized posts (the replica's, which share paragraphs, so buckets do
collide: a third of the candidates are true near duplicates, so the pairs to
flag grow with N), then ``NearDuplicateIndex.flag`` is timed on batches of new
posts.
Besides wall seconds (noisy on a shared machine) it prints what does not
depend on load: database commands and documents returned per batch, and
the database server's CPU seconds per batch. ``--implementation`` loads
another ``neardup.py`` (e.g. ``git show REV:finews/storage/neardup.py > old.py``) to
compare designs on the same data; ``MONGO_URI`` uses another server.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
from _common import Timer, scratch, table
from bson import Binary
from pymongo import monitoring

import finews.core.minhash
import finews.storage.neardup
from finews.core.clean import clean_article
from finews.replica.site import ReplicaSite
from finews.replica.synth import PostSynthesizer
from finews.storage.db import NEAR_DUPLICATE_INDEX, EmbeddedMongo, connect, ensure_indexes

BATCH = 100
MEASURED_BASE = 90_000_000  # post numbers of measured batches: never among the stored ones


class Commands(monitoring.CommandListener):
    """Counts database commands and the documents they return."""

    def __init__(self):
        self.commands = self.returned = 0

    def started(self, event):
        pass

    def succeeded(self, event):
        self.commands += 1
        cursor = event.reply.get("cursor") if isinstance(event.reply, dict) else None
        if cursor:
            self.returned += len(cursor.get("firstBatch", cursor.get("nextBatch", [])))

    def failed(self, event):
        self.commands += 1


def server_cpu(pid: int | None) -> float:
    if not pid:
        return float("nan")
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load(path: str | None):
    if not path:
        return finews.storage.neardup
    spec = importlib.util.spec_from_file_location("neardup_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Posts:
    """Synthesized post texts and their signatures, cached across runs."""

    def __init__(self):
        corpus = [entry.post for entry in ReplicaSite.from_folder().entries]
        self.synthesizer = PostSynthesizer(corpus, total_hint=10**9)  # dates stay in range for any number

    def text(self, number: int) -> str:
        post = self.synthesizer.make(number)
        return clean_article(post.body.split("\n\n<")[0]).body_text

    def signatures(self, start: int, count: int) -> np.ndarray:
        cache = Path(tempfile.gettempdir()) / f"finews-bench-signatures-{start}-{count}.npy"
        if cache.exists():
            return np.load(cache)
        values = np.stack([finews.core.minhash.signature(self.text(n))
                           for n in range(start, start + count)]).astype(np.uint32)
        np.save(cache, values)
        return values


def fill(db, module, posts: Posts, start: int, count: int, buckets: set[str]) -> float:
    """Store ``count`` signatures in bulk, as the module stores them; returns
    signatures/s. ``buckets``: the band keys stored so far (this is the only
    writer, so it need not ask the database)."""
    with Timer() as timer:
        for first in range(start, start + count, 5_000):
            size = min(5_000, start + count - first)
            values = posts.signatures(first, size)
            rows = [{"_id": f"S{first + i:09d}", "lsh": finews.core.minhash.band_keys(v),
                     "minhash": Binary(v.tobytes())} for i, v in enumerate(values)]
            db[NEAR_DUPLICATE_INDEX].insert_many(rows, ordered=False)
            if hasattr(module, "add_to_buckets"):
                additions: dict[str, set[str]] = {}
                for row in rows:
                    for key in row["lsh"]:
                        additions.setdefault(key, set()).add(row["_id"])
                module.add_to_buckets(db[module.BUCKETS], additions, buckets & additions.keys())
                buckets.update(additions)
    return count / timer.seconds if count else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stored", default="0,20000,100000", help="comma-separated N, increasing")
    parser.add_argument("--batches", type=int, default=5, help="batches of 100 measured at each N")
    parser.add_argument("--implementation", help="another neardup.py to measure instead of finews.storage.neardup")
    args = parser.parse_args()
    sizes = [int(n) for n in args.stored.split(",")]
    module = load(args.implementation)
    posts = Posts()
    commands = Commands()
    monitoring.register(commands)
    uri = os.environ.get("MONGO_URI")
    server = nullcontext() if uri else EmbeddedMongo(scratch())
    rows, stored = [], 0
    with server as running, connect(uri or running.uri) as client:
        pid = None if uri else running.process.pid
        client.drop_database("bench_neardup")
        db = client.bench_neardup
        ensure_indexes(db)
        index = module.NearDuplicateIndex(db, posts="bench_posts")
        if hasattr(index, "ensure_buckets"):
            index.ensure_buckets()  # an empty store: nothing to build
        buckets: set[str] = set()
        for level, n in enumerate(sizes):
            rate = fill(db, module, posts, stored, n - stored, buckets)
            stored = db[NEAR_DUPLICATE_INDEX].count_documents({})
            walls, cpus, counts, returned, pairs = [], [], [], [], []
            for b in range(args.batches):
                first = MEASURED_BASE + level * 100_000 + b * BATCH
                batch = [{"info_code": f"M{k:09d}", "body_text": posts.text(k)} for k in range(first, first + BATCH)]
                commands.commands = commands.returned = 0
                cpu, started = server_cpu(pid), time.perf_counter()
                pairs.append(index.flag(batch))
                walls.append(time.perf_counter() - started)
                cpus.append(server_cpu(pid) - cpu)
                counts.append(commands.commands)
                returned.append(commands.returned)
                for doc in batch:
                    buckets.update(finews.core.minhash.band_keys(finews.core.minhash.signature(doc["body_text"])))
            rows.append((f"{stored:,}", f"{rate:,.0f}" if rate else "-", statistics.median(walls), min(walls),
                         statistics.median(cpus), statistics.median(counts), statistics.median(returned),
                         statistics.median(pairs)))
            stored = db[NEAR_DUPLICATE_INDEX].count_documents({})
        client.drop_database("bench_neardup")
    name = args.implementation or "finews.storage.neardup"
    table(f"Near-duplicate flagging per batch of {BATCH} new posts ({name}; "
          f"{'MONGO_URI' if uri else 'embedded SecantusDB'}; medians of {args.batches} batches)",
          ("signatures stored", "fill signatures/s", "seconds", "min seconds", "server CPU s",
           "commands", "documents returned", "pairs flagged"), rows)
    base = rows[0][4]
    if len(rows) > 1 and base == base and base > 0:
        print(f"server CPU per batch at the largest N / at the smallest: {rows[-1][4] / base:.2f}x")


if __name__ == "__main__":
    main()
