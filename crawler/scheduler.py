"""Where a job's requests wait: in its JOBDIR (``JobScheduler``), or, shared
by several crawler processes, in Redis (``SharedScheduler``).

``JobScheduler`` is Scrapy's scheduler with a disk queue that cannot be
written or read (a full disk) ending the crawl as ``failed`` (close reason
``disk_queue_failed``), where Scrapy's own raises from its engine loop every
5 seconds and the crawl never ends.

One crawl shared by several crawler processes, through Redis:

With ``FINEWS_REDIS_URL`` set, every process running the same job (same
spider and arguments), on any machine, takes its requests from one
scrapy-redis queue and filters them through one Redis set of seen requests,
so each page is fetched by one process. What scrapy-redis leaves to its user
is decided here:

* A run starts from nothing. The first worker of a run empties the queue and
  seen-set a previous run left, because listings must be read again on every
  run; ``SkipKnownPostsMiddleware`` decides which posts are fetched.
* A worker with nothing to do stays open while another worker is busy, since
  that one may still queue requests. The run ends when the queue is empty and
  every worker is idle.
* A worker that dies without closing stops counting once its heartbeat key
  expires, or at once when its process is gone from this host.

A worker marks itself busy before it pops a request, and every step that
reads other workers' states is one Lua script, atomic on the Redis server:
so "queue empty and nobody busy" really means no work is left.
"""

from __future__ import annotations

import inspect
import logging
import os
import socket
import uuid

import redis
from scrapy import signals, squeues
from scrapy.core.scheduler import Scheduler as ScrapyScheduler
from scrapy.exceptions import CloseSpider, DontCloseSpider
from scrapy.utils.defer import deferred_from_coro
from scrapy_redis.dupefilter import RFPDupeFilter
from scrapy_redis.queue import PriorityQueue
from scrapy_redis.scheduler import Scheduler
from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall

from finews.storage.db import redact_uri
from finews.storage.process import alive

logger = logging.getLogger(__name__)

BUSY, IDLE = "busy", "idle"
REDIS_UNAVAILABLE = "redis_unavailable"
DISK_QUEUE_FAILED = "disk_queue_failed"


class _Callbacks:
    """A spider as ``Request.to_dict`` sees it when it names a request's
    callback and errback: its class's methods only. Scrapy finds the name
    with ``inspect.getmembers(spider)``, which reads every attribute of the
    spider (properties included) for each request written to the JOBDIR
    queue: 2.4 s of a 1,000-post crawl's profile (issue 23)."""

    def __init__(self, spider):
        self._spider = spider
        kind = type(spider)
        self._names = sorted(name for name in dir(kind)
                             if not name.startswith("__") and inspect.isfunction(getattr(kind, name, None)))

    def __dir__(self):
        return self._names

    def __getattr__(self, name):
        return getattr(self._spider, name)


# Scrapy builds its queue classes with factory functions, which mypy cannot read as types.
class PickleLifoDiskQueue(squeues.PickleLifoDiskQueue):  # type: ignore[valid-type,misc]
    """Scrapy's default disk queue, naming callbacks from the spider's
    methods alone (``_Callbacks``); what it writes is the same."""

    def __init__(self, crawler, key: str):
        super().__init__(crawler, key)
        self.callbacks = _Callbacks(self.spider)

    def push(self, request) -> None:
        try:
            data = request.to_dict(spider=self.callbacks)
        except ValueError:  # not a method of the spider's class: as Scrapy does it
            data = request.to_dict(spider=self.spider)
        super(squeues.PickleLifoDiskQueue, self).push(data)  # type: ignore[misc]  # skip its serializing push


