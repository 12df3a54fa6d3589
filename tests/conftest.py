"""Shared fixtures: the real corpus, a real MongoDB server, the replica.

The database is the embedded SecantusDB server started as a child process,
or whatever ``MONGO_URI`` points at (a real mongod in CI or deploy checks);
each test gets a database of its own.
"""

from __future__ import annotations

import concurrent.futures
import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest

from finews.core.infocode import normalize_info_code
from finews.replica.postfile import read_post_file
from finews.replica.server import ReplicaServer
from finews.replica.site import BUNDLED_CORPUS, ReplicaSite
from finews.storage.db import EmbeddedMongo, connect, ensure_indexes

ROOT = Path(__file__).resolve().parent.parent
CORPUS = BUNDLED_CORPUS
POSTS = CORPUS / "posts"
REFERENCE = POSTS / "2022-03-01-NW202203012292975846.md"
ODD_POSTS = {"2021-12-01-init.md", "-202205262391921712.md"}


def corpus_posts():
    return [read_post_file(p) for p in sorted(POSTS.glob("*.md"))]


def valid_corpus_codes() -> set[str]:
    """Every normalized code a crawl of the whole corpus must store once."""
    return {normalize_info_code(p.raw_code) for p in corpus_posts() if p.name not in ODD_POSTS}


# Fixtures that start a crawler or command as a process of its own: a test
# using one is a process-level test, run by ``pytest -m slow`` (and .ci/run),
# not by the fast default suite.
PROCESS_FIXTURES = {"crawl"}


def pytest_configure(config):
    """The reactor every crawl runs on (``crawler/runner.py``), installed before
    anything imports Twisted's default one, so that crawlers built in tests
    (``get_crawler``, ``engine_crawl``) run as they do in production."""
    from scrapy.utils.reactor import install_reactor

    from crawler.runner import ASYNCIO_REACTOR
    install_reactor(ASYNCIO_REACTOR)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if PROCESS_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def mongo_uri(tmp_path_factory):
    uri = os.environ.get("MONGO_URI")
    if uri:
        yield uri
        return
    with EmbeddedMongo(tmp_path_factory.mktemp("mongo")) as server:
        yield server.uri


@pytest.fixture
def db_name():
    return f"finews_test_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def db(mongo_uri, db_name):
    client = connect(mongo_uri)
    database = client[db_name]
    ensure_indexes(database)
    yield database
    client.drop_database(db_name)
    client.close()


@pytest.fixture(scope="session")
def site():
    return ReplicaSite.from_folder(CORPUS)


@pytest.fixture(scope="session")
def replica(site):
    with ReplicaServer(site) as server:
        yield server


@pytest.fixture
def crawl(mongo_uri, db_name, tmp_path):
    """Run ``scrapy crawl`` from the repository root, as a user would."""

    def run(spider: str, *args: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "scrapy", "crawl", spider, "-s", "LOG_LEVEL=INFO",
                   "-s", "AUTOTHROTTLE_ENABLED=False"]
        for arg in args:
            command += ["-a", arg]
        environment = {**os.environ, "MONGO_URI": mongo_uri, "MONGO_DATABASE": db_name,
                       "FINEWS_DATA_DIR": str(tmp_path / "var"), **(env or {})}
        result = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=600)
        if check and result.returncode != 0:
            raise AssertionError(f"crawl failed ({result.returncode}):\n{result.stderr[-4000:]}")
        return result

    return run


@pytest.fixture(scope="session")
def reactor():
    """The Twisted reactor, running in a thread of its own for the session: a
    reactor cannot be restarted, so every in-process crawl of the session
    runs on this one."""
    from twisted.internet import reactor as twisted_reactor

    thread = threading.Thread(target=twisted_reactor.run, kwargs={"installSignalHandlers": False},
                              name="reactor", daemon=True)
    thread.start()
    yield twisted_reactor
    twisted_reactor.callFromThread(twisted_reactor.stop)
    thread.join(10)


@pytest.fixture
def engine_crawl(reactor, mongo_uri, db_name, tmp_path):
    """Run a spider through the Scrapy engine in this process, as
    ``crawler.runner.run_spiders`` does (project settings, the job's JOBDIR
    and lock, every middleware, pipeline and extension), into the test's
    database; returns the crawl's stats. A fast test: no process is started."""
    return make_engine_crawl(reactor, mongo_uri, db_name, tmp_path)


def make_engine_crawl(reactor, mongo_uri, db_name, tmp_path):
    """``engine_crawl`` for any database and folder (module-scoped fixtures)."""
    from scrapy.crawler import CrawlerRunner
    from scrapy.utils.defer import deferred_from_coro
    from twisted.internet import defer

    from crawler.jobs import configure_job
    from crawler.runner import job_dir_lock, project_settings, salvage_job_dir

    def run(spider: str, settings: dict | None = None, timeout: float = 60, **arguments) -> dict:
        done: concurrent.futures.Future = concurrent.futures.Future()
        crawlers = []

        @defer.inlineCallbacks
        def crawl():
            overrides = {"MONGO_URI": mongo_uri, "MONGO_DATABASE": db_name,
                         "FINEWS_DATA_DIR": str(tmp_path / "var"), "FINEWS_DB_PATH": str(tmp_path / "var" / "db"),
                         "AUTOTHROTTLE_ENABLED": False, "LOG_LEVEL": "INFO", **(settings or {})}
            runner = CrawlerRunner(project_settings(overrides))
            crawler = runner.create_crawler(spider)
            crawlers.append(crawler)
            configure_job(crawler.settings, spider, arguments)
            with job_dir_lock(crawler.settings):
                salvage_job_dir(crawler.settings)
                yield runner.crawl(crawler, **arguments)
            return dict(crawler.stats.get_stats())

        def start():
            crawl().addCallbacks(done.set_result, lambda failure: done.set_exception(failure.value))

        reactor.callFromThread(start)
        try:
            return done.result(timeout)
        except concurrent.futures.TimeoutError:
            for crawler in crawlers:
                reactor.callFromThread(lambda c=crawler: deferred_from_coro(c.stop_async()))
            raise AssertionError(f"the {spider} crawl did not end within {timeout} s") from None

    return run
