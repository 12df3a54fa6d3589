"""Wrong database credentials are no outage: the crawl stops at once with one
line, exit 1, nothing spooled. A real server with authentication on."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from finews.storage.db import EmbeddedMongo, connect, free_port
from tests.conftest import ROOT


@pytest.fixture
def auth_server(tmp_path):
    """A SecantusDB server requiring SCRAM-SHA-256, with user finews/right."""
    port = free_port()
    with EmbeddedMongo(tmp_path / "db", port=port) as plain, connect(plain.uri) as client:
        client.admin.command("createUser", "finews", pwd="right", roles=["root"])
    server = EmbeddedMongo(tmp_path / "db", port=port, extra_args=["--auth"]).start()
    yield server
    server.stop()


@pytest.mark.slow
def test_wrong_password_fails_at_once_with_one_line_and_spools_nothing(auth_server, replica, tmp_path):
    env = {**os.environ, "MONGO_DATABASE": "authtest", "FINEWS_DATA_DIR": str(tmp_path / "var"),
           "FINEWS_AUTOTHROTTLE": "0", "MONGO_TIMEOUT_MS": "10000"}
    command = [sys.executable, "-m", "scrapy", "crawl", "category", "-a", f"site={replica.url}"]
    uri = f"mongodb://finews:{{}}@127.0.0.1:{auth_server.port}/?authSource=admin"
    started = time.monotonic()
    wrong = subprocess.run(command, cwd=ROOT, env={**env, "MONGO_URI": uri.format("wrong")},
                           capture_output=True, text=True, timeout=300)
    elapsed = time.monotonic() - started
    assert wrong.returncode == 1, wrong.stderr[-3000:]
    errors = [line for line in wrong.stderr.splitlines() if "ERROR" in line or "CRITICAL" in line]
    assert len(errors) == 1 and "authentication failed" in errors[0].lower(), errors
    assert "wrong" not in errors[0]  # the password is never printed
    assert "Traceback" not in wrong.stderr
    assert elapsed < 30  # not the retries and cool-downs of an outage
    spool = tmp_path / "var" / "spool"
    assert not spool.exists() or not list(spool.rglob("*"))

    right = subprocess.run(command, cwd=ROOT, env={**env, "MONGO_URI": uri.format("right")},
                           capture_output=True, text=True, timeout=300)
    assert right.returncode == 0, right.stderr[-3000:]
    with connect(uri.format("right")) as client:
        assert client.authtest.posts.count_documents({}) == 49
        assert [r["outcome"] for r in client.authtest.crawl_runs.find()] == ["clean"]
