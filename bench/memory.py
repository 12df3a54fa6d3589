"""Peak resident memory of a crawl with 10,000 and with 100,000 posts already
stored: what a scheduled run costs must not grow with the database.

    python bench/memory.py [--stored 10000,100000] [--site-posts 2000]

Each crawl runs over the same replica; the database is pre-filled with
synthesized posts that include all but the 100 newest of the replica's, so
the crawl finds most posts known and fetches the new ones, as a scheduled
run does (it stops with an error if it fetched anything else).
"""

from __future__ import annotations

import argparse

from _common import crawl, replica, scratch, stat, stored_posts, synthesizer, table

from finews.storage.db import EmbeddedMongo, connect, ensure_indexes

NEW_ON_SITE = 100


def fill(db, count: int, site_posts: int) -> None:
    """Stored posts shaped like real ones: the replica's sequence except its
    ``NEW_ON_SITE`` newest posts (as a scheduled run finds the site: the new
    posts are the newest, on the home page), then posts past the replica's to
    make up ``count``."""
    posts = synthesizer(site_posts)
    ensure_indexes(db)  # with the schema validator: the documents are what the store writes
    known = site_posts - NEW_ON_SITE
    for first, end in ((0, min(count, known)), (site_posts, site_posts + count - known)):
        for start in range(first, end, 2000):
            db.posts.insert_many(stored_posts(posts, start, min(2000, end - start)), ordered=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stored", default="10000,100000")
    parser.add_argument("--site-posts", type=int, default=2000)
    args = parser.parse_args()
    work = scratch()
    rows = []
    with (replica(scale=args.site_posts) as site, EmbeddedMongo(work / "db") as database,
          connect(database.uri) as client):
        for stored in (int(n) for n in args.stored.split(",")):
            name = f"bench_mem_{stored}"
            client.drop_database(name)
            fill(client[name], stored, args.site_posts)
            env = {"MONGO_URI": database.uri, "MONGO_DATABASE": name, "FINEWS_DATA_DIR": str(work / name)}
            log, peak_kib = crawl("category", [f"site={site}", "refresh=new"], env)
            if stat(log, "finews/post_pages") != NEW_ON_SITE:
                raise SystemExit(f"memory.py: the crawl fetched {stat(log, 'finews/post_pages'):.0f} post pages, "
                                 f"not the {NEW_ON_SITE} new ones: it did not measure a scheduled run")
            rows.append((f"{stored:,} stored", client[name].posts.count_documents({}),
                         int(stat(log, "finews/post_pages")), int(stat(log, "finews/skipped_known")),
                         peak_kib / 1024, stat(log, "finews/signing_peak_rss_kib") / 1024))
            client.drop_database(name)
    table(f"Peak resident memory of a crawl over a {args.site_posts:,}-post replica",
          ("database before", "posts after", "article requests", "skipped as known", "peak RSS MiB",
           "signing child peak RSS MiB"), rows)
    if len(rows) > 1:
        growth = (rows[-1][-2] + rows[-1][-1]) - (rows[0][-2] + rows[0][-1])
        print(f"growth (crawler and signing child) from {rows[0][0]} to {rows[-1][0]}: {growth:+.1f} MiB "
              "(target < 50 MiB)")


if __name__ == "__main__":
    main()