class JobScheduler(ScrapyScheduler):
    """Scrapy's scheduler; the first disk queue error stops the crawl.

    The request that could not be written waits in memory, the queue on
    disk is no longer touched, and the spider closes with reason
    ``disk_queue_failed`` (the run's outcome: ``failed``, exit 1). The next
    run re-reads the listings; stored posts are skipped as usual."""

    disk_error: OSError | None = None

    def open(self, spider):
        try:
            return super().open(spider)
        except OSError as error:  # the saved queue cannot even be opened
            self.dqs = None
            self._disk_failed("open", error)
            return self.df.open()

    def _dqpush(self, request) -> bool:
        if self.disk_error is not None or self._not_ours():
            return False
        try:
            return super()._dqpush(request)
        except OSError as error:
            self._disk_failed("write a request to", error)
            return False

    def _dqpop(self):
        if self.disk_error is not None:
            return None
        try:
            return super()._dqpop()
        except OSError as error:
            self._disk_failed("read a request from", error)
            return None

    def close(self, reason: str):
        if self.disk_error is not None or self._not_ours():
            return self.df.close(reason)  # the disk queue is left as it is
        try:
            return super().close(reason)
        except OSError as error:
            logger.error("Could not save the job's request queue in %s (%s); the next run starts afresh",
                         self.dqdir, error)
            assert self.crawler is not None  # made by from_crawler
            self.crawler.stats.inc_value("finews/disk/queue_failed")
            return self.df.close(reason)

    def _not_ours(self) -> bool:
        """Whether another run of the job holds its lease (this one found it
        locked, or lost it): the JOBDIR queue is that run's, not to be
        written or closed (closing an empty queue deletes its files)."""
        return bool(getattr(getattr(self, "spider", None), "locked", False))

    def _disk_failed(self, what: str, error: OSError) -> None:
        if self.disk_error is not None:
            return
        self.disk_error = error
        logger.error("Could not %s the job's request queue in %s (%s); the crawl stops as failed",
                     what, self.dqdir, error)
        crawler = self.crawler
        assert crawler is not None  # made by from_crawler
        crawler.stats.inc_value("finews/disk/queue_failed")
        from twisted.internet import reactor

        def close_spider() -> Deferred[None]:
            assert crawler.engine is not None  # the crawl is running
            return deferred_from_coro(crawler.engine.close_spider_async(reason=DISK_QUEUE_FAILED))

        # zope interfaces declare methods without self, so mypy reads IReactorTime.callLater's delay as self
        reactor.callLater(0, close_spider)  # type: ignore[arg-type]

# KEYS: workers, queue, seen, run.  ARGV: worker id, worker key prefix, state, ttl, new run id.
# Registers the worker; when no other worker is alive, this starts a new run.
_JOIN = """
local live = 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', ARGV[2] .. id) == 1 then live = live + 1 else redis.call('SREM', KEYS[1], id) end
end
if live == 0 then
  redis.call('DEL', KEYS[2], KEYS[3])
  redis.call('SET', KEYS[4], ARGV[5])
end
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('SET', ARGV[2] .. ARGV[1], ARGV[3], 'EX', ARGV[4])
return {live, redis.call('GET', KEYS[4])}
"""

# KEYS: workers, queue.  ARGV: worker id, worker key prefix, state, ttl.
# Marks the worker idle; returns what keeps the run going: {queued requests, busy workers}.
_IDLE = """
redis.call('SET', ARGV[2] .. ARGV[1], ARGV[3], 'EX', ARGV[4])
local busy = 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local state = redis.call('GET', ARGV[2] .. id)
  if not state then redis.call('SREM', KEYS[1], id)
  elseif id ~= ARGV[1] and string.sub(state, 1, 4) == 'busy' then busy = busy + 1 end
end
return {redis.call('ZCARD', KEYS[2]), busy}
"""

# KEYS: workers, queue, seen, run.  ARGV: worker id, worker key prefix.
# Unregisters the worker; the last one out deletes the run's keys.
_LEAVE = """
redis.call('SREM', KEYS[1], ARGV[1])
redis.call('DEL', ARGV[2] .. ARGV[1])
local live = 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', ARGV[2] .. id) == 1 then live = live + 1 else redis.call('SREM', KEYS[1], id) end
end
if live == 0 then redis.call('DEL', KEYS[2], KEYS[3], KEYS[4]) end
return live
"""


