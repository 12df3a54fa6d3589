"""A crawl with the database down throughout, against the same crawl with it
up: wall time, posts spooled, and whether the run record reached the database
after a replay.

    python bench/db_outage.py --posts 1000 [--root OTHER_CHECKOUT]

Real processes: ``finews replica --scale N``, the embedded database (killed
for the outage), ``scrapy crawl`` (run from ``--root``, to compare commits).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, replica, stat, table

from finews.storage.db import EmbeddedMongo, connect, free_port


def run_crawl(root: Path, site: str, env: dict) -> tuple[float, str, int]:
    command = [sys.executable, "-m", "scrapy", "crawl", "category", "-s", "LOG_LEVEL=INFO", "-a", f"site={site}"]
    started = time.perf_counter()
    result = subprocess.run(command, cwd=root, env={**os.environ, **env}, capture_output=True, text=True)
    return time.perf_counter() - started, result.stderr, result.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=1000)
    parser.add_argument("--root", type=Path, default=ROOT, help="checkout whose crawler is measured")
    parser.add_argument("--timeout-ms", type=int, default=10_000, help="MONGO_TIMEOUT_MS (the default)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp, replica(args.posts) as site:
        server = EmbeddedMongo(Path(tmp) / "db", port=free_port()).start()
        base = {"MONGO_URI": server.uri, "FINEWS_AUTOTHROTTLE": "0", "MONGO_TIMEOUT_MS": str(args.timeout_ms)}
        up_env = {**base, "MONGO_DATABASE": "up", "FINEWS_DATA_DIR": f"{tmp}/up"}
        seconds, log, code = run_crawl(args.root, site, up_env)
        rows.append(("database up", seconds, code, stat(log, "finews/posts/inserted"), stat(log, "finews/db/spooled"),
                     "-"))
        server.kill()
        down_env = {**base, "MONGO_DATABASE": "down", "FINEWS_DATA_DIR": f"{tmp}/down"}
        seconds, log, code = run_crawl(args.root, site, down_env)
        server.start()
        replay = subprocess.run([sys.executable, "-m", "finews.cli", "replay", "--data-dir", f"{tmp}/down"],
                                cwd=args.root, env={**os.environ, **down_env}, capture_output=True, text=True)
        with connect(server.uri) as client:
            record = client.down.crawl_runs.find_one() or {}
            stored = client.down.posts.count_documents({})
        rows.append(("database down throughout", seconds, code, stored, stat(log, "finews/db/spooled"),
                     f"{record.get('outcome', 'none')} (replay exit {replay.returncode})"))
        server.stop()
    table(f"Crawl of {args.posts} posts from {args.root}",
          ("scenario", "seconds", "exit", "posts stored (after replay)", "spooled", "run record"), rows)


if __name__ == "__main__":
    main()
