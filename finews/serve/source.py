"""The mirror's site rendered from the stored posts.

Each stored post becomes the post files ``finews export --format jekyll``
writes (``finews.storage.reading.jekyll_files``), each file is read as Jekyll
reads it (``finews.replica.postfile.post_source``) and the replica's renderer
(``finews.replica.site.ReplicaSite``) makes the pages: a served page is by
construction the page the replica (and, for the corpus, real Jekyll) renders
from the exported files. The site follows the change log
(``finews.storage.changes``): posts inserted since the last look are added
to the rendered site (checked at most once a second, one read when nothing
changed), so new posts appear without a build step; a revised post (it may
move to another URL) or a removed one makes a full render.
"""

from __future__ import annotations

import logging
import threading
import time

from finews.core.infocode import site_code
from finews.replica.postfile import post_source
from finews.replica.site import Entry, ReplicaSite, category_titles
from finews.storage.changes import INSERT, ChangeLog
from finews.storage.db import POSTS
from finews.storage.reading import iter_posts, jekyll_files

logger = logging.getLogger(__name__)

FRESHNESS_SECONDS = 1.0
# Counting the posts scans them on SecantusDB (about 2 s for 100,000): a
# removed post (finews never removes one; an operator may) is looked for in
# the background this often, never while a request waits.
REMOVALS_EVERY = 60.0


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

    At most once every ``freshness`` seconds a request reads the change log
    after the last position seen (one read, however many posts are stored).
    Inserted posts are added to the site; a revision (the post may have
    moved to another URL) makes a full render, and so does a post removed
    from the database, which a background thread looks for every
    ``removals_every`` seconds.
    """

    def __init__(self, db, freshness: float = FRESHNESS_SECONDS, removals_every: float = REMOVALS_EVERY):
        self.db = db
        self.freshness = freshness
        self.removals_every = removals_every
        self._stale = False
        self._watcher: threading.Thread | None = None
        self._closed = threading.Event()
        self.changes = ChangeLog(db)
        self._lock = threading.Lock()
        self._site: ReplicaSite | None = None
        self._codes: set[str] = set()
        self._position = 0
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
            if self._site is None or self._stale or not self._catch_up():
                self._render()
            assert self._site is not None  # _render made it
            return self._site

    def _unread(self) -> tuple[list[dict], int]:
        """Every settled change after the last position seen, and the new position."""
        changes, position = [], self._position
        while True:
            more, after = self.changes.read(position, limit=5000)
            changes += more
            if after == position:
                return changes, position
            position = after

    def _render(self) -> None:
        _, self._position = self._unread()  # changes from here on are not in this render
        posts = list(iter_posts(self.db, {}))
        self._site = ReplicaSite(post_files(self.db, posts), category_titles())
        self._codes = {post["_id"] for post in posts}
        self._by_stem = {entry.post.stem: entry for entry in self._site.entries}
        self._stale = False
        self.builds += 1
        if self._watcher is None:
            self._watcher = threading.Thread(target=self._watch_removals, name="serve-removals", daemon=True)
            self._watcher.start()
        logger.info("site rendered from %d posts (%d pages)", len(posts), len(self._site.entries))

    def _catch_up(self) -> bool:
        """Add the posts inserted since the last look; False when only a full render will do."""
        changes, position = self._unread()
        if any(change["op"] != INSERT for change in changes):
            return False
        new = sorted({change["info_code"] for change in changes} - self._codes)
        if new:
            assert self._site is not None
            posts = list(iter_posts(self.db, {"_id": {"$in": new}}))
            for entry in self._site.add(post_files(self.db, posts)):
                self._by_stem[entry.post.stem] = entry
            self._codes |= {post["_id"] for post in posts}
            self.updates += len(posts)
        self._position = position
        return True

    def _watch_removals(self) -> None:
        """Mark the site stale when the database holds fewer posts than it
        shows (more is normal: posts being written)."""
        while not self._closed.wait(self.removals_every):
            try:
                count = self.db[POSTS].estimated_document_count()
            except Exception as error:  # the database away for a moment: look again later
                logger.warning("finews serve: counting posts failed (%s)", error)
                continue
            if count < len(self._codes):
                self._stale = True

    def close(self) -> None:
        """Stop looking for removed posts (the server is stopping)."""
        self._closed.set()

    def entry_of(self, post: dict) -> Entry | None:
        """The page of a stored post (its own kind's file)."""
        self.site()
        return self._by_stem.get(site_code(post["_id"], post.get("kind")))
