"""Settings are resolved when the crawler is built, not when crawler/settings.py
is imported: ``-s FINEWS_DATA_DIR=X`` (or ``[settings]``) moves the embedded
database with the spool and the JOBDIR, and a mistyped variable does not stop
an import (the commands stop on it, exit 2).

Once ``-s FINEWS_DATA_DIR=X`` moved the spool and the JOBDIR and left the
database in ./var/db, derived from the environment at import."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from scrapy.crawler import CrawlerRunner

import crawler.settings
from crawler.database import CrawlDatabase
from crawler.extensions import RunRecord
from crawler.jobs import configure_job
from crawler.runner import project_settings
from crawler.spiders.category import CategorySpider
from finews.core import environment
from finews.core.environment import data_paths
from finews.storage.db import EmbeddedMongo, connect
from pipelines.mongo import MongoPipeline
from tests.conftest import ROOT, valid_corpus_codes


@pytest.fixture
def settings_module(monkeypatch):
    """``crawler/settings.py`` imported afresh under the given environment;
    imported again under the test's own at the end."""
    def load(**environ) -> None:
        for name in environment.VARIABLES:
            monkeypatch.delenv(name, raising=False)
        for name, value in environ.items():
            monkeypatch.setenv(name, value)
        importlib.reload(crawler.settings)

    yield load
    monkeypatch.undo()
    importlib.reload(crawler.settings)


def built(overrides: dict):
    """A crawler built as ``scrapy crawl -s NAME=VALUE …`` builds it, its job configured."""
    built_crawler = CrawlerRunner(project_settings(overrides)).create_crawler(CategorySpider)
    configure_job(built_crawler.settings, "category", {})
    built_crawler._apply_settings()  # as Crawler.crawl does: stats, settings frozen
    return built_crawler


def where(built_crawler) -> dict[str, Path]:
    """Where each consumer puts its files."""
    return {"db": CrawlDatabase.of(built_crawler).server_path,
            "spool": MongoPipeline.from_crawler(built_crawler).spool.folder,
            "record spool": RunRecord(built_crawler).spool.folder,
            "jobdir": Path(built_crawler.settings.get("JOBDIR")).parent}


def test_s_data_dir_puts_the_database_spool_and_jobdir_under_it(settings_module, tmp_path):
    settings_module(FINEWS_DATA_DIR=str(tmp_path / "from-environment"))
    x = tmp_path / "x"
    assert where(built({"FINEWS_DATA_DIR": str(x)})) == {
        "db": x / "db", "spool": x / "spool", "record spool": x / "spool", "jobdir": x / "jobs"}


def test_the_environment_alone_puts_them_under_its_data_dir(settings_module, tmp_path):
    settings_module(FINEWS_DATA_DIR=str(tmp_path / "y"))
    y = tmp_path / "y"
    assert where(built({})) == {"db": y / "db", "spool": y / "spool", "record spool": y / "spool",
                                "jobdir": y / "jobs"}


def test_an_explicit_database_path_wins_over_the_data_dir(settings_module, tmp_path):
    settings_module(FINEWS_DB_PATH=str(tmp_path / "env-db"))
    x = tmp_path / "x"
    placed = where(built({"FINEWS_DATA_DIR": str(x)}))
    assert (placed["db"], placed["spool"], placed["jobdir"]) == (tmp_path / "env-db", x / "spool", x / "jobs")
    # and -s wins over the environment for the database path too
    assert where(built({"FINEWS_DB_PATH": str(tmp_path / "s-db")}))["db"] == tmp_path / "s-db"


def test_data_paths_needs_only_get():
    assert data_paths({}) == environment.DataPaths(Path("var"), Path("var/db"), Path("var/spool"), Path("var/jobs"))
    assert data_paths({"FINEWS_DATA_DIR": "d", "FINEWS_DB_PATH": ""}).db == Path("d/db")


def test_importing_the_settings_with_a_bad_value_does_not_raise(settings_module):
    settings_module(MONGO_TIMEOUT_MS="abc", FINEWS_DATA_DIR="")
    assert crawler.settings.FINEWS_ENVIRONMENT_PROBLEM == "finews: MONGO_TIMEOUT_MS must be a whole number, got 'abc'"
    assert crawler.settings.FINEWS_DB_PATH is None  # derived when the crawler is built
    assert project_settings().getint("MONGO_TIMEOUT_MS") == environment.VARIABLES["MONGO_TIMEOUT_MS"].default


@pytest.mark.slow
def test_scrapy_crawl_s_data_dir_stores_into_an_embedded_database_under_it(replica, tmp_path):
    """The whole path: ``scrapy crawl -s FINEWS_DATA_DIR=X`` with no ``MONGO_URI``
    starts its database in X/db, keeps its job in X/jobs, and leaves the
    environment's data folder alone."""
    x, elsewhere = tmp_path / "x", tmp_path / "from-environment"
    env = {name: value for name, value in os.environ.items() if name not in environment.VARIABLES}
    env |= {"FINEWS_DATA_DIR": str(elsewhere), "FINEWS_AUTOTHROTTLE": "0"}
    result = subprocess.run([sys.executable, "-m", "scrapy", "crawl", "category", "-a", f"site={replica.url}",
                             "-s", f"FINEWS_DATA_DIR={x}"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"data in {x / 'db'}" in result.stderr
    assert [job.name.split("-")[0] for job in (x / "jobs").iterdir() if job.is_dir()] == ["category"]
    assert not elsewhere.exists()
    with EmbeddedMongo(x / "db") as server, connect(server.uri) as client:
        assert {d["_id"] for d in client.finews.posts.find({}, {"_id": 1})} == valid_corpus_codes()
