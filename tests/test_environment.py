"""The environment, checked in one place (``finews/core/environment.py``):
a mistyped value stops ``scrapy crawl`` and every ``finews`` command before
anything starts, in one line, exit 2, as docs/operations.md ("Tuning") says."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys

import pytest

from finews.cli import main
from finews.core import environment
from tests.conftest import ROOT

# Every command of `finews --help`. Without the check each would do some work
# or say something else, but end soon and on loopback only: the ports are
# busy (PORT), the config and post files missing.
COMMANDS = [["stats"], ["export", "out.jsonl"], ["import", "in.jsonl"], ["reprocess"], ["replay"], ["migrate"],
            ["db", "serve", "--port", "PORT"], ["demo", "--posts", "missing"], ["run", "--config", "missing.toml"],
            ["replica", "--port", "PORT"]]
FINEWS_VARIABLES = [name for name in os.environ if name.startswith(("FINEWS_", "MONGO_"))]


def documented_variables() -> set[str]:
    """The variables named in README.md's configuration table and in
    docs/operations.md's Tuning table."""
    names = set()
    for path, heading in ((ROOT / "README.md", "## Configuration"), (ROOT / "docs" / "operations.md", "## Tuning")):
        section = path.read_text(encoding="utf-8").split(heading, 1)[1].split("\n## ", 1)[0]
        names |= set(re.findall(r"^\| `([A-Z_]+)` \|", section, re.M))
    return names


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """A fresh folder and no finews variable set, as a newcomer has."""
    for name in FINEWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def test_every_documented_variable_is_checked():
    documented = documented_variables()
    assert len(documented) > 20
    assert documented - set(environment.VARIABLES) == set()


@pytest.mark.parametrize("name, value, line", [
    ("FINEWS_NEAR_DUPLICATES", "ture", "FINEWS_NEAR_DUPLICATES must be 1 or 0, got 'ture'"),
    ("MONGO_TIMEOUT_MS", "abc", "MONGO_TIMEOUT_MS must be a whole number, got 'abc'"),
    ("MONGO_BATCH_SIZE", "0", "MONGO_BATCH_SIZE must be at least 1, got '0'"),
    ("FINEWS_LOCK_TTL", "nan", "FINEWS_LOCK_TTL must be a number, got 'nan'"),
    ("FINEWS_REDIS_POLL", "0", "FINEWS_REDIS_POLL must be greater than 0, got '0'"),
    ("MONGO_OUTAGE_COOLDOWN", "30s", "MONGO_OUTAGE_COOLDOWN must be a number, got '30s'"),
    ("FINEWS_LOG_LEVEL", "verbose",
     "FINEWS_LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got 'verbose'"),
    ("FINEWS_REDIS_URL", "127.0.0.1:6379",
     "FINEWS_REDIS_URL must be a redis://, rediss:// or unix:// URL, got '127.0.0.1:6379'"),
    ("FINEWS_EVERY", "5 minutes", "FINEWS_EVERY must be an interval such as 90s, 5m or 1h, got '5 minutes'"),
])
def test_a_bad_value_is_named_in_one_line(name, value, line):
    assert environment.problems({name: value}) == [f"finews: {line}"]
    assert environment.value(name, {name: value}) == environment.VARIABLES[name].default


def test_a_database_name_mongodb_refuses_is_refused():
    assert environment.problem({"MONGO_DATABASE": "fi.news"}).startswith("finews: MONGO_DATABASE must be a MongoDB")
    assert environment.problem({"MONGO_DATABASE": "finews_test"}) is None


@pytest.mark.parametrize("text, expected", [("true", True), ("Yes", True), ("on", True), ("1", True),
                                            ("false", False), ("0", False), ("OFF", False), ("no", False)])
def test_switches_take_the_words_people_write(text, expected):
    assert environment.problem({"FINEWS_NEAR_DUPLICATES": text}) is None
    assert environment.value("FINEWS_NEAR_DUPLICATES", {"FINEWS_NEAR_DUPLICATES": text}) is expected


def test_an_empty_value_is_unset():
    assert environment.problems({"MONGO_TIMEOUT_MS": "", "FINEWS_NEAR_DUPLICATES": ""}) == []
    assert environment.value("MONGO_TIMEOUT_MS", {"MONGO_TIMEOUT_MS": ""}) == 10_000


@pytest.mark.parametrize("name, value, wanted", [("FINEWS_NEAR_DUPLICATES", "ture", "1 or 0"),
                                                 ("MONGO_TIMEOUT_MS", "abc", "a whole number")])
@pytest.mark.parametrize("argv", COMMANDS, ids=lambda argv: " ".join(argv[:2]))
def test_every_finews_command_stops_before_anything_starts(clean_env, tmp_path, capsys, argv, name, value, wanted):
    """Once, stats/export/import/reprocess/replay/migrate went on with a
    mistyped switch read as "off", db serve started, and MONGO_TIMEOUT_MS=abc
    started the embedded database before exit 1."""
    clean_env.setenv(name, value)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        assert main([str(busy.getsockname()[1]) if word == "PORT" else word for word in argv]) == 2
    captured = capsys.readouterr()
    assert (captured.out + captured.err).splitlines() == [f"finews: {name} must be {wanted}, got {value!r}"]
    assert list(tmp_path.iterdir()) == [], "nothing may be created on a mistyped value"


@pytest.mark.slow
def test_scrapy_crawl_and_finews_say_the_same_line(tmp_path):
    """``MONGO_TIMEOUT_MS=abc``: once ``finews stats`` started the embedded
    database and exited 1 while ``scrapy crawl`` exited 2 with another line."""
    env = {k: v for k, v in os.environ.items() if k not in FINEWS_VARIABLES} | {
        "MONGO_TIMEOUT_MS": "abc", "FINEWS_DATA_DIR": str(tmp_path / "var")}
    results = [subprocess.run([sys.executable, "-m", *command], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=120)
               for command in (["scrapy", "crawl", "category", "-a", "site=http://127.0.0.1:9"],
                               ["finews.cli", "stats"])]
    for result in results:
        assert result.returncode == 2
        assert (result.stdout + result.stderr).splitlines() == ["finews: MONGO_TIMEOUT_MS must be a whole number, "
                                                                "got 'abc'"]
    assert not (tmp_path / "var").exists()
