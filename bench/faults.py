"""Fault scenarios, end to end, with the figures an operator wants: pages
attempted, retries and failures by reason, posts expected against stored.

    python bench/faults.py [--scenarios 4] [--killed-posts 800]

Real processes: the replica misbehaving (``finews replica --faults``), the
embedded database (killed in the last scenario), and ``scrapy crawl``.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from _common import ROOT, crawl, replica, scratch, stat, table

from finews.core.infocode import normalize_info_code
from finews.replica.site import ReplicaSite
from finews.storage.db import EmbeddedMongo, connect, free_port

ISSUE_SPEC = ("status500=0.1,status429=0.05,timeout=0.05,truncate=0.02,gbk=0.05,"
              "garbage=0.02,redirect_offsite=0.01,slow=0.05")
SHORT = {"FINEWS_DOWNLOAD_TIMEOUT": "2", "FINEWS_AUTOTHROTTLE": "0"}


def by_prefix(log: str, prefix: str) -> str:
    found = re.findall(rf"'{re.escape(prefix)}([^']+)': (\d+)", log)
    return ", ".join(f"{k}={v}" for k, v in sorted(found)) or "-"


def corpus_codes() -> set[str]:
    site = ReplicaSite.from_folder()
    return {normalize_info_code(e.post.raw_code) for e in site.entries if e.post.raw_code and e.post.title}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenarios", type=int, default=4, help="how many of the replica fault scenarios to run")
    parser.add_argument("--killed-posts", type=int, default=800, help="replica size for the killed-database run")
    options = parser.parse_args()
    work = scratch("finews-faults-")
    expected = corpus_codes()
    rows = []
    with EmbeddedMongo(work / "db") as database, connect(database.uri) as client:
        scenarios = [
            ("issue mix, seed 1", "category", ISSUE_SPEC, "1", []),
            ("issue mix, seed 2", "category", ISSUE_SPEC, "2", []),
            ("issue mix, seed 3, share pages", "newsshare", ISSUE_SPEC, "3", ["codes"]),
            ("every page 500", "category", "status500=1.0", "1", []),
        ]
        for number, (label, spider, spec, seed, extra) in enumerate(scenarios[:options.scenarios]):
            name = f"faults{number}"
            with replica(extra=["--faults", spec, "--seed", seed, "--hang-seconds", "5"]) as site:
                args = [f"site={site}"]
                if extra:
                    codes = work / "codes.txt"
                    codes.write_text("\n".join(ReplicaSite.from_folder().share_codes()), encoding="utf-8")
                    args.append(f"codes_file={codes}")
                env = {"MONGO_URI": database.uri, "MONGO_DATABASE": name, "FINEWS_DATA_DIR": str(work / name), **SHORT}
                log, _ = crawl(spider, args, env)
            stored = {d["_id"] for d in client[name].posts.find({}, {"_id": 1})}
            rows.append((label, int(stat(log, "downloader/request_count")), int(stat(log, "retry/count")),
                         by_prefix(log, "finews/fetch_failed/") + "; " + by_prefix(log, "finews/page_failed/"),
                         len(expected), len(stored & expected), len(expected - stored)))
        rows.append(database_killed(work, options.killed_posts))
    table("Fault scenarios (corpus replica: 55 pages, 49 storable posts)",
          ("scenario", "requests", "retries", "failed by reason", "expected", "stored", "missing"), rows)


def database_killed(work: Path, site_posts: int = 800) -> tuple:
    """Kill the database mid-crawl of a scaled replica; replay; count."""
    port = free_port()
    server = EmbeddedMongo(work / "killed-db", port=port).start()
    env = {**os.environ, **SHORT, "MONGO_URI": server.uri, "MONGO_DATABASE": "killed",
           "FINEWS_DATA_DIR": str(work / "killed"), "MONGO_RETRY_ATTEMPTS": "2", "MONGO_TIMEOUT_MS": "1000",
           "MONGO_OUTAGE_COOLDOWN": "2", "MONGO_BATCH_SIZE": "20", "FINEWS_CONCURRENT_REQUESTS": "2"}
    with replica(scale=site_posts) as site:
        process = subprocess.Popen([sys.executable, "-m", "scrapy", "crawl", "category", "-a", f"site={site}"],
                                   cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        with connect(server.uri, serverSelectionTimeoutMS=1000) as client:
            while client.killed.posts.count_documents({}) < 200:
                time.sleep(0.2)
            at_kill = client.killed.posts.count_documents({})
        server.kill()
        log = process.communicate(timeout=900)[1]
    server.start()
    subprocess.run([sys.executable, "-m", "finews.cli", "replay", "--data-dir", str(work / "killed")], cwd=ROOT,
                   env=env, check=True, capture_output=True)
    with connect(server.uri) as client:
        stored = client.killed.posts.count_documents({})
    server.stop()
    return (f"database killed at {at_kill} stored, then replay", int(stat(log, "downloader/request_count")),
            int(stat(log, "retry/count")), f"db spooled={int(stat(log, 'finews/db/spooled'))}",
            site_posts, stored, site_posts - stored)


if __name__ == "__main__":
    main()
