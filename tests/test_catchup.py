"""A post missed once is found by the next ordinary run (issue 19, item 2).

Listing pages an earlier run read are remembered in ``listings`` and read
again by every run; a listing is read to its last page when its sweep is
due. The oracle is the replica: which post pages it lists where, and what
it was asked for.
"""

from __future__ import annotations

import re
import urllib.request
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

import pytest

from finews.replica.server import ReplicaServer
from finews.replica.site import ReplicaSite
from finews.storage.listings import LISTINGS, forget, remember, remembered, swept

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def test_remembered_listings_say_when_their_sweep_is_due(db):
    remember(db, ["/category/a.html", "/emnews/"], NOW - timedelta(days=3))
    remember(db, ["/category/b.html", "/category/a.html"], NOW)
    swept(db, "/emnews/", NOW - timedelta(hours=2))
    swept(db, "/category/b.html", NOW - timedelta(hours=30))
    due = dict(remembered(db, NOW, sweep_seconds=24 * 3600))
    assert due == {"/category/a.html": True, "/emnews/": False, "/category/b.html": True}
    assert db[LISTINGS].find_one({"_id": "/category/a.html"})["first_seen_at"] == NOW - timedelta(days=3)
    forget(db, "/category/a.html")
    assert [path for path, _ in remembered(db, NOW)] == ["/emnews/", "/category/b.html"]


def _linked_posts(replica, path: str) -> set[str]:
    """Post pages a listing of the replica links to, read from its HTML."""
    html = urllib.request.urlopen(replica.url + path, timeout=10).read().decode("utf-8")
    return {unquote(href) for href in re.findall(r'<li>.*?<a href="([^"]+\.html)"', html)}


@pytest.fixture
def big_replica():
    # 2,000 posts in 40 categories: about 50 a category, so most posts are on
    # neither the home page (the newest 100) nor /categories/ (20 per tag).
    with ReplicaServer(ReplicaSite.scaled(2000)) as server:
        yield server


def test_posts_missed_once_are_stored_by_the_next_plain_run(crawl, big_replica, db):
    crawl("category", f"site={big_replica.url}")
    stored = db.posts.count_documents({})
    assert stored == 2000
    assert db[LISTINGS].count_documents({}) >= 40

    on_front = _linked_posts(big_replica, "/") | _linked_posts(big_replica, "/categories/")
    site = big_replica.site
    old = [entry for entry in site.entries if entry.path not in on_front][:25]
    assert len(old) == 25
    missed = db.posts.find({"url": {"$in": [big_replica.url + e.path for e in old]}}, {"_id": 1})
    missed = [doc["_id"] for doc in missed]
    assert len(missed) == 25
    db.posts.delete_many({"_id": {"$in": missed}})  # stands for posts a run lost
    before = dict(big_replica.attempts)

    crawl("category", f"site={big_replica.url}")

    assert db.posts.count_documents({}) == stored
    assert db.posts.count_documents({"_id": {"$in": missed}}) == 25
    fetched = {unquote(p) for p, n in big_replica.attempts.items()
               if n > before.get(p, 0) and unquote(p) in site.by_path}
    assert fetched == {e.path for e in old}  # nothing else fetched again


@pytest.fixture
def paged_replica():
    # 1,200 posts in 40 categories, 10 posts a listing page: three pages a category.
    with ReplicaServer(ReplicaSite.scaled(1200, page_size=10)) as server:
        yield server


def test_a_listing_is_read_past_its_stored_posts_only_when_its_sweep_is_due(crawl, paged_replica, db):
    site = paged_replica.site
    crawl("category", f"site={paged_replica.url}")
    assert db.posts.count_documents({}) == 1200
    on_front = _linked_posts(paged_replica, "/") | _linked_posts(paged_replica, "/categories/")
    third_pages = [e for entries in site.by_category.values() for e in entries[20:] if e.path not in on_front]
    urls = [paged_replica.url + e.path for e in third_pages[:10]]
    missed = [doc["_id"] for doc in db.posts.find({"url": {"$in": urls}})]
    assert len(missed) == 10
    db.posts.delete_many({"_id": {"$in": missed}})

    def later_pages(before):
        return sum(n - before.get(p, 0) for p, n in paged_replica.attempts.items() if "?page=" in p)

    before = dict(paged_replica.attempts)
    crawl("category", f"site={paged_replica.url}")  # every first page lists only stored posts
    assert later_pages(before) == 0
    assert db.posts.count_documents({"_id": {"$in": missed}}) == 0

    before = dict(paged_replica.attempts)
    crawl("category", f"site={paged_replica.url}", env={"FINEWS_LISTING_SWEEP_SECONDS": "0"})  # sweeps due
    assert later_pages(before) == 2 * 40
    assert db.posts.count_documents({"_id": {"$in": missed}}) == 10
