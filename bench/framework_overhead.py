"""Framework work per page: ``asyncio.create_task`` calls and pages/s of the
same crawl with Scrapy's default ``CONCURRENT_ITEMS`` (100) and with the
project's setting, in paired runs whose order alternates.

    python bench/framework_overhead.py [--posts 3000] [--repeats 3] [--compare 100]

A post page yields one item, but Scrapy starts ``CONCURRENT_ITEMS`` worker
tasks for every callback's output; the project's value fits one item per page.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys

from _common import ROOT, replica, scratch, stat, table

from crawler import settings as project_settings
from finews.storage.db import EmbeddedMongo


def crawl(site: str, env: dict, concurrent_items: int) -> tuple[float, float, int]:
    """One crawl with the task counter; returns pages/s, pages, create_task calls."""
    command = [sys.executable, str(ROOT / "bench" / "_count_tasks.py"), "crawl", "category", "-a", f"site={site}",
               "-s", "LOG_LEVEL=INFO", "-s", "AUTOTHROTTLE_ENABLED=False", "-s", f"CONCURRENT_ITEMS={concurrent_items}"]
    result = subprocess.run(command, cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=1800)
    if result.returncode != 0:
        raise RuntimeError(f"crawl failed:\n{result.stderr[-3000:]}")
    pages = stat(result.stderr, "response_received_count")
    tasks = int(re.search(r"create_task calls: (\d+)", result.stderr).group(1))
    return pages / stat(result.stderr, "elapsed_time_seconds"), pages, tasks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--posts", type=int, default=3_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compare", type=int, default=100, help="CONCURRENT_ITEMS to compare with (Scrapy's default)")
    args = parser.parse_args()
    ours = project_settings.CONCURRENT_ITEMS
    work = scratch()
    rows, ratios = [], []
    with replica(scale=args.posts) as site, EmbeddedMongo(work / "db") as database:
        for repeat in range(args.repeats):
            rates = {}
            for value in (args.compare, ours) if repeat % 2 == 0 else (ours, args.compare):
                name = f"tasks{repeat}_{value}"
                env = {"MONGO_URI": database.uri, "MONGO_DATABASE": name, "FINEWS_DATA_DIR": str(work / name)}
                rate, pages, tasks = crawl(site, env, value)
                rates[value] = rate
                rows.append((repeat + 1, value, int(pages), tasks, tasks / pages, rate))
            ratios.append(rates[ours] / rates[args.compare])
    table(f"Framework work per page, {args.posts:,}-post replica (pairs in alternating order)",
          ("pair", "CONCURRENT_ITEMS", "pages", "create_task calls", "tasks per page", "pages/s"), rows)
    table(f"pages/s with CONCURRENT_ITEMS={ours} / with {args.compare}, per pair", ("min", "median", "max"),
          [(f"{min(ratios):.2f}x", f"{statistics.median(ratios):.2f}x", f"{max(ratios):.2f}x")])


if __name__ == "__main__":
    main()
