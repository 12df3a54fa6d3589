"""``finews run``: configured jobs in one process, outcome as exit status."""

import os
import signal
import subprocess
import sys
import time

import pytest

from finews.cli.config import ConfigError, load_config, parse_interval
from finews.core.exits import EXIT_PARTIAL, worst
from finews.replica.faults import FaultPlan
from finews.replica.server import ReplicaServer
from finews.replica.site import ReplicaSite
from tests.conftest import CORPUS, ROOT, valid_corpus_codes


def _config(tmp_path, site, extra_jobs="", settings=""):
    path = tmp_path / "finews.toml"
    path.write_text(f'''
[run]
data_dir = "{tmp_path / 'var'}"

[[jobs]]
spider = "category"
site = "{site}"
{extra_jobs}
[settings]
AUTOTHROTTLE_ENABLED = false
DOWNLOAD_TIMEOUT = 3
{settings}
''', encoding="utf-8")
    return path


def _run(config, mongo_uri, db_name, *extra, timeout=600):
    env = {**os.environ, "MONGO_URI": mongo_uri, "MONGO_DATABASE": db_name}
    return subprocess.run([sys.executable, "-m", "finews.cli", "run", "--config", str(config), *extra],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_a_clean_run_of_every_job_exits_0(tmp_path, replica, mongo_uri, db, site):
    codes = tmp_path / "codes.txt"
    codes.write_text("\n".join(site.share_codes()), encoding="utf-8")
    config = _config(tmp_path, replica.url,
                     f'[[jobs]]\nspider = "newsshare"\nsite = "{replica.url}"\ncodes_file = "{codes}"\n')
    result = _run(config, mongo_uri, db.name)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "outcome: clean (category=clean, newsshare=clean)" in result.stdout
    assert {d["_id"] for d in db.posts.find({}, {"_id": 1})} == valid_corpus_codes()
    assert sorted(r["spider"] for r in db.crawl_runs.find()) == ["category", "newsshare"]


@pytest.mark.parametrize("faults, outcome, code", [
    ("status500=0.2", "partial", EXIT_PARTIAL),  # with seed 0 the home page is served, some posts are not
    ("status500=1.0", "failed", 1),  # nothing fetched at all
])
@pytest.mark.slow
def test_a_run_with_failed_pages_exits_partial_or_failed(tmp_path, mongo_uri, db, faults, outcome, code):
    with ReplicaServer(ReplicaSite.from_folder(CORPUS), faults=FaultPlan.parse(faults, seed=0)) as server:
        result = _run(_config(tmp_path, server.url, settings="RETRY_TIMES = 0"), mongo_uri, db.name)
    assert result.returncode == code, result.stderr[-3000:]
    assert f"outcome: {outcome}" in result.stdout


def test_environment_overrides_the_config(tmp_path):
    config = _config(tmp_path, "http://127.0.0.1:9", settings="")
    config.write_text(config.read_text() + '\n[database]\nuri = "mongodb://from-config/"\nname = "cfg"\n')
    loaded = load_config(config, {"MONGO_URI": "mongodb://from-env/", "FINEWS_EVERY": "90s"})
    assert (loaded.mongo_uri, loaded.database, loaded.every) == ("mongodb://from-env/", "cfg", 90)
    assert loaded.jobs[0].arguments == {"site": "http://127.0.0.1:9"}
    assert load_config(None, {}).jobs[0].spider == "category"


@pytest.mark.parametrize("text, seconds", [("5m", 300), ("90s", 90), ("1h", 3600), ("2.5m", 150), (30, 30)])
def test_intervals(text, seconds):
    assert parse_interval(text) == seconds


@pytest.mark.parametrize("bad", ["5 minutes", "-1m", "0", "m"])
def test_bad_intervals(bad):
    with pytest.raises(ConfigError):
        parse_interval(bad)


@pytest.mark.slow  # a process of its own, or a scale: kept out of the fast suite's time
def test_bad_configs_are_refused_with_exit_2(tmp_path, mongo_uri, db):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[jobs]]\nspider = "nope"\n')
    assert _run(bad, mongo_uri, db.name).returncode == 2
    assert _run(tmp_path / "missing.toml", mongo_uri, db.name).returncode == 2


def test_the_worst_job_decides():
    assert worst(["clean", "partial"]) == "partial"
    assert worst(["clean", "locked"]) == "locked"
    assert worst(["partial", "failed", "clean"]) == "failed"
    assert worst([]) == "failed"


@pytest.mark.slow
def test_every_keeps_running_until_sigterm(tmp_path, replica, mongo_uri, db):
    config = _config(tmp_path, replica.url, settings="")
    env = {**os.environ, "MONGO_URI": mongo_uri, "MONGO_DATABASE": db.name}
    loop = subprocess.Popen([sys.executable, "-m", "finews.cli", "run", "--config", str(config), "--every", "2s"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while db.crawl_runs.count_documents({"outcome": {"$ne": "running"}}) < 2:
        assert time.monotonic() < deadline and loop.poll() is None, "fewer than two runs"
        time.sleep(0.3)
    loop.send_signal(signal.SIGTERM)
    loop.communicate(timeout=120)
    assert loop.returncode == 0
    outcomes = [r["outcome"] for r in db.crawl_runs.find()]
    assert outcomes.count("clean") >= 2 and "locked" not in outcomes
    assert db.posts.count_documents({}) == 49
