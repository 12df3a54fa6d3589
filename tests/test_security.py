"""Credentials stay out of logs and output; an authenticated database works."""

import logging
import os
import subprocess
import sys
from urllib.parse import quote_plus

import pytest
from pymongo.errors import OperationFailure

from finews.storage.db import (
    EmbeddedMongo,
    InvalidURI,
    checked_connect,
    connect,
    free_port,
    is_auth_failure,
    redact,
    redact_uri,
)
from tests.conftest import ROOT

PASSWORD = "s3cret-Pa55word"
# An unescaped "@" and "/": the old patterns stopped at the first of either and
# printed the rest. No piece of it may show.
TRICKY = "Kq7p@ss9/wdZ3"
PIECES = ("Kq7p", "ss9", "wdZ3")


def leaked(text: str) -> list[str]:
    return [piece for piece in PIECES if piece in text]


@pytest.mark.parametrize("uri, shown", [
    (f"mongodb://finews:{PASSWORD}@db.example:27017/finews?authSource=admin",
     "mongodb://***@db.example:27017/finews?authSource=admin"),
    (f"mongodb+srv://finews:{PASSWORD}@cluster0.example.net/", "mongodb+srv://***@cluster0.example.net/"),
    ("mongodb://127.0.0.1:27017/", "mongodb://127.0.0.1:27017/"),
    (f"mongodb://finews:{TRICKY}@db.example:27017/finews", "mongodb://***@db.example:27017/finews"),
    (f"mongodb://finews:{quote_plus(TRICKY)}@db.example/", "mongodb://***@db.example/"),
    (f"finews:{PASSWORD}@db.example:27017", "***@db.example:27017"),  # no scheme (refused, and printed)
    ("mongodb://db.example/?appname=me@home", "mongodb://db.example/?appname=me@home"),  # options hold no password
])
def test_uris_are_redacted(uri, shown):
    assert redact_uri(uri) == shown


def test_text_is_redacted_wherever_the_password_appears():
    """The URI, the password as written and as decoded (what a server or
    pymongo may echo) are all blanked out."""
    uri = f"mongodb://finews:{quote_plus(TRICKY)}@db.example/"
    text = f"connecting to {uri}: password {TRICKY} ({quote_plus(TRICKY)}) refused"
    assert redact(text, uri) == "connecting to mongodb://***@db.example/: password *** (***) refused"
    assert redact(text, None) == text


def test_a_password_with_an_unescaped_slash_is_refused_not_taken_for_a_host():
    """pymongo reads ``finews:Kq7p@ss9/wdZ3@host`` as host ``ss9`` and
    database ``wdZ3@host``, and would print both when it cannot connect."""
    with pytest.raises(InvalidURI) as refused:
        checked_connect(f"mongodb://finews:{TRICKY}@127.0.0.1:1/")
    assert str(refused.value) == ("not a valid MongoDB URI 'mongodb://***@127.0.0.1:1/': a '/' or '@' in the user "
                                  "or password must be escaped (urllib.parse.quote_plus)")


@pytest.mark.parametrize("code, refused", [(18, True), (11, True), (13, True), (6, False), (11000, False)])
def test_authentication_failures_are_told_from_outages(code, refused):
    """AuthenticationFailed, UserNotFound, Unauthorized: waiting will not help."""
    assert is_auth_failure(OperationFailure("refused", code)) is refused


@pytest.mark.parametrize("code", [18, 11])
def test_a_refused_crawl_logs_no_password(code, caplog):
    """The crawl's own refusal line (``CrawlDatabase.failed``), whatever the
    server's message echoes."""
    from scrapy.settings import Settings

    from crawler.database import CrawlDatabase

    uri = f"mongodb://finews:{quote_plus(TRICKY)}@127.0.0.1:1/"
    database = CrawlDatabase(Settings({"MONGO_URI": uri}))
    with caplog.at_level(logging.ERROR, logger="crawler.database"):
        database.failed(OperationFailure(f"Authentication failed for finews:{TRICKY}", code))
    assert database.refused and not database.usable()
    assert "authentication failed for mongodb://***@127.0.0.1:1/" in database.refused
    assert leaked(database.refused + caplog.text) == [], caplog.text


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
