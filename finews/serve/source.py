"""The mirror's site rendered from the stored posts.

Each stored post becomes the post files ``finews export --format jekyll``
writes (``finews.storage.reading.jekyll_files``), each file is read as Jekyll
reads it (``finews.core.postfile.post_source``) and the replica's renderer
(``finews.replica.site.ReplicaSite``) makes the pages: a served page is by
construction the page the replica (and, for the corpus, real Jekyll) renders
from the exported files. The site is rebuilt when the posts change (checked at
most once a second: count and newest ``crawled_at``), so new posts appear
without a build step.
"""

from __future__ import annotations

import logging
import threading
import time

from finews.core.infocode import site_code
from finews.core.postfile import post_source
from finews.replica.site import Entry, ReplicaSite, category_titles
from finews.storage.db import POSTS
from finews.storage.reading import iter_posts, jekyll_files

logger = logging.getLogger(__name__)

FRESHNESS_SECONDS = 1.0


def build_site(db) -> ReplicaSite:
    """Every stored post's exported files, as one site (the bundled corpus's
    category page files give the category pages' titles)."""
    posts = []
    for name, text in jekyll_files(db, iter_posts(db, {})):
        post = post_source(text, name.rsplit("/", 1)[-1])
        if post is not None:
            posts.append(post)
    return ReplicaSite(posts, category_titles())


class StoredSite:
    """The site of a database's posts, rebuilt when they change."""

    def __init__(self, db, freshness: float = FRESHNESS_SECONDS):
        self.db = db
        self.freshness = freshness
        self._lock = threading.Lock()
        self._site: ReplicaSite | None = None
        self._key = None
        self._checked = float("-inf")
        self._by_stem: dict[str, Entry] = {}
        self.builds = 0

    def _version(self):
        newest = self.db[POSTS].find_one({}, {"crawled_at": 1, "updated_at": 1}, sort=[("crawled_at", -1)])
        return (self.db[POSTS].count_documents({}),
                newest and newest.get("crawled_at"), newest and newest.get("_id"))

    def site(self) -> ReplicaSite:
        with self._lock:
            now = time.monotonic()
            if self._site is not None and now - self._checked < self.freshness:
                return self._site
            key = self._version()
            self._checked = now
            if self._site is None or key != self._key:
                self._site = build_site(self.db)
                self._by_stem = {entry.post.stem: entry for entry in self._site.entries}
                self._key = key
                self.builds += 1
                logger.info("site rendered from %d posts (%d pages)", key[0], len(self._site.entries))
            return self._site

    def entry_of(self, post: dict) -> Entry | None:
        """The page of a stored post (its own kind's file)."""
        self.site()
        return self._by_stem.get(site_code(post["_id"], post.get("kind")))
