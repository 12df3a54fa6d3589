"""Item pipeline: buffer items and write them in batches through the store
(``finews.storage.store``) from a writer thread, spooling what the database
will not take."""

from __future__ import annotations

import logging
import time
from collections import Counter, deque
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from bson.errors import BSONError
from itemadapter import ItemAdapter
from pymongo.errors import ConnectionFailure, PyMongoError

from crawler.database import CrawlDatabase, DatabaseRefused
from finews.core.environment import data_paths
from finews.core.model import written
from finews.core.reasons import Reason
from finews.core.retry import DATABASE
from finews.storage.signing import SigningProcess
from finews.storage.sources import add_source_fields, listing_doc
from finews.storage.store import (
    MAX_DOCUMENT_BYTES,
    RAW_FIELD,
    STORED_OUTCOMES,
    WRITTEN_OUTCOMES,
    PostStore,
    Spool,
    brief_error,
    document_size,
    oversize_detail,
)

logger = logging.getLogger(__name__)


class MongoPipeline:
    """Buffer items and write them to MongoDB in bulk from a writer thread.

    Database round-trips would otherwise block the reactor, and no page is
    downloaded while a batch is written. One writer thread keeps batches in
    order; at most ``MONGO_MAX_PENDING_BATCHES`` wait for it before the
    pipeline waits too (backpressure), except while the database is marked
    down, when batches go to the spool and nothing waits for it. Counts come
    back to the reactor thread, which alone touches the stats.
    """

    def __init__(self, database, batch_size: int, spool_dir: Path, retry_attempts: int = DATABASE.attempts,
                 retry_max_wait: float = DATABASE.max_wait, max_pending: int = 4, near_duplicates: bool = True,
                 max_document_bytes: int = MAX_DOCUMENT_BYTES, signing_process: bool = True, stats=None):
        self.database = database
        self.batch_size = max(1, batch_size)
        self.max_pending = max(1, max_pending)
        self.spool = Spool(Path(spool_dir))
        self.retry_attempts = retry_attempts
        self.retry_max_wait = retry_max_wait
        self.near_duplicates = near_duplicates
        self.max_document_bytes = max_document_bytes
        self.stats = stats
        self.store: PostStore | None = None
        self.posts: list[dict] = []
        self.rejects: list[dict] = []
        self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="finews-writer")
        # Signing takes CPU (and the GIL) from the reactor; a child process does it.
        self.signer = SigningProcess() if near_duplicates and signing_process else None
        self.pending: deque[Future] = deque()

    @classmethod
    def from_crawler(cls, crawler):
        s = crawler.settings
        return cls(
            database=CrawlDatabase.of(crawler),
            batch_size=s.getint("MONGO_BATCH_SIZE", 100),
            spool_dir=data_paths(s).spool,
            retry_attempts=s.getint("MONGO_RETRY_ATTEMPTS", DATABASE.attempts),
            retry_max_wait=s.getfloat("MONGO_RETRY_MAX_WAIT", DATABASE.max_wait),
            max_pending=s.getint("MONGO_MAX_PENDING_BATCHES", 4),
            near_duplicates=s.getbool("FINEWS_NEAR_DUPLICATES", True),
            max_document_bytes=s.getint("MONGO_MAX_DOCUMENT_BYTES", MAX_DOCUMENT_BYTES),
            signing_process=s.getbool("FINEWS_SIGNING_PROCESS", True),
            stats=crawler.stats,
        )

    def open_spider(self, spider=None):
        try:
            db = self.database.db
        except DatabaseRefused:
            return  # RunRecord stops the crawl; nothing is written or spooled
        if self.signer:
            self.signer.start()
        self.store = PostStore(db, self.retry_attempts, self.retry_max_wait, near_duplicates=self.near_duplicates,
                               max_document_bytes=self.max_document_bytes, sign=self.signer)
        self._replay("start")

    def close_spider(self, spider=None):
        self.flush()
        while self.pending:
            self._collect(self.pending.popleft().result())
        self.writer.shutdown()
        if self.stats and self.stats.get_value("finews/db/spooled"):
            self._replay("end")  # the database may be back already
        if self.signer:
            self.signer.close()
            if self.signer.peak_rss_kib and self.stats:
                self.stats.set_value("finews/signing_peak_rss_kib", self.signer.peak_rss_kib)
            if self.signer.fallback:
                self._inc("finews/signing_fallback", 1)

    def _replay(self, when: str) -> None:
        if self.store is None or not self.database.usable():
            if self.store is not None and any(self.spool.folder.glob("spool-*")):
                logger.error("Spooled writes not replayed at %s (database down); they stay in %s",
                             when, self.spool.folder)
            return
        self.store.single_attempt = self.database.down  # a probe
        retries_before = self.store.retries
        try:
            replayed = self.spool.replay(self.store)
        except (PyMongoError, OSError) as error:  # OSError: a full disk while putting lines back
            if isinstance(error, PyMongoError):
                self.database.failed(error, exhausted=True)
            logger.error("Spooled writes not replayed at %s (%s); they stay in %s", when, brief_error(error),
                         self.spool.folder)
            return
        finally:
            self.store.single_attempt = False
            self._inc("finews/db/retries", self.store.retries - retries_before)
        self.database.succeeded()
        if replayed:
            logger.info("Replayed spooled writes at %s: %s", when, dict(replayed))
            self._inc("finews/db/replayed", sum(replayed[k] for k in (*WRITTEN_OUTCOMES, "rejects")))
            self._inc("finews/db/replayed_stored", sum(replayed[k] for k in STORED_OUTCOMES))
            for key in ("quarantined", "repaired", "runs"):
                if replayed[key]:
                    self._inc(f"finews/db/replay_{key}", replayed[key])
            for key, value in replayed.items():
                if key.startswith("rejected/"):
                    self._inc(f"finews/{key}", value)
                    self._inc("finews/rejected", value)

    def process_item(self, item, spider=None):
        adapter = ItemAdapter(item)
        if not adapter.get("reject_reason"):
            try:
                doc = _post_doc(adapter)
                size = document_size(doc)
            except Exception as error:  # this item's problem: a reject, not a lost batch
                adapter["reject_reason"] = Reason.ITEM_ERROR
                adapter["reject_detail"] = f"mongo: {brief_error(error)}"
            else:
                if size <= self.max_document_bytes:
                    self.posts.append(doc)
                else:
                    adapter["reject_reason"] = Reason.TOO_LARGE
                    adapter["reject_detail"] = oversize_detail(doc, size, self.max_document_bytes)
        if adapter.get("reject_reason"):
            self.rejects.append(_reject_doc(adapter))
            reason = adapter["reject_reason"]
            logger.warning("Rejected %s: %s", adapter.get("url"), adapter.get("reject_detail") or reason)
            self._inc(f"finews/rejected/{reason}")
            self._inc("finews/rejected")
        if len(self.posts) + len(self.rejects) >= self.batch_size:
            self.flush()
        return item

    def flush(self) -> None:
        """Hand the buffered batch to the writer thread."""
        posts, rejects, self.posts, self.rejects = self.posts, self.rejects, [], []
        if posts or rejects:
            self.pending.append(self.writer.submit(self._write, posts, rejects))
        while self.pending and (self.pending[0].done()
                                or (len(self.pending) > self.max_pending and not self.database.down)):
            self._collect(self.pending.popleft().result())

    def _write(self, posts: list[dict], rejects: list[dict]) -> dict[str, float]:
        """Runs in the writer thread; returns what to count."""
        started, retries_before = time.perf_counter(), self.store.retries if self.store else 0
        if self.store is None or self.database.refused:
            # Refused credentials are no outage: nothing to spool, the run fails.
            return {"db/not_written": len(posts) + len(rejects)}
        seconds = 0.0  # the write's time: not a count, kept out of the Counter
        try:
            if not self.database.usable():
                raise ConnectionFailure("database marked down after a failed call")
            self.store.single_attempt = self.database.down  # a probe: one try
            counts, refused = self.store.write_batch(posts, rejects)
        except (PyMongoError, BSONError) as exc:
            self.database.failed(exc, exhausted=True)
            if self.database.refused:
                return {"db/not_written": len(posts) + len(rejects)}
            result = self._spool(posts, rejects, f"Database unavailable ({brief_error(exc)})")
        except Exception as exc:  # a bug must not lose the batch either
            logger.exception("Writing a batch failed")
            result = self._spool(posts, rejects, f"Writing a batch failed ({brief_error(exc)})")
            result["db/write_errors"] += 1
        else:
            self.database.succeeded()
            result = Counter({f"posts/{key}": value for key, value in counts.items()})
            for reject in refused:
                result[f"rejected/{reject['reason']}"] += 1
                result["rejected"] += 1
            seconds = time.perf_counter() - started
        finally:
            self.store.single_attempt = False
        result["db/retries"] += self.store.retries - retries_before
        collected: dict[str, float] = dict(+result)  # drop zero counts
        if seconds > 0:
            collected["db/write_seconds"] = seconds
        return collected

    def _spool(self, posts: list[dict], rejects: list[dict], why: str) -> Counter:
        """Keep a batch the database did not take in the spool; a spool write
        that fails (a full disk) is said and counted as lost: the run fails."""
        items = len(posts) + len(rejects)
        try:
            path = self.spool.append(posts, rejects)
        except Exception as error:  # OSError mostly; whatever it is, the batch is lost
            logger.error("%s: %d posts and %d rejects LOST, the spool could not be written (%s) in %s",
                         why, len(posts), len(rejects), brief_error(error), self.spool.folder)
            return Counter({"db/lost": items, "db/spool_failed": 1})
        logger.error("%s: %d posts and %d rejects spooled to %s for replay", why, len(posts), len(rejects), path)
        return Counter({"db/spooled": items})

    def _collect(self, counts: Mapping[str, float]) -> None:
        for key, value in counts.items():
            self._inc(f"finews/{key}", value)

    def _inc(self, key: str, count: float = 1) -> None:
        if self.stats:
            self.stats.inc_value(key, count)


def _post_doc(adapter: ItemAdapter) -> dict:
    """The document the store takes: a feed's listing, or a post with what
    travels with it (its kept source, time source, the source that saw it)."""
    if adapter.get("feed_listing") is not None:
        return listing_doc(adapter)
    doc = written(adapter)  # the post model's crawled fields
    if adapter.get("raw_article"):
        doc[RAW_FIELD] = adapter["raw_article"]
    return add_source_fields(doc, adapter)


def _reject_doc(adapter: ItemAdapter) -> dict:
    return {
        "url": adapter.get("url") or "",
        "reason": adapter.get("reject_reason"),
        "detail": adapter.get("reject_detail") or adapter.get("reject_reason"),
        "spider": adapter.get("spider"),
        "title": adapter.get("title") or adapter.get("listing_title") or "",
        "raw_code": adapter.get("raw_code") or "",
    }
