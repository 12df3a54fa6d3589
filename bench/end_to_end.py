"""End-to-end pages per second (fetch, parse, clean, dedupe, store) over a
scaled replica, next to ``scrapy bench`` on the same machine.

    python bench/end_to_end.py [--posts 20000] [--repeats 3] [--bench-seconds 10] [--profile]

Each repetition runs the crawl (into an empty database) and ``scrapy bench``
back to back, in alternating order, so both see the same load; the ratio is
taken per pair and its min/median/max printed. Beside them: what the replica
serves to bare HTTP clients and what the database takes from a bare
``insert_many``, the physical limits of the figure. Asserts nothing. The
replica and the database each run in a process of their own, as in
production.
"""

from __future__ import annotations

import argparse
import pstats
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import (
    ROOT,
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

from finews.storage.db import EmbeddedMongo


def scrapy_bench(seconds: int = 10) -> tuple[float, float]:
    """``scrapy bench`` outside the project (Scrapy's defaults), as pages/s."""
    result = subprocess.run([sys.executable, "-m", "scrapy", "bench", "-s", "LOG_LEVEL=INFO",
                             "-s", f"CLOSESPIDER_TIMEOUT={seconds}"],
                            cwd=tempfile.gettempdir(), capture_output=True, text=True, timeout=300)
    return stat(result.stderr, "response_received_count"), stat(result.stderr, "elapsed_time_seconds")


def where_time_goes(profile: Path, top: int = 15) -> None:
    stats = pstats.Stats(str(profile))
    groups: dict[str, float] = {}
    for (filename, _, function), (_, _, own, _, _) in stats.stats.items():
        name = _component(filename, function)
        groups[name] = groups.get(name, 0.0) + own
    total = sum(groups.values())
    rows = sorted(groups.items(), key=lambda kv: -kv[1])[:top]
    table("Where the crawl's CPU time goes (own time by component, cProfile)", ("component", "seconds", "share"),
          [(name, seconds, f"{100 * seconds / total:.1f}%") for name, seconds in rows])


def _component(filename: str, function: str) -> str:
    if filename == "~":  # a builtin: name it, since epoll's wait is idle time, not work
        if "poll" in function or "select" in function:
            return "idle: waiting on sockets"
        return "builtin: " + function.strip("<>").replace("built-in method ", "").replace("method ", "")[:40]
    for marker in ("site-packages/", "lib/python3"):
        if marker in filename:
            rest = filename.split(marker, 1)[1].lstrip("/")
            parts = rest.split("/")
            return parts[0] if marker == "site-packages/" else f"stdlib:{parts[1] if len(parts) > 1 else parts[0]}"
    if str(ROOT) in filename:
        return "finews:" + str(Path(filename).relative_to(ROOT).parent)
    return filename if filename.startswith("<") else "other"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--posts", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3, help="paired runs of the crawl and scrapy bench")
    parser.add_argument("--bench-seconds", type=int, default=10, help="how long scrapy bench runs")
    parser.add_argument("--profile", action="store_true", help="profile the first crawl and show where time goes")
    args = parser.parse_args()

    work = scratch()
    rows, ratios = [], []
    with replica(scale=args.posts) as site, EmbeddedMongo(work / "db") as database:
        profile = work / "crawl.prof" if args.profile else None
        for repeat in range(args.repeats):
            env = {"MONGO_URI": database.uri, "MONGO_DATABASE": f"bench{repeat}",
                   "FINEWS_DATA_DIR": str(work / f"var{repeat}")}
            ours = theirs = None
            for step in ("crawl", "bench") if repeat % 2 == 0 else ("bench", "crawl"):
                if step == "crawl":
                    log, _ = crawl("category", [f"site={site}"], env, profile=profile if repeat == 0 else None)
                    pages, seconds = stat(log, "response_received_count"), stat(log, "elapsed_time_seconds")
                    ours = pages / seconds
                    rows.append((repeat + 1, "finews category crawl", int(pages), seconds, ours,
                                 int(stat(log, "finews/posts/inserted"))))
                else:
                    bench_pages, bench_seconds = scrapy_bench(args.bench_seconds)
                    theirs = bench_pages / bench_seconds
                    rows.append((repeat + 1, "scrapy bench", int(bench_pages), bench_seconds, theirs, "-"))
            ratios.append(ours / theirs)
        ceiling = replica_ceiling(site)
        inserts = insert_ceiling(database.uri, stored_posts(synthesizer(args.posts), args.posts, 2_000))
    table(f"End to end over a {args.posts:,}-post replica (2 cores; replica, database, crawler in separate "
          f"processes; runs in pairs, order alternating)",
          ("pair", "run", "pages", "seconds", "pages/s", "posts stored"), rows)
    table("Ratio finews / scrapy bench, per pair", ("min", "median", "max", "pairs"),
          [(f"{min(ratios):.2f}x", f"{statistics.median(ratios):.2f}x", f"{max(ratios):.2f}x", len(ratios))])
    table("Ceilings on this machine", ("limit", "per second"),
          [("replica: post pages served to 4 bare keep-alive HTTP clients", ceiling),
           ("database: bare insert_many of the same posts, batches of 100", inserts)])
    if profile:
        where_time_goes(profile)


if __name__ == "__main__":
    main()
