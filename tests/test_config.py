"""``finews.toml``: unknown keys are errors, and ``[settings]`` reaches the crawler."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest
from scrapy.crawler import CrawlerRunner

from crawler.runner import check_config, project_settings
from finews.cli.config import ConfigError, load_config
from finews.replica.faults import FaultPlan
from finews.replica.server import ReplicaHandler, ReplicaServer
from finews.replica.site import ReplicaSite
from tests.conftest import CORPUS, ROOT

DEPLOY_CONFIG = ROOT / "deploy" / "finews.toml"


def _write(tmp_path, text: str):
    path = tmp_path / "finews.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _checked(tmp_path, text: str):
    config = load_config(_write(tmp_path, text), environ={})
    check_config(config, project_settings())
    return config


def _finews_run(config, env: dict | None = None, timeout=600):
    environment = {k: v for k, v in os.environ.items() if k != "MONGO_URI"} | (env or {})
    return subprocess.run([sys.executable, "-m", "finews.cli", "run", "--config", str(config)], cwd=ROOT,
                          env=environment, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("text, named", [
    ('[database]\nur = "mongodb://db.example/"\n', "unknown key 'ur' (did you mean 'uri'?)"),
    ('[databse]\nuri = "mongodb://db.example/"\n', "unknown section 'databse' (did you mean 'database'?)"),
    ('[run]\nevry = "5m"\n', "unknown key 'evry' (did you mean 'every'?)"),
    ('[run]\ndata_dir = 5\n', "[run] data_dir must be a string, got 5"),
    ('[database]\nuri = ["mongodb://a/"]\n', "[database] uri must be a string"),
    ('[[jobs]]\nspider = "category"\nsit = "http://127.0.0.1:9"\n', "unknown argument 'sit' (did you mean 'site'?)"),
    ('[[jobs]]\nspider = "categroy"\n', "unknown spider 'categroy' (did you mean 'category'?)"),
    ('[[jobs]]\nspider = "newsshare"\nsite = "http://127.0.0.1:9"\n', "needs info_codes"),
    ('[[jobs]]\nspider = "newsshare"\ncodes_file = "/nonexistent/codes.txt"\n', "no codes file at /nonexistent"),
    ('[[jobs]]\nspider = "category"\nsite = "ftp://127.0.0.1/"\n', "site must be an http:// or https:// URL"),
    ('[settings]\nFINEWS_CONCURRENT_REQUESTS = 8\n', "FINEWS_CONCURRENT_REQUESTS is an environment variable; "
                                                     "the setting is CONCURRENT_REQUESTS"),
    ('[settings]\nCONCURENT_REQUESTS = 8\n',
     "unknown setting 'CONCURENT_REQUESTS' (did you mean 'CONCURRENT_REQUESTS'?)"),
    ('[settings]\nNOT_A_SETTING_AT_ALL_XYZ = 1\n', "unknown setting 'NOT_A_SETTING_AT_ALL_XYZ'"),
    ('[settings]\nCONCURRENT_REQUESTS = "eight"\n', "CONCURRENT_REQUESTS must be a number"),
    ('[settings]\nAUTOTHROTTLE_ENABLED = 1\n', "AUTOTHROTTLE_ENABLED must be true or false"),
    ('[settings]\nMONGO_URI = "mongodb://db.example/"\n', "MONGO_URI cannot be set in [settings]: use [database] uri"),
])
def test_a_config_mistake_is_named(tmp_path, text, named):
    with pytest.raises(ConfigError) as raised:
        _checked(tmp_path, text)
    assert named in str(raised.value)


def test_a_good_config_passes_with_typed_values(tmp_path):
    config = _checked(tmp_path, '[database]\nuri = "mongodb://db.example/"\nname = "n"\n[run]\nevery = "90s"\n'
                                '[[jobs]]\nspider = "category"\nsite = "https://a.example"\ncategories = ["x", "y"]\n'
                                '[settings]\nCONCURRENT_REQUESTS = 4\nDOWNLOAD_DELAY = 0.5\n'
                                'AUTOTHROTTLE_ENABLED = false\nFINEWS_LOCK_TTL = 60\n')
    assert config.jobs[0].arguments == {"site": "https://a.example", "categories": "x,y"}
    assert config.settings == {"CONCURRENT_REQUESTS": 4, "DOWNLOAD_DELAY": 0.5, "AUTOTHROTTLE_ENABLED": False,
                               "FINEWS_LOCK_TTL": 60}


def test_the_deploy_config_sets_concurrency_on_the_crawler():
    """The value in deploy/finews.toml is the one the crawler is built with
    (the FINEWS_… spelling it had was silently ignored: 16)."""
    config = load_config(DEPLOY_CONFIG, environ={})
    settings = project_settings(config.scrapy_settings())
    check_config(config, settings)
    crawler = CrawlerRunner(settings).create_crawler("category")
    assert crawler.settings.getint("CONCURRENT_REQUESTS") == config.settings["CONCURRENT_REQUESTS"] == 8


@pytest.mark.slow
def test_a_typo_in_the_database_uri_key_stops_the_run(tmp_path):
    """Before: ``ur = …`` ran the crawl on an embedded database, exit 0/3."""
    config = _write(tmp_path, f'[database]\nur = "mongodb://127.0.0.1:1/"\n[run]\ndata_dir = "{tmp_path / "var"}"\n'
                              '[[jobs]]\nspider = "category"\nsite = "http://127.0.0.1:9"\n')
    result = _finews_run(config, timeout=60)
    lines = (result.stdout + result.stderr).splitlines()
    assert result.returncode == 2
    assert lines == ["finews run: [database]: unknown key 'ur' (did you mean 'uri'?)"]
    assert not (tmp_path / "var").exists(), "nothing may start on a bad config"


class _CountingHandler(ReplicaHandler):
    """Counts the requests the replica is answering at the same moment."""

    def do_GET(self) -> None:
        server = self.server
        with server.in_flight_lock:
            server.in_flight += 1
            server.most_in_flight = max(server.most_in_flight, server.in_flight)
        try:
            super().do_GET()
        finally:
            with server.in_flight_lock:
                server.in_flight -= 1


@pytest.mark.slow
def test_settings_concurrency_is_what_the_site_sees(tmp_path, mongo_uri, db):
    """``CONCURRENT_REQUESTS`` from ``[settings]`` bounds the requests the
    site answers at once, in a real ``finews run`` (Scrapy's default and the
    project's is 16)."""
    server = ReplicaServer(ReplicaSite.from_folder(CORPUS), faults=FaultPlan.parse("slow=1.0", slow_seconds=0.3))
    server.RequestHandlerClass = _CountingHandler
    server.in_flight, server.most_in_flight, server.in_flight_lock = 0, 0, threading.Lock()
    config = _write(tmp_path, f'[run]\ndata_dir = "{tmp_path / "var"}"\n'
                              f'[[jobs]]\nspider = "category"\nsite = "{server.url}"\n'
                              '[settings]\nCONCURRENT_REQUESTS = 3\nAUTOTHROTTLE_ENABLED = false\n')
    with server:
        started = time.monotonic()
        result = _finews_run(config, env={"MONGO_URI": mongo_uri, "MONGO_DATABASE": db.name})
        elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr[-3000:]
    assert db.posts.count_documents({}) == 49
    assert 2 <= server.most_in_flight <= 3, (server.most_in_flight, elapsed)


@pytest.mark.parametrize("variable, value, wanted", [
    ("FINEWS_CONCURRENT_REQUESTS", "sixteen", "a whole number"),
    ("MONGO_OUTAGE_COOLDOWN", "30s", "a number"),
    ("FINEWS_NEAR_DUPLICATES", "ture", "1 or 0"),  # once read as "off": flags silently gone
])
@pytest.mark.parametrize("command", [["scrapy", "crawl", "category"], ["finews.cli", "run"]])
def test_a_mistyped_environment_value_stops_every_command_in_one_line(tmp_path, command, variable, value, wanted):
    config = _write(tmp_path, f'[run]\ndata_dir = "{tmp_path / "var"}"\n'
                              '[[jobs]]\nspider = "category"\nsite = "http://127.0.0.1:9"\n')
    arguments = [*command, "-a", "site=http://127.0.0.1:9"] if command[0] == "scrapy" else [*command, "--config",
                                                                                            str(config)]
    result = subprocess.run([sys.executable, "-m", *arguments], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env=os.environ | {variable: value, "FINEWS_DATA_DIR": str(tmp_path / "var")})
    assert result.returncode == 2
    assert (result.stdout + result.stderr).splitlines() == [f"finews: {variable} must be {wanted}, got {value!r}"]
    assert not (tmp_path / "var").exists(), "nothing may start on a mistyped setting"


def test_a_switch_takes_the_words_people_write():
    for value, expected in (("true", True), ("Yes", True), ("on", True), ("1", True), ("false", False), ("0", False),
                            ("OFF", False), ("no", False)):
        out = subprocess.run([sys.executable, "-c", "import crawler.settings as s; print(s.FINEWS_NEAR_DUPLICATES)"],
                             cwd=ROOT, capture_output=True, text=True, timeout=60,
                             env=os.environ | {"FINEWS_NEAR_DUPLICATES": value})
        assert out.stdout.strip() == str(expected), (value, out.stderr)
