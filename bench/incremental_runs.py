"""Requests for article pages in repeated runs: over an unchanged replica
(target 0) and after adding K posts (target exactly K).

    python bench/incremental_runs.py [--posts 5000] [--add 250]
"""

from __future__ import annotations

import argparse

from _common import add_posts, crawl, replica, scratch, stat, table

from finews.storage.db import EmbeddedMongo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--posts", type=int, default=5_000)
    parser.add_argument("--add", type=int, default=250)
    args = parser.parse_args()

    work = scratch()
    rows = []
    with replica(scale=args.posts) as site, EmbeddedMongo(work / "db") as database:
        env = {"MONGO_URI": database.uri, "MONGO_DATABASE": "bench", "FINEWS_DATA_DIR": str(work / "var")}

        def run(label: str, target: str) -> None:
            log, _ = crawl("category", [f"site={site}"], env)
            rows.append((label, int(stat(log, "finews/post_pages")), target,
                         int(stat(log, "finews/skipped_known")), int(stat(log, "finews/posts/inserted")),
                         stat(log, "elapsed_time_seconds")))

        run("first run (empty database)", f"{args.posts:,}")
        run("second run, replica unchanged", "0")
        add_posts(site, args.add)
        run(f"after adding {args.add} posts", f"{args.add:,}")
    table(f"Incremental runs over a {args.posts:,}-post replica",
          ("run", "article requests", "target", "skipped as known", "inserted", "seconds"), rows)


if __name__ == "__main__":
    main()
