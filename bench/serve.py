"""``finews serve`` under load: requests/s and p50/p99 latency for post
pages, the JSON API and the Atom feed, with N posts stored.

    python bench/serve.py [--posts 100000] [--clients 8] [--seconds 10]

The embedded database is filled with ``--posts`` synthesized posts (as the
store keeps them, in bulk), then ``finews serve`` runs as its own process on
it (so the clients do not share its interpreter) and is warmed by one request
of each kind (its first request renders the site: that time is printed too).
Each kind is then measured alone: ``--clients`` keep-alive HTTP clients ask
for as many pages as they can for ``--seconds``; post pages and single posts
are drawn from the whole archive.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import threading
import time

from _common import ROOT, Timer, scratch, stored_posts, synthesizer, table

from finews.storage.db import EmbeddedMongo, connect, ensure_indexes, free_port

CHUNK = 2_000
_posts = None


def _chunk(job: tuple[int, int, int]) -> list[dict]:
    global _posts
    total, first, count = job
    if _posts is None:
        _posts = synthesizer(total)
    return stored_posts(_posts, first, count)


def fill(db, total: int) -> float:
    """``total`` posts with a bare ``insert_many``; returns posts/s."""
    jobs = [(total, first, min(CHUNK, total - first)) for first in range(0, total, CHUNK)]
    with Timer() as timer, multiprocessing.get_context("spawn").Pool(max(1, (os.cpu_count() or 2) - 1)) as pool:
        for done, docs in enumerate(pool.imap(_chunk, jobs), 1):
            db.posts.insert_many(docs, ordered=False)
            if done % 10 == 0:
                print(f"  stored {done * CHUNK:,} of {total:,} posts ({done * CHUNK / timer.elapsed():.0f}/s)",
                      flush=True)
    return total / timer.seconds


def measure(port: int, paths: list[str], clients: int, seconds: float) -> tuple[float, float, float, int]:
    """Requests/s, p50 and p99 in milliseconds, and non-200 answers."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    deadline = time.perf_counter() + seconds

    def client(number: int) -> None:
        rng = random.Random(number)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            connection.request("GET", rng.choice(paths))
            response = connection.getresponse()
            response.read()
            latencies[number].append(time.perf_counter() - started)
            errors[number] += response.status != 200
        connection.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    every = sorted(t for times in latencies for t in times)
    p99 = every[min(len(every) - 1, int(len(every) * 0.99))] if every else 0.0
    return len(every) / elapsed, statistics.median(every) * 1000 if every else 0.0, p99 * 1000, sum(errors)


def get(port: int, path: str) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1800)
    connection.request("GET", path)
    response = connection.getresponse()
    return response.status, response.read()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()

    folder = scratch("finews-bench-serve-")
    with EmbeddedMongo(folder / "db") as server, connect(server.uri) as client:
        db = client.bench
        ensure_indexes(db)
        print(f"Storing {args.posts:,} posts …", flush=True)
        rate = fill(db, args.posts)
        print(f"  {rate:.0f} posts/s", flush=True)
        port = free_port()
        env = {**os.environ, "MONGO_URI": server.uri, "MONGO_DATABASE": "bench"}
        serve = subprocess.Popen([sys.executable, "-m", "finews.cli", "serve", "--port", str(port)],
                                 cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    get(port, "/api/categories")
                    break
                except OSError:
                    if serve.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit(f"finews serve did not start: {serve.stderr.read()[-2000:]}") from None
                    time.sleep(0.2)
            with Timer() as first:
                status, _ = get(port, "/")
            print(f"First page (renders the site): {first.seconds:.1f} s, HTTP {status}", flush=True)
            codes = [doc["_id"] for doc in db.posts.aggregate([{"$sample": {"size": 2000}}, {"$project": {"_id": 1}}])]
            pages = [post["page"] for code in codes[:500]
                     for post in [json.loads(get(port, f"/api/posts/{code}")[1])] if post.get("page")]
            kinds = {
                "post pages": pages,
                "API: one post": [f"/api/posts/{code}" for code in codes],
                "API: post list": ["/api/posts?limit=50", "/api/posts?category=hebeiribao&limit=50",
                                   "/api/posts?q=%E8%82%A1&limit=20"],
                "feed.xml": ["/feed.xml"],
            }
            rows = []
            for name, paths in kinds.items():
                get(port, paths[0])
                per_second, p50, p99, errors = measure(port, paths, args.clients, args.seconds)
                rows.append((name, len(paths), round(per_second, 1), round(p50, 1), round(p99, 1), errors))
        finally:
            serve.terminate()
            serve.wait(30)
    table(f"finews serve, {args.posts:,} posts stored, {args.clients} clients, {args.seconds:.0f} s each",
          ("requests", "distinct paths", "requests/s", "p50 ms", "p99 ms", "non-200"), rows)


if __name__ == "__main__":
    main()
