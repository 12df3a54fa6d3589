"""The listing pages of the site that earlier runs found (``listings``).

The category spider finds a category page only through a link on a page it
fetched (a post's back link, the home page's heading): a run that fetches no
new post of a category never opens its page, so a post missed once (a page
that failed every retry, a worker killed holding requests, a long outage)
would never be found again. Every listing page linked from a page the
crawl read is remembered here by its path (before it is fetched, so a page
a killed worker held is not forgotten), and every run reads them all again; a listing is read to its last
page when its sweep is due (``SWEEP_SECONDS``), otherwise only as far as it
lists posts that are not stored yet.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pymongo import UpdateOne

from finews.storage.doctypes import Db

LISTINGS = "listings"
SWEEP_SECONDS = 24 * 3600


def remembered(db: Db, now: datetime, sweep_seconds: float = SWEEP_SECONDS) -> list[tuple[str, bool]]:
    """Every remembered listing path, oldest first, and whether its full
    sweep is due (never swept, or last swept ``sweep_seconds`` ago)."""
    due_before = now - timedelta(seconds=sweep_seconds)
    out: list[tuple[str, bool]] = []
    for doc in db[LISTINGS].find({}, {"swept_at": 1}).sort("first_seen_at", 1):
        swept = doc.get("swept_at")
        if swept is not None and swept.tzinfo is None:
            swept = swept.replace(tzinfo=now.tzinfo)
        out.append((doc["_id"], swept is None or swept <= due_before))
    return out


def remember(db: Db, paths: list[str], now: datetime) -> None:
    """Listing paths found in this run (first pages, without a query)."""
    if paths:
        db[LISTINGS].bulk_write([UpdateOne({"_id": path}, {"$set": {"found_at": now},
                                                           "$setOnInsert": {"first_seen_at": now}}, upsert=True)
                                 for path in paths], ordered=False)


def swept(db: Db, path: str, now: datetime) -> None:
    """A listing read to its last page."""
    db[LISTINGS].update_one({"_id": path}, {"$set": {"swept_at": now}})


def forget(db: Db, path: str) -> None:
    """A remembered listing the site no longer serves (404, 410)."""
    db[LISTINGS].delete_one({"_id": path})
