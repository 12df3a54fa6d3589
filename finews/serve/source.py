"""The mirror's site rendered from the stored posts.

Each stored post becomes the post files ``finews export --format jekyll``
writes (``finews.storage.reading.jekyll_files``), each file is read as Jekyll
reads it (``finews.replica.postfile.post_source``) and the replica's renderer
(``finews.replica.site.ReplicaSite``) makes the pages: a served page is by
construction the page the replica (and, for the corpus, real Jekyll) renders
from the exported files. Posts stored or re-fetched since the last request
are added to the rendered site (checked at most once a second), so new posts
appear without a build step; a changed or removed post makes a full render.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime

from finews.core.infocode import site_code
from finews.replica.postfile import post_source
from finews.replica.site import Entry, ReplicaSite, category_titles
from finews.storage.db import POSTS
from finews.storage.reading import iter_posts, jekyll_files

logger = logging.getLogger(__name__)

FRESHNESS_SECONDS = 1.0


def post_files(db, posts) -> list:
    """The exported files of ``posts`` as Jekyll reads them."""
    files = []
    for name, text in jekyll_files(db, posts):
        post = post_source(text, name.rsplit("/", 1)[-1])
        if post is not None:
            files.append(post)
    return files


def build_site(db) -> ReplicaSite:
    """Every stored post's exported files, as one site (the bundled corpus's
    category page files give the category pages' titles)."""
    return ReplicaSite(post_files(db, iter_posts(db, {})), category_titles())


class StoredSite:
    """The site of a database's posts, kept up to date.

    At most once every ``freshness`` seconds a request asks the database how
    many posts it holds and the newest ``crawled_at``. Posts fetched since the
    last look are added to the site (a new post, or one re-fetched unchanged,
    at its URL); a post whose content changed since (``updated_at``: it may
    have moved to another URL) or posts that disappeared make a full render.
    """

    def __init__(self, db, freshness: float = FRESHNESS_SECONDS):
        self.db = db
        self.freshness = freshness
        self._lock = threading.Lock()
        self._site: ReplicaSite | None = None
        self._codes: set[str] = set()
        self._newest = None
        self._checked = float("-inf")
        self._by_stem: dict[str, Entry] = {}
        self.builds = 0   # full renders
        self.updates = 0  # posts added to a rendered site

    def site(self) -> ReplicaSite:
        with self._lock:
            now = time.monotonic()
            if self._site is not None and now - self._checked < self.freshness:
                return self._site
            self._checked = now
            count = self.db[POSTS].count_documents({})
            newest = self.db[POSTS].find_one({}, {"crawled_at": 1}, sort=[("crawled_at", -1)])
            newest = newest.get("crawled_at") if newest else None
            if self._site is None or not self._catch_up(count, newest):
                self._render(newest)
            assert self._site is not None  # _render made it
            return self._site

    def _render(self, newest) -> None:
        posts = list(iter_posts(self.db, {}))
        self._site = ReplicaSite(post_files(self.db, posts), category_titles())
        self._codes = {post["_id"] for post in posts}
        self._by_stem = {entry.post.stem: entry for entry in self._site.entries}
        self._newest = newest
        self.builds += 1
        logger.info("site rendered from %d posts (%d pages)", len(posts), len(self._site.entries))

    def _catch_up(self, count: int, newest) -> bool:
        """Add the posts fetched since the last look; False when only a full render will do."""
        if count == len(self._codes) and newest == self._newest:
            return True
        if self._newest is None or newest is None or count < len(self._codes):
            return False
        fetched = list(iter_posts(self.db, {"crawled_at": {"$gte": self._newest}}))
        new = {post["_id"] for post in fetched} - self._codes
        changed = [post for post in fetched if post["_id"] not in new and isinstance(post.get("updated_at"), datetime)
                   and post["updated_at"] > self._newest]
        if changed or len(self._codes) + len(new) != count:
            return False
        for entry in self._site.add(post_files(self.db, fetched)):
            self._by_stem[entry.post.stem] = entry
        self._codes |= new
        self._newest = newest
        self.updates += len(fetched)
        return True

    def entry_of(self, post: dict) -> Entry | None:
        """The page of a stored post (its own kind's file)."""
        self.site()
        return self._by_stem.get(site_code(post["_id"], post.get("kind")))
