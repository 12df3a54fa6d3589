"""Store posts and rejects in MongoDB.

``PostStore`` is the storage logic, usable without Scrapy: bulk upserts keyed
on the infoCode (``_id``), revisions kept in ``post_versions``, transient
errors retried with tenacity, and batches that still cannot be written
spooled to a file and replayed on the next start. ``MongoPipeline`` buffers
items into batches and hands them to it.
"""

from __future__ import annotations

import logging
import os
import time
import zlib
from collections import Counter, deque
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

from bson import Binary, json_util
from itemadapter import ItemAdapter
from pymongo import UpdateOne
from pymongo.errors import BulkWriteError, ConnectionFailure, PyMongoError
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from crawler.database import CrawlDatabase
from finews.db import DUPLICATE_KEY, POST_VERSIONS, POSTS, RAW_ARTICLES, REJECTS, insert_new
from finews.neardup import NearDuplicateIndex
from finews.process import alive
from pipelines.normalize import KIND_RANK
from pipelines.sources import with_feed_sources, with_source_fields  # feed sources (issue 10)

logger = logging.getLogger(__name__)

RAW_FIELD = "raw_article"  # travels with a post to the store, kept apart from it
# Fields a revision replaces; identity and bookkeeping fields are never $set.
_KEEP_ON_UPDATE = {"_id", "version", "first_seen_at"}


def utcnow() -> datetime:
    # Mongo stores milliseconds; trimming here keeps in-memory and stored equal.
    now = datetime.now(timezone.utc)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def is_transient(exc: BaseException) -> bool:
    """Errors worth retrying: lost connections, elections, and upsert races."""
    if isinstance(exc, ConnectionFailure):
        return True
    if isinstance(exc, BulkWriteError):
        errors = exc.details.get("writeErrors", [])
        return bool(errors) and all(e.get("code") == DUPLICATE_KEY for e in errors)
    if isinstance(exc, PyMongoError):
        return exc.has_error_label("RetryableWriteError") or exc.has_error_label("TransientTransactionError")
    return False