def redis_keys(job: str) -> dict[str, str]:
    """The Redis keys of one job. The ``{job}`` hash tag keeps them in one
    Redis Cluster slot, which the Lua scripts need."""
    prefix = f"finews:{{{job}}}"
    return {"queue": f"{prefix}:requests", "seen": f"{prefix}:seen", "workers": f"{prefix}:workers",
            "worker": f"{prefix}:worker:", "run": f"{prefix}:run"}


class SharedScheduler(Scheduler):
    """scrapy-redis's scheduler, with runs, worker states and a clean end."""

    def __init__(self, server: redis.Redis, crawler, job: str, worker_ttl: float, url: str = "",
                 poll: float = 1.0):
        self.keys = redis_keys(job)
        super().__init__(server, persist=True, queue_key=self.keys["queue"],
                         queue_cls="scrapy_redis.queue.PriorityQueue",
                         dupefilter=RFPDupeFilter(server, self.keys["seen"],
                                                  debug=crawler.settings.getbool("DUPEFILTER_DEBUG")))
        self.crawler = crawler
        self.stats = crawler.stats
        self.job = job
        self.url = redact_uri(url)
        self.ttl = max(3, int(worker_ttl))
        self.poll = poll
        self.host, self.pid = socket.gethostname(), os.getpid()
        self.worker_id = f"{self.host}:{self.pid}:{uuid.uuid4().hex[:8]}"
        self.run_id: str | None = None
        self.state = BUSY
        self.waiting = False
        self.failure: str | None = None
        self.heartbeat = LoopingCall(self._beat)
        self._join, self._idle, self._leave = (server.register_script(s) for s in (_JOIN, _IDLE, _LEAVE))

    @classmethod
    def from_crawler(cls, crawler):
        settings = crawler.settings
        url = settings.get("FINEWS_REDIS_URL")
        server = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=10, retry_on_timeout=True)
        job = settings.get("FINEWS_JOB_KEY") or crawler.spidercls.name
        scheduler = cls(server, crawler, job, settings.getfloat("FINEWS_REDIS_WORKER_TTL", 60), url,
                        settings.getfloat("FINEWS_REDIS_POLL", 1.0))
        crawler.signals.connect(scheduler.spider_idle, signal=signals.spider_idle)
        return scheduler

    def open(self, spider) -> None:
        self.spider = spider
        self.queue = PriorityQueue(server=self.server, spider=spider, key=self.queue_key)
        try:
            self._forget_dead_local_workers()
            others, run_id = self._join(keys=self._keys("workers", "queue", "seen", "run"),
                                        args=[self.worker_id, self.keys["worker"], self._state_value(BUSY),
                                              self.ttl, uuid.uuid4().hex])
        except redis.RedisError as error:
            self._fail(error)  # the spider closes at its first idle moment, as failed
            return
        self.run_id = run_id.decode() if isinstance(run_id, bytes) else str(run_id)
        self.stats.set_value("finews/shared_run", self.run_id)
        self.stats.set_value("finews/worker", self.worker_id)
        if others:
            logger.info("Worker %s joined shared run %s of job %s (%d other workers)",
                        self.worker_id, self.run_id, self.job, others)
        else:
            logger.info("Worker %s started shared run %s of job %s on Redis %s",
                        self.worker_id, self.run_id, self.job, self.url)
        self.heartbeat.start(self.ttl / 4, now=False)
        # Scrapy looks at an idle spider's scheduler again only every 5 s; a
        # worker waiting for its peers' requests should take them sooner.
        engine = self.crawler.engine
        if engine is not None and hasattr(engine, "_SLOT_HEARTBEAT_INTERVAL"):
            engine._SLOT_HEARTBEAT_INTERVAL = self.poll

    def close(self, reason: str) -> None:
        if self.heartbeat.running:
            self.heartbeat.stop()
        if self.run_id is None:
            return  # never joined
        try:
            others = self._leave(keys=self._keys("workers", "queue", "seen", "run"),
                                 args=[self.worker_id, self.keys["worker"]])
        except redis.RedisError as error:
            logger.warning("Could not leave shared run %s cleanly (%s); its worker key expires in %d s",
                           self.run_id, error, self.ttl)
            return
        logger.info("Worker %s left shared run %s (%s); %d workers still in it",
                    self.worker_id, self.run_id, reason, others)

    def enqueue_request(self, request) -> bool:
        if self.failure:
            return self._lost(request)
        try:
            return super().enqueue_request(request)
        except redis.RedisError as error:
            self._fail(error)
            return self._lost(request)

    def next_request(self):
        if self.failure:
            return None
        try:
            if self.state == IDLE:
                if not len(self.queue):
                    return None
                self._set_state(BUSY)  # before the pop: an idle peer must not see "empty and nobody busy"
            return super().next_request()
        except redis.RedisError as error:
            self._fail(error)
            return None

    def has_pending_requests(self) -> bool:
        if self.failure:
            return False
        try:
            return super().has_pending_requests()
        except redis.RedisError as error:
            self._fail(error)
            return False

    def spider_idle(self, spider) -> None:
        """Close only when the whole run is done, not when this worker is."""
        if self.failure:
            raise CloseSpider(self.failure)
        self.state = IDLE
        try:
            self._forget_dead_local_workers()
            queued, busy = self._idle(keys=self._keys("workers", "queue"),
                                      args=[self.worker_id, self.keys["worker"], self._state_value(IDLE), self.ttl])
        except redis.RedisError as error:
            self._fail(error)  # the spider closes at its first idle moment, as failed
            return
        if queued or busy:
            if not self.waiting:
                logger.info("Worker %s is idle; shared run %s goes on (%d queued requests, %d busy workers)",
                            self.worker_id, self.run_id, queued, busy)
            self.waiting = True
            raise DontCloseSpider
        logger.info("Shared run %s of job %s has no work left", self.run_id, self.job)

    def _set_state(self, state: str) -> None:
        self.state = state
        self.waiting = False
        self.server.set(self.keys["worker"] + self.worker_id, self._state_value(state), ex=self.ttl)

    def _beat(self) -> None:
        try:
            self.server.set(self.keys["worker"] + self.worker_id, self._state_value(self.state), ex=self.ttl)
        except redis.RedisError as error:
            logger.warning("Worker %s missed a heartbeat: %s", self.worker_id, error)

    def _state_value(self, state: str) -> str:
        return f"{state} {self.host} {self.pid}"

    def _forget_dead_local_workers(self) -> None:
        """A worker of this host whose process is gone (killed with -9) is
        not waited for until its key expires."""
        keys = [self.keys["worker"] + member.decode() for member in self.server.smembers(self.keys["workers"])]
        for key, value in zip(keys, self.server.mget(keys) if keys else [], strict=True):
            if not value:
                continue
            _, host, pid = value.decode().split(" ")
            if host == self.host and not alive(int(pid)):
                logger.info("Worker %s of this host is gone; not waiting for it", key.removeprefix(self.keys["worker"]))
                self.server.delete(key)

    def _keys(self, *names: str) -> list[str]:
        return [self.keys[name] for name in names]

    def _fail(self, error: Exception) -> None:
        if not self.failure:
            logger.error("Redis at %s failed (%s): worker %s of job %s stops; the next run crawls what "
                         "this one missed", self.url, error, self.worker_id, self.job)
        self.failure = REDIS_UNAVAILABLE
        self.stats.inc_value("finews/redis/errors")

    def _lost(self, request) -> bool:
        logger.error("Request not queued (Redis unavailable): %s", request.url)
        self.stats.inc_value("finews/redis/unqueued_requests")
        return False
