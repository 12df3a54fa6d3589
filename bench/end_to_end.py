"""End-to-end pages per second (fetch, parse, clean, dedupe, store) over a
scaled replica, next to ``scrapy bench`` on the same machine.

    python bench/end_to_end.py [--posts 20000] [--profile]

Prints a table; asserts nothing. The replica and the database each run in a
process of their own, as in production.
"""

from __future__ import annotations

import argparse
import pstats
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import ROOT, crawl, replica, stat, table

from finews.db import EmbeddedMongo


def scrapy_bench() -> tuple[float, float]:
    """``scrapy bench`` outside the project (Scrapy's defaults), as pages/s."""
    result = subprocess.run([sys.executable, "-m", "scrapy", "bench", "-s", "LOG_LEVEL=INFO"],
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
    parser.add_argument("--profile", action="store_true", help="profile the crawl and show where time goes")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="finews-bench-"))
    with replica(scale=args.posts) as site, EmbeddedMongo(work / "db") as database:
        env = {"MONGO_URI": database.uri, "MONGO_DATABASE": "bench", "FINEWS_DATA_DIR": str(work / "var")}
        profile = work / "crawl.prof" if args.profile else None
        log, _ = crawl("category", [f"site={site}"], env, profile=profile)
    pages, seconds = stat(log, "response_received_count"), stat(log, "elapsed_time_seconds")
    stored = stat(log, "finews/posts/inserted")
    bench_pages, bench_seconds = scrapy_bench()
    ours, theirs = pages / seconds, bench_pages / bench_seconds
    table(f"End to end over a {args.posts:,}-post replica (2 cores; replica, database, crawler in separate processes)",
          ("run", "pages", "seconds", "pages/s", "posts stored"),
          [("finews category crawl", int(pages), seconds, ours, int(stored)),
           ("scrapy bench", int(bench_pages), bench_seconds, theirs, "-")])
    print(f"\nratio finews / scrapy bench: {ours / theirs:.2f}x  (target ≥ 0.8x)")
    if profile:
        where_time_goes(profile)


if __name__ == "__main__":
    main()