class PostStore:
    """Writes normalized posts and rejects; counts what each write did."""

    def __init__(self, db, retry_attempts: int = 5, retry_max_wait: float = 8.0, near_duplicates: bool = True):
        self.db = db
        self.posts, self.rejects, self.versions = db[POSTS], db[REJECTS], db[POST_VERSIONS]
        self._retrying = Retrying(
            retry=retry_if_exception(is_transient),
            stop=stop_after_attempt(retry_attempts),
            wait=wait_exponential(multiplier=0.2, max=retry_max_wait),
            before_sleep=self._log_retry,
            reraise=True,
        )
        self.retries = 0
        self.near_duplicates = NearDuplicateIndex(db) if near_duplicates else None

    def _log_retry(self, state: RetryCallState) -> None:
        self.retries += 1
        logger.warning("Database write failed (%s), retry %d", state.outcome.exception(), state.attempt_number)

    def _call(self, fn, *args, **kwargs):
        return self._retrying(fn, *args, **kwargs)

    @with_feed_sources  # sources seen, feed items, text answers; better-sourced values win
    def write_posts(self, docs: list[dict]) -> Counter:
        """Store posts by infoCode. New posts are inserted, unchanged ones
        only get ``crawled_at``, changed ones become a new version."""
        counts: Counter = Counter()
        if not docs:
            return counts
        now = utcnow()
        batch: dict[str, dict] = {}
        raw: dict[str, str] = {}
        for doc in docs:
            code = doc["info_code"]
            if code not in batch or _rank(doc) >= _rank(batch[code]):
                batch[code] = {k: v for k, v in doc.items() if k != RAW_FIELD}
                raw[code] = doc.get(RAW_FIELD) or ""
        existing = {
            old["_id"]: old
            for old in self._call(
                lambda: list(self.posts.find({"_id": {"$in": list(batch)}}, {"content_hash": 1, "kind": 1}))
            )
        }
        fresh, touched, changed = [], [], []
        for code, doc in batch.items():
            old = existing.get(code)
            if old is None:
                fresh.append(doc)
            elif old.get("content_hash") == doc["content_hash"] or _rank(old) > _rank(doc):
                counts["unchanged" if old.get("content_hash") == doc["content_hash"] else "twin_kept"] += 1
                touched.append(code)
            else:
                changed.append(doc)
        inserted, raced = self._call(self._insert, fresh, now)
        counts["inserted"] += len(inserted)
        changed += raced  # stored by another crawler meanwhile: compare like any re-fetch
        if touched:
            self._call(self.posts.update_many, {"_id": {"$in": touched}}, {"$set": {"crawled_at": now}})
        revised = []
        for doc in changed:
            outcome = self._call(self._revise, doc, now)
            counts[outcome] += 1
            if outcome == "updated":
                revised.append(doc)
            elif outcome == "inserted":
                inserted.append(doc)
        stored = [doc["info_code"] for doc in [*inserted, *revised] if raw.get(doc["info_code"])]
        if stored:
            self._call(self._keep_raw, {code: raw[code] for code in stored}, now)
        if self.near_duplicates:
            counts["near_duplicate_pairs"] += self._call(self.near_duplicates.flag, inserted, revised)
        return +counts  # drop zero counts

    def _keep_raw(self, articles: dict[str, str], now: datetime) -> None:
        """The article source of each stored post, compressed, for export
        and for reprocessing after the cleaner improves."""
        self.db[RAW_ARTICLES].bulk_write([
            UpdateOne({"_id": code}, {"$set": {"raw": Binary(zlib.compress(text.encode("utf-8"), 6)),
                                               "encoding": "zlib+utf-8", "stored_at": now}}, upsert=True)
            for code, text in articles.items()
        ], ordered=False)

    def _insert(self, docs: list[dict], now: datetime) -> tuple[list[dict], list[dict]]:
        """Insert new posts; a duplicate key means another crawler stored the
        post first (or a retried batch already did), which is not an error."""
        rows = [{**doc, "_id": doc["info_code"], "version": 1, "first_seen_at": now, "crawled_at": now} for doc in docs]
        lost = insert_new(self.posts, rows)
        return [d for i, d in enumerate(docs) if i not in lost], [d for i, d in enumerate(docs) if i in lost]

    def _revise(self, doc: dict, now: datetime, attempts: int = 5) -> str:
        """Replace a changed post atomically, keeping the old text as a version.

        The update only applies if the stored hash and version are still the
        ones read, so two crawlers revising at once lose no revision.
        """
        code = doc["info_code"]
        fields = {k: v for k, v in doc.items() if k not in _KEEP_ON_UPDATE}
        for _ in range(attempts):
            old = self.posts.find_one({"_id": code}, {"content_hash": 1, "version": 1, "title": 1, "body_html": 1, "kind": 1})
            if old is None:
                if self._insert([doc], now)[0]:
                    return "inserted"
                continue
            if old.get("content_hash") == doc["content_hash"]:
                return "unchanged"
            if _rank(old) > _rank(doc):
                return "twin_kept"
            version = old.get("version", 1)
            self.versions.update_one(
                {"info_code": code, "version": version},
                {"$setOnInsert": {"content_hash": old.get("content_hash"), "title": old.get("title"),
                                  "body_html": old.get("body_html"), "replaced_at": now}},
                upsert=True,
            )
            result = self.posts.update_one(
                {"_id": code, "content_hash": old.get("content_hash"), "version": version},
                {"$set": {**fields, "updated_at": now, "crawled_at": now}, "$inc": {"version": 1}},
            )
            if result.modified_count:
                return "updated"
        logger.warning("Post %s kept changing under concurrent writers; this fetch is not kept", code)
        return "revise_conflicts"

    def write_rejects(self, rejects: list[dict]) -> int:
        """Keep each rejected page once per (url, reason), counting sightings."""
        if not rejects:
            return 0
        now = utcnow()
        ops = [
            UpdateOne(
                {"url": r["url"], "reason": r["reason"]},
                {"$set": {k: v for k, v in r.items() if k not in ("url", "reason")} | {"last_seen_at": now},
                 "$setOnInsert": {"first_seen_at": now}, "$inc": {"count": 1}},
                upsert=True,
            )
            for r in rejects
        ]
        self._call(self.rejects.bulk_write, ops, ordered=False)
        return len(ops)


