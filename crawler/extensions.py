"""Run records and the job lease: every run leaves a ``crawl_runs`` document,
and two runs of the same job never overlap, unless they are workers sharing
one run through Redis (``crawler/scheduler.py``), which is what they are for.

With the database down the run goes on without a lease, and its record is
spooled with its batches and written at the next replay."""

from __future__ import annotations

import json
import logging
import os
import socket
import uuid
from collections import Counter

from itemadapter import ItemAdapter
from pymongo.errors import PyMongoError
from scrapy import signals
from scrapy.utils.defer import deferred_from_coro
from twisted.internet.task import LoopingCall

from crawler.database import CrawlDatabase, DatabaseRefused
from finews.core.environment import data_paths
from finews.core.reasons import FETCH_FAILURES, by_kind  # what leaves a run partial
from finews.core.retry import LEASE
from finews.storage.db import CRAWL_RUNS
from finews.storage.lease import Lease
from finews.storage.store import Spool, utcnow

logger = logging.getLogger(__name__)

MAX_LISTED_FAILURES = 1000


class RunRecord:
    def __init__(self, crawler):
        self.crawler = crawler
        self.database = CrawlDatabase.of(crawler)
        self.ttl = crawler.settings.getfloat("FINEWS_LOCK_TTL", LEASE.ttl)
        self.run_id = uuid.uuid4().hex
        self.lease: Lease | None = None
        self.renewal: LoopingCall | None = None
        self.failures: Counter = Counter()
        self.failed_pages: list[dict] = []
        self.locked = False
        self.pages_read = 0  # responses that were pages, not errors (robots.txt aside)
        self.record: dict = {}
        self.spool = Spool(data_paths(crawler.settings).spool)

    @classmethod
    def from_crawler(cls, crawler):
        extension = cls(crawler)
        crawler.signals.connect(extension.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(extension.spider_closed, signal=signals.spider_closed)
        crawler.signals.connect(extension.item_scraped, signal=signals.item_scraped)
        crawler.signals.connect(extension.response_received, signal=signals.response_received)
        return extension

    @property
    def job(self) -> str:
        spider = self.crawler.spider
        return self.crawler.settings.get("FINEWS_JOB_KEY") or f"{spider.name}-{getattr(spider, 'site', '')}"

    def _close(self, reason: str) -> None:
        """Stop the crawl with ``reason`` (from a signal handler, without waiting)."""
        deferred_from_coro(self.crawler.engine.close_spider_async(reason=reason))

    def spider_opened(self, spider):
        arguments = json.loads(self.crawler.settings.get("FINEWS_JOB_ARGS") or "{}")
        self.crawler.stats.set_value("finews/run_id", self.run_id)
        self.record = {
            "_id": self.run_id, "job": self.job, "spider": spider.name, "arguments": arguments,
            "started_at": utcnow(), "outcome": "running", "host": socket.gethostname(), "pid": os.getpid(),
        }
        shared_run = self.crawler.stats.get_value("finews/shared_run")
        if shared_run:
            self.record.update(shared_run=shared_run, worker=self.crawler.stats.get_value("finews/worker"))
        try:
            db = self.database.db
        except DatabaseRefused:
            self._close("database_refused")
            return
        if not self.database.usable():
            logger.error("No run record or lease yet (database unavailable); running anyway")
            return
        try:
            db[CRAWL_RUNS].insert_one(self.record)
            if shared_run:
                self.database.succeeded()
                return  # workers of a shared run are many at once by design
            self.lease = Lease(db, self.job, self.run_id, self.ttl)
            took_over = self.lease.acquire()
        except PyMongoError as error:
            self.database.failed(error)
            self.lease = None
            if self.database.refused:
                self._close("database_refused")
                return
            logger.error("No run record or lease (database unavailable: %s); running anyway", error)
            return
        self.database.succeeded()
        if took_over is None:
            holder = self.lease.holder() or {}
            logger.error("Job %s is already running (run %s on %s, pid %s, lease until %s); not starting",
                         self.job, holder.get("owner"), holder.get("host"), holder.get("pid"), holder.get("expires_at"))
            self.locked = spider.locked = True
            self.lease = None
            self._close("locked")
            return
        if took_over:
            logger.warning("Took over the lease of run %s, which stopped without releasing it", took_over.get("owner"))
            db[CRAWL_RUNS].update_one({"_id": took_over.get("owner"), "outcome": "running"},
                                      {"$set": {"outcome": "abandoned", "ended_at": utcnow()}})
        self.renewal = LoopingCall(self._renew)
        self.renewal.start(LEASE.renew_every(self.ttl), now=False)

    def _renew(self):
        """Keep the lease; a run that finds it lost (it expired and another run
        took it) stops fetching at once and closes as ``locked``."""
        lease, renewal = self.lease, self.renewal
        if lease is None or renewal is None or not self.database.usable():
            return
        try:
            renewed = lease.renew()
        except PyMongoError as error:
            self.database.failed(error)
            logger.warning("Could not renew the lease of job %s: %s", self.job, error)
            return
        self.database.succeeded()
        if renewed:
            return
        holder = lease.holder() or {}
        logger.error("Lost the lease of job %s to run %s on %s; stopping", self.job, holder.get("owner"),
                     holder.get("host"))
        self.locked = self.crawler.spider.locked = True
        self.lease = None
        renewal.stop()
        self._close("lease_lost")

    def response_received(self, response, request=None, spider=None):
        if response.status < 400 and not response.url.endswith("/robots.txt"):
            self.pages_read += 1

    def item_scraped(self, item, response=None, spider=None):
        adapter = ItemAdapter(item)
        reason = adapter.get("reject_reason")
        if reason:
            self.failures[reason] += 1
            if len(self.failed_pages) < MAX_LISTED_FAILURES:
                self.failed_pages.append({"url": adapter.get("url"), "reason": reason})

    def spider_closed(self, spider, reason):
        if self.renewal and self.renewal.running:
            self.renewal.stop()
        lost = self.lost_requests(self.crawler.stats.get_stats()) if reason == "finished" else 0
        if lost:
            logger.error("%d queued requests were never fetched (lost from the queue); the run is partial", lost)
            self.crawler.stats.set_value("finews/requests_lost", lost)
        stats = self.crawler.stats.get_stats()
        outcome = self.outcome(reason, stats)
        self.crawler.stats.set_value("finews/outcome", outcome)
        closing = {
            "ended_at": utcnow(), "outcome": outcome, "finish_reason": reason,
            "pages_attempted": stats.get("downloader/request_count", 0),
            "stored": sum(stats.get(f"finews/{key}", 0)
                          for key in ("posts/inserted", "posts/updated", "db/replayed_stored")),
            "failures_by_reason": dict(self.failures), "failures_by_kind": by_kind(self.failures),
            "failed_pages": self.failed_pages,
            "stats": {key.replace(".", "_"): value for key, value in stats.items()},
        }
        if self.database.refused:
            return  # nothing may be written; the one error line has been logged
        if not self.database.usable():
            self._spool_record(closing, "database unavailable")
            return
        try:
            db = self.database.db
            db[CRAWL_RUNS].update_one({"_id": self.run_id}, {"$set": closing, "$setOnInsert": {
                k: v for k, v in self.record.items() if k not in closing and k != "_id"}}, upsert=True)
            if self.lease:
                self.lease.release()
        except PyMongoError as error:
            self.database.failed(error)
            if not self.database.refused:
                self._spool_record(closing, error)
        else:
            self.database.succeeded()

    def _spool_record(self, closing: dict, why) -> None:
        try:
            path = self.spool.append_run({**self.record, **closing})
        except OSError as error:  # a full disk: the record is lost, and the run cannot be called a success
            logger.error("Run record %s LOST (%s), the spool could not be written (%s)", self.run_id, why, error)
            self.crawler.stats.set_value("finews/outcome", "failed")
            return
        logger.error("Run record %s spooled to %s (%s); written at the next replay", self.run_id, path, why)

    def outcome(self, reason: str, stats: dict) -> str:
        if self.locked:
            return "locked"
        if reason == "shutdown":
            return "interrupted"  # stopped by a signal; the job's JOBDIR resumes it
        if reason != "finished" or stats.get("log_count/CRITICAL"):
            return "failed"
        if stats.get("finews/db/lost"):
            return "failed"  # batches neither written nor spooled (a full disk)
        fetch_failures = sum(n for r, n in self.failures.items() if r.startswith(FETCH_FAILURES))
        if fetch_failures and not self.pages_read:
            return "failed"  # every request failed: nothing was fetched at all
        if (fetch_failures or stats.get("finews/db/spooled") or stats.get("spider_exceptions/count")
                or stats.get("finews/requests_lost")):
            return "partial"
        return "clean"

    def lost_requests(self, stats: dict) -> int:
        """Requests this run queued and never took back out: a queue that lost
        them (its files moved or damaged under it). In a shared crawl workers
        take each other's requests, so there the counts say nothing."""
        if self.crawler.settings.get("FINEWS_REDIS_URL") or self.locked:
            return 0
        return max(0, stats.get("scheduler/enqueued", 0) - stats.get("scheduler/dequeued", 0))
