"""A newcomer's first commands: demo, stats, export, a run with the example
config. Each does what it says, with one line per mistake."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from crawler.runner import SpiderRun, check_config, project_settings
from crawler.summary import summarize
from finews.cli import main
from finews.cli.config import load_config
from finews.storage.db import free_port
from tests.conftest import ROOT

EXAMPLE = ROOT / "finews.example.toml"
FINEWS_VARIABLES = [name for name in os.environ if name.startswith(("FINEWS_", "MONGO_"))]


@pytest.fixture
def newcomer(monkeypatch, tmp_path):
    """A fresh folder and no finews variable set."""
    for name in FINEWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def _post(code: str, category: str, when: datetime) -> dict:
    return {"_id": code, "info_code": code, "category": category, "published_at": when}


def _stats(newcomer, mongo_uri, db, capsys, *argv) -> list[str]:
    newcomer.setenv("MONGO_URI", mongo_uri)
    newcomer.setenv("MONGO_DATABASE", db.name)
    assert main(["stats", *argv]) == 0
    return capsys.readouterr().out.split("\nLast ")[0].splitlines()


def test_stats_of_an_older_archive_shows_its_last_days(newcomer, mongo_uri, db, capsys):
    """The demo's posts are from 2021-22: a 14-day window over them once
    printed "(none)"."""
    noon = datetime(2022, 3, 10, 4, tzinfo=UTC)  # 12:00 in Shanghai
    db.posts.insert_many([_post("NW202203100000000001", "emnews", noon),
                          _post("NW202203100000000002", "emnews", noon),
                          _post("NW202203010000000003", "hebeiribao", noon - timedelta(days=9)),
                          _post("NW202202010000000004", "hebeiribao", noon - timedelta(days=37))],
                         bypass_document_validation=True)
    lines = _stats(newcomer, mongo_uri, db, capsys)
    assert "none in the last 14 days" in lines[0] and "2022-03-10" in lines[0] and "--days 0" in lines[0]
    assert [line.split() for line in lines[3:]] == [["2022-03-10", "emnews", "2"], ["2022-03-01", "hebeiribao", "1"]]
    assert len(_stats(newcomer, mongo_uri, db, capsys, "--days", "0")) == 3 + 3


def test_stats_of_recent_posts_keeps_its_window(newcomer, mongo_uri, db, capsys):
    now = datetime.now(UTC)
    db.posts.insert_many([_post("NW209901010000000001", "emnews", now - timedelta(hours=1)),
                          _post("NW202203010000000002", "emnews", datetime(2022, 3, 1, 4, tzinfo=UTC))],
                         bypass_document_validation=True)
    lines = _stats(newcomer, mongo_uri, db, capsys)
    assert lines[0].startswith("Posts per category and day (last 14 days;")
    assert [line.split()[1:] for line in lines[3:]] == [["emnews", "1"]]


@pytest.mark.parametrize("argv", [["stats"], ["export", "out.jsonl"], ["reprocess"], ["replay"], ["migrate"]],
                         ids=lambda argv: argv[0])
def test_a_command_in_a_folder_without_a_database_creates_none(newcomer, tmp_path, capsys, argv):
    """Once, ``finews stats`` in another folder made an empty 11 MB ./var
    database and reported 0 posts."""
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.splitlines()) == 1
    assert f"no database at {os.path.join('var', 'db')}" in captured.err and "--create" in captured.err
    assert list(tmp_path.iterdir()) == []


def test_a_busy_port_is_one_line(newcomer, tmp_path, capsys):
    """Once a 20-line (replica) or 37-line (db serve) traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for argv in (["replica", "--port", str(port)], ["db", "serve", "--port", str(port)]):
            assert main(argv) == 2
            assert capsys.readouterr().err.splitlines() == [f"finews: port {port} is in use (pick another with --port)"]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["demo", "replica"])
def test_a_missing_posts_folder_is_one_line(newcomer, tmp_path, capsys, command):
    """Once, ``finews demo --posts TYPO`` crawled an empty replica and exited 0."""
    with socket.socket() as busy:  # without the check, the replica ends at once here, and does not serve
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        extra = ["--port", str(busy.getsockname()[1])] if command == "replica" else []
        assert main([command, "--posts", "no-such-folder", *extra]) == 2
    assert capsys.readouterr().err.splitlines() == [f"finews {command}: no post files at no-such-folder"]
    assert list(tmp_path.iterdir()) == []


def test_the_run_table_counts_posts_already_stored():
    """A second demo's table was all zeros: posts not fetched because they are
    stored now have their column."""
    run = SpiderRun("category", {}, {"finews/skipped_known": 53, "finews/posts/unchanged": 2,
                                     "response_received_count": 15})
    table = summarize([run]).splitlines()
    header, row = table[0].split(), table[2].split()
    assert dict(zip(header, row, strict=True))["known"] == "53"
    assert dict(zip(header, row, strict=True))["unchanged"] == "2"


def test_the_example_config_loads_and_passes_the_run_checks():
    config = load_config(EXAMPLE, environ={})
    check_config(config, project_settings())
    assert [job.spider for job in config.jobs] == ["category", "newsshare", "newslist"]
    assert {job.arguments["site"] for job in config.jobs} == {"http://127.0.0.1:8000"}
    assert config.mongo_uri is None and config.data_dir == "var"


@pytest.mark.slow
def test_the_example_config_crawls_the_replica(tmp_path, site, mongo_uri, db):
    """``finews run --config finews.example.toml`` against ``finews replica``
    (here on a free port: the example's 8000 may be taken on a test machine)."""
    from finews.replica.server import ReplicaServer

    with ReplicaServer(site) as replica:
        config = tmp_path / "finews.toml"
        config.write_text(EXAMPLE.read_text(encoding="utf-8").replace("http://127.0.0.1:8000", replica.url)
                          .replace('data_dir = "var"', f'data_dir = "{tmp_path / "var"}"'), encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if k not in FINEWS_VARIABLES} | {
            "MONGO_URI": mongo_uri, "MONGO_DATABASE": db.name}
        result = subprocess.run([sys.executable, "-m", "finews.cli", "run", "--config", str(config)], cwd=tmp_path,
                                env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert db.posts.count_documents({}) == 49  # the corpus's dated posts with an article link
    assert {row.split()[0] for row in result.stdout.splitlines()[2:5]} == {"category", "newsshare", "newslist"}


@pytest.mark.slow
def test_a_second_demo_shows_what_it_already_had(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in FINEWS_VARIABLES}

    def demo():
        result = subprocess.run([sys.executable, "-m", "finews.cli", "demo", "--port", str(free_port())],
                                cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        lines = result.stdout.splitlines()
        header = next(line for line in lines if line.startswith("spider")).split()
        return {line.split()[0]: dict(zip(header, line.split(), strict=True)) for line in lines
                if line.startswith(("category ", "newslist "))}

    first, second = demo(), demo()
    assert first["category"]["stored"] == "49" and first["category"]["known"] == "0"
    assert second["category"]["stored"] == "0"
    assert int(second["category"]["known"]) >= 49  # every stored post is listed, and not fetched again
    assert int(second["newslist"]["known"]) > 0


@pytest.mark.slow
def test_create_makes_an_empty_database_when_asked(newcomer, tmp_path, capsys):
    assert main(["stats", "--create"]) == 0
    assert "0 posts stored" in capsys.readouterr().out
    assert (tmp_path / "var" / "db" / "data").is_dir()
    assert main(["stats"]) == 0  # there is one now
