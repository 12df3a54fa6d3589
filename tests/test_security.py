"""Credentials stay out of logs and output; an authenticated database works."""

import os
import subprocess
import sys

import pytest

from finews.storage.db import EmbeddedMongo, connect, free_port, redact_uri
from tests.conftest import ROOT

PASSWORD = "s3cret-Pa55word"


@pytest.mark.parametrize("uri, shown", [
    (f"mongodb://finews:{PASSWORD}@db.example:27017/finews?authSource=admin",
     "mongodb://***@db.example:27017/finews?authSource=admin"),
    (f"mongodb+srv://finews:{PASSWORD}@cluster0.example.net/", "mongodb+srv://***@cluster0.example.net/"),
    ("mongodb://127.0.0.1:27017/", "mongodb://127.0.0.1:27017/"),
])
def test_uris_are_redacted(uri, shown):
    assert redact_uri(uri) == shown


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory):
    """SecantusDB with --auth and a user provisioned as its docs say."""
    path, port = tmp_path_factory.mktemp("authdb"), free_port()
    with EmbeddedMongo(path, port=port) as setup, connect(setup.uri) as client:
        client.admin.command("createUser", "finews", pwd=PASSWORD, roles=[{"role": "root", "db": "admin"}])
    server = EmbeddedMongo(path, port=port, extra_args=["--auth"]).start()
    yield server
    server.stop()


@pytest.mark.slow
def test_crawl_into_an_authenticated_database_never_logs_the_password(auth_server, replica, tmp_path):
    uri = f"mongodb://finews:{PASSWORD}@127.0.0.1:{auth_server.port}/?authSource=admin"
    env = {**os.environ, "MONGO_URI": uri, "MONGO_DATABASE": "authcrawl", "FINEWS_DATA_DIR": str(tmp_path / "var"),
           "FINEWS_LOG_LEVEL": "DEBUG"}
    result = subprocess.run([sys.executable, "-m", "scrapy", "crawl", "category", "-a", f"site={replica.url}",
                             "-a", "categories=hebeiribao", "-s", "AUTOTHROTTLE_ENABLED=False"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert PASSWORD not in result.stdout + result.stderr
    assert "mongodb://***@127.0.0.1" in result.stderr
    with connect(uri) as client:
        assert client.authcrawl.posts.count_documents({}) == 1


@pytest.mark.slow
def test_wrong_credentials_fail_without_echoing_them(auth_server, replica, tmp_path):
    uri = f"mongodb://finews:wrong-{PASSWORD}@127.0.0.1:{auth_server.port}/?authSource=admin"
    env = {**os.environ, "MONGO_URI": uri, "MONGO_DATABASE": "authfail", "FINEWS_DATA_DIR": str(tmp_path / "var"),
           "MONGO_RETRY_ATTEMPTS": "1", "MONGO_TIMEOUT_MS": "2000"}
    result = subprocess.run([sys.executable, "-m", "scrapy", "crawl", "category", "-a", f"site={replica.url}",
                             "-a", "categories=hebeiribao", "-s", "AUTOTHROTTLE_ENABLED=False"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert PASSWORD not in result.stdout + result.stderr
    assert "authentication failed" in result.stderr.lower()  # what failed is named (tests/test_auth.py: the exit)