def read_raw(doc: dict | None) -> str | None:
    return zlib.decompress(doc["raw"]).decode("utf-8") if doc and doc.get("raw") else None


def _rank(doc: dict) -> int:
    return KIND_RANK.get(doc.get("kind"), 0)


class Spool:
    """Append-only files of batches the database would not take.

    Each line is one ``{"posts": [...], "rejects": [...]}`` batch in MongoDB
    extended JSON; writes are upserts, so replaying twice changes nothing.
    """

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def append(self, posts: list[dict], rejects: list[dict]) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"spool-{os.getpid()}.jsonl"
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json_util.dumps({"posts": posts, "rejects": rejects}, ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        return path

    def replay(self, store: PostStore) -> Counter:
        """Write every spooled batch, deleting each file once it is stored.

        A file is renamed while it is replayed, so two processes never replay
        the same one; if the database fails again it gets its name back, and
        a file left half-replayed by a process that died is taken over.
        """
        counts: Counter = Counter()
        for path in self._claimable():
            claimed = self.folder / f"{path.name.split('.')[0]}.replaying-{os.getpid()}"
            try:
                path.rename(claimed)
            except FileNotFoundError:
                continue  # another process took it
            try:
                with open(claimed, encoding="utf-8") as handle:
                    for line in handle:
                        if line.strip():
                            batch = json_util.loads(line)
                            counts.update(store.write_posts(batch.get("posts", [])))
                            counts["rejects"] += store.write_rejects(batch.get("rejects", []))
            except BaseException:
                claimed.rename(self.folder / f"{claimed.name.split('.')[0]}.jsonl")
                raise
            claimed.unlink()
        return counts

    def _claimable(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        paths = sorted(self.folder.glob("spool-*.jsonl"))
        for path in sorted(self.folder.glob("spool-*.replaying-*")):
            pid = path.name.rsplit("-", 1)[-1]
            if pid.isdigit() and not alive(int(pid)):
                paths.append(path)
        return paths


class MongoPipeline:
    """Buffer items and write them to MongoDB in bulk from a writer thread.

    Database round-trips would otherwise block the reactor, and no page is
    downloaded while a batch is written. One writer thread keeps batches in
    order; at most ``MONGO_MAX_PENDING_BATCHES`` wait for it before the
    pipeline waits too (backpressure). Counts come back to the reactor thread,
    which alone touches the stats.
    """

    def __init__(self, database, batch_size: int, data_dir: Path, retry_attempts: int,
                 retry_max_wait: float, max_pending: int = 4, near_duplicates: bool = True,
                 outage_cooldown: float = 30.0, stats=None):
        self.database = database
        self.batch_size = max(1, batch_size)
        self.max_pending = max(1, max_pending)
        self.spool = Spool(Path(data_dir) / "spool")
        self.retry_attempts = retry_attempts
        self.retry_max_wait = retry_max_wait
        self.near_duplicates = near_duplicates
        self.outage_cooldown = outage_cooldown
        self.down_until = 0.0  # while the database is down, batches go straight to the spool
        self.stats = stats
        self.store: PostStore | None = None
        self.posts: list[dict] = []
        self.rejects: list[dict] = []
        self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="finews-writer")
        self.pending: deque[Future] = deque()

    @classmethod
    def from_crawler(cls, crawler):
        s = crawler.settings
        return cls(
            database=CrawlDatabase.of(crawler),
            batch_size=s.getint("MONGO_BATCH_SIZE", 100),
            data_dir=Path(s.get("FINEWS_DATA_DIR", "var")),
            retry_attempts=s.getint("MONGO_RETRY_ATTEMPTS", 5),
            retry_max_wait=s.getfloat("MONGO_RETRY_MAX_WAIT", 8.0),
            max_pending=s.getint("MONGO_MAX_PENDING_BATCHES", 4),
            near_duplicates=s.getbool("FINEWS_NEAR_DUPLICATES", True),
            outage_cooldown=s.getfloat("MONGO_OUTAGE_COOLDOWN", 30.0),
            stats=crawler.stats,
        )

    def open_spider(self, spider=None):
        self.store = PostStore(self.database.db, self.retry_attempts, self.retry_max_wait,
                               near_duplicates=self.near_duplicates)
        self._replay("start")

    def close_spider(self, spider=None):
        self.flush()
        while self.pending:
            self._collect(self.pending.popleft().result())
        self.writer.shutdown()
        if self.stats and self.stats.get_value("finews/db/spooled"):
            self._replay("end")  # the database may be back already

    def _replay(self, when: str) -> None:
        try:
            replayed = self.spool.replay(self.store)
        except PyMongoError as error:
            logger.error("Spooled writes not replayed at %s (%s); they stay in %s", when, error, self.spool.folder)
            return
        if replayed:
            logger.info("Replayed spooled writes at %s: %s", when, dict(replayed))
            self._inc("finews/db/replayed", sum(replayed.values()))

    def process_item(self, item, spider=None):
        adapter = ItemAdapter(item)
        if adapter.get("reject_reason"):
            self.rejects.append(_reject_doc(adapter))
            reason = adapter["reject_reason"]
            logger.warning("Rejected %s: %s", adapter.get("url"), adapter.get("reject_detail") or reason)
            self._inc(f"finews/rejected/{reason}")
            self._inc("finews/rejected")
        else:
            self.posts.append(_post_doc(adapter))
        if len(self.posts) + len(self.rejects) >= self.batch_size:
            self.flush()
        return item

    def flush(self) -> None:
        """Hand the buffered batch to the writer thread."""
        posts, rejects, self.posts, self.rejects = self.posts, self.rejects, [], []
        if posts or rejects:
            self.pending.append(self.writer.submit(self._write, posts, rejects))
        while self.pending and (self.pending[0].done() or len(self.pending) > self.max_pending):
            self._collect(self.pending.popleft().result())

    def _write(self, posts: list[dict], rejects: list[dict]) -> Counter:
        """Runs in the writer thread; returns what to count."""
        started, retries_before = time.perf_counter(), self.store.retries
        try:
            if time.monotonic() < self.down_until:
                raise ConnectionFailure("database marked down after a failed write")
            counts = self.store.write_posts(posts)
            self.store.write_rejects(rejects)
        except PyMongoError as exc:
            self.down_until = time.monotonic() + self.outage_cooldown
            path = self.spool.append(posts, rejects)
            logger.error("Database unavailable (%s): %d posts and %d rejects spooled to %s for replay",
                         exc, len(posts), len(rejects), path)
            result = Counter({"db/spooled": len(posts) + len(rejects)})
        except Exception:  # a bug must not lose the batch either
            path = self.spool.append(posts, rejects)
            logger.exception("Writing a batch failed; %d posts and %d rejects spooled to %s",
                             len(posts), len(rejects), path)
            result = Counter({"db/spooled": len(posts) + len(rejects), "db/write_errors": 1})
        else:
            result = Counter({f"posts/{key}": value for key, value in counts.items()})
            result["db/write_seconds"] = time.perf_counter() - started
        result["db/retries"] += self.store.retries - retries_before
        return +result

    def _collect(self, counts: Counter) -> None:
        for key, value in counts.items():
            self._inc(f"finews/{key}", value)

    def _inc(self, key: str, count: float = 1) -> None:
        if self.stats:
            self.stats.inc_value(key, count)


_POST_FIELDS = (
    "info_code", "kind", "title", "published_at", "media", "category", "tags", "body_html",
    "body_text", "url", "source_url", "images", "content_hash",
)


@with_source_fields  # time source, source name, text answer; a feed's listing
def _post_doc(adapter: ItemAdapter) -> dict:
    doc = {field: adapter.get(field) for field in _POST_FIELDS}
    if adapter.get("raw_article"):
        doc[RAW_FIELD] = adapter["raw_article"]
    return doc


def _reject_doc(adapter: ItemAdapter) -> dict:
    return {
        "url": adapter.get("url") or "",
        "reason": adapter.get("reject_reason"),
        "detail": adapter.get("reject_detail") or adapter.get("reject_reason"),
        "spider": adapter.get("spider"),
        "title": adapter.get("title") or adapter.get("listing_title") or "",
        "raw_code": adapter.get("raw_code") or "",
    }
