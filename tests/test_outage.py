"""A database that goes away: writes are retried, then spooled, then replayed,
and the final ``posts`` is exactly the expected set. Real server processes."""

import os
import subprocess
import sys
import time

import pytest

from finews.replica.faults import FaultPlan
from finews.replica.server import ReplicaServer
from finews.replica.site import ReplicaSite
from finews.storage.db import EmbeddedMongo, connect, free_port
from tests.conftest import ROOT, valid_corpus_codes
from tests.test_crawl import stat

OUTAGE_ENV = {"MONGO_RETRY_ATTEMPTS": "2", "MONGO_RETRY_MAX_WAIT": "0.5", "MONGO_TIMEOUT_MS": "1000",
              "MONGO_OUTAGE_COOLDOWN": "2", "MONGO_BATCH_SIZE": "20", "FINEWS_AUTOTHROTTLE": "0"}


@pytest.fixture
def own_server(tmp_path):
    """A database server this test may kill and restart on the same port."""
    port = free_port()
    server = EmbeddedMongo(tmp_path / "db", port=port, extra_args=["--enable-test-commands"]).start()
    yield server
    server.stop()


def _wait_for(predicate, timeout=120, step=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


@pytest.mark.slow
def test_server_killed_mid_crawl_then_replayed(own_server, tmp_path):
    site = ReplicaSite.scaled(800)
    expected = {e.post.raw_code for e in site.entries}
    env = {**os.environ, **OUTAGE_ENV, "MONGO_URI": own_server.uri, "MONGO_DATABASE": "outage",
           "FINEWS_DATA_DIR": str(tmp_path / "var"), "FINEWS_CONCURRENT_REQUESTS": "2"}
    with ReplicaServer(site) as replica, connect(own_server.uri, serverSelectionTimeoutMS=1000) as client:
        crawl = subprocess.Popen([sys.executable, "-m", "scrapy", "crawl", "category", "-a", f"site={replica.url}"],
                                 cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        assert _wait_for(lambda: client.outage.posts.count_documents({}) >= 100), "crawl never stored anything"
        own_server.kill()
        log = crawl.communicate(timeout=600)[1]
    assert crawl.returncode == 0, log[-3000:]
    spooled = stat(log, "finews/db/spooled")
    assert spooled > 0 and "spooled to" in log
    assert list((tmp_path / "var" / "spool").glob("spool-*.jsonl"))

    own_server.start()  # same data, same port
    replay = subprocess.run([sys.executable, "-m", "finews.cli", "replay", "--data-dir", str(tmp_path / "var")],
                            cwd=ROOT, env={**env, "MONGO_DATABASE": "outage"}, capture_output=True, text=True)
    assert replay.returncode == 0, replay.stderr
    with connect(own_server.uri) as client:
        stored = {d["_id"] for d in client.outage.posts.find({}, {"_id": 1})}
    assert stored == {"NW" + c[2:] for c in expected}
    assert not list((tmp_path / "var" / "spool").glob("spool-*"))


@pytest.mark.slow
def test_failing_commands_are_retried_until_they_pass(own_server, tmp_path):
    with connect(own_server.uri) as client:
        client.admin.command({"configureFailPoint": "failCommand", "mode": {"times": 4},
                              "data": {"failCommands": ["insert", "update", "find"], "closeConnection": True}})
        env = {**OUTAGE_ENV, "MONGO_RETRY_ATTEMPTS": "8"}
        with ReplicaServer(ReplicaSite.from_folder()) as replica:
            result = subprocess.run(
                [sys.executable, "-m", "scrapy", "crawl", "category", "-a", f"site={replica.url}"], cwd=ROOT,
                env={**os.environ, **env, "MONGO_URI": own_server.uri, "MONGO_DATABASE": "failpoint",
                     "FINEWS_DATA_DIR": str(tmp_path / "var")}, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        assert stat(result.stderr, "finews/db/retries") + stat(result.stderr, "finews/known_check_failed") >= 1
        assert stat(result.stderr, "finews/db/spooled") == 0
        assert {d["_id"] for d in client.failpoint.posts.find({}, {"_id": 1})} == valid_corpus_codes()
        client.admin.command({"configureFailPoint": "failCommand", "mode": "off"})


@pytest.mark.slow
def test_spool_left_by_a_dead_database_is_replayed_by_the_next_crawl(own_server, tmp_path):
    env = {**os.environ, **OUTAGE_ENV, "MONGO_URI": own_server.uri, "MONGO_DATABASE": "nextstart",
           "FINEWS_DATA_DIR": str(tmp_path / "var")}
    own_server.kill()
    with ReplicaServer(ReplicaSite.from_folder()) as replica:
        command = [sys.executable, "-m", "scrapy", "crawl", "category", "-a", f"site={replica.url}"]
        down = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert down.returncode == 0, down.stderr[-3000:]
        # 49 posts and 1 reject at least (a media twin after its rolling twin is
        # a second write of one post); none lost.
        assert stat(down.stderr, "finews/db/spooled") >= 50
        own_server.start()
        up = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert up.returncode == 0, up.stderr[-3000:]
    assert stat(up.stderr, "finews/db/replayed") >= 49
    with connect(own_server.uri) as client:
        assert {d["_id"] for d in client.nextstart.posts.find({}, {"_id": 1})} == valid_corpus_codes()
        assert client.nextstart.rejects.count_documents({}) == 1


@pytest.mark.slow
def test_a_crawl_with_the_database_down_throughout_spools_all_and_its_record_lands_at_replay(own_server, tmp_path):
    env = {**os.environ, **OUTAGE_ENV, "MONGO_URI": own_server.uri, "MONGO_DATABASE": "downall",
           "FINEWS_DATA_DIR": str(tmp_path / "var"), "MONGO_TIMEOUT_MS": "2000"}
    site = ReplicaSite.scaled(600)
    own_server.kill()
    with ReplicaServer(site) as replica:
        down = subprocess.run([sys.executable, "-m", "scrapy", "crawl", "category", "-a", f"site={replica.url}"],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert down.returncode == 0, down.stderr[-3000:]
    assert stat(down.stderr, "finews/db/spooled") == 600
    # The breaker: the known-posts query is tried only by the probes, not by
    # every listing page (each of which waited out the timeout on the reactor).
    listings = stat(down.stderr, "finews/known_check_failed")
    assert listings >= 2 and down.stderr.count("Cannot check known posts") < listings
    assert "Run record" in down.stderr and "spooled to" in down.stderr

    own_server.start()
    replay = subprocess.run([sys.executable, "-m", "finews.cli", "replay", "--data-dir", str(tmp_path / "var")],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert replay.returncode == 0, replay.stderr
    with connect(own_server.uri) as client:
        assert {d["_id"] for d in client.downall.posts.find({}, {"_id": 1})} == {e.post.raw_code for e in site.entries}
        runs = list(client.downall.crawl_runs.find())
        assert [(r["spider"], r["outcome"]) for r in runs] == [("category", "partial")]
        assert runs[0]["started_at"] <= runs[0]["ended_at"] and runs[0]["stored"] == 0


@pytest.mark.slow
def test_posts_replayed_at_the_end_of_a_run_count_as_stored(own_server, tmp_path):
    env = {**os.environ, **OUTAGE_ENV, "MONGO_URI": own_server.uri, "MONGO_DATABASE": "endreplay",
           "FINEWS_DATA_DIR": str(tmp_path / "var"), "MONGO_RETRY_ATTEMPTS": "1", "MONGO_OUTAGE_COOLDOWN": "1",
           "MONGO_BATCH_SIZE": "10", "FINEWS_CONCURRENT_REQUESTS": "2"}
    plan = FaultPlan.parse("slow=1.0", slow_seconds=0.3)
    spool = tmp_path / "var" / "spool"
    with connect(own_server.uri) as client, ReplicaServer(ReplicaSite.from_folder(), faults=plan) as replica:
        # Writes of posts fail as a primary shutting down would, until we stop it.
        client.admin.command({"configureFailPoint": "failCommand", "mode": "alwaysOn",
                              "data": {"failCommands": ["update"], "errorCode": 91}})
        crawl = subprocess.Popen([sys.executable, "-m", "scrapy", "crawl", "category", "-a", f"site={replica.url}"],
                                 cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        assert _wait_for(lambda: spool.is_dir() and list(spool.glob("spool-*.jsonl")), timeout=120)
        client.admin.command({"configureFailPoint": "failCommand", "mode": "off"})
        log = crawl.communicate(timeout=600)[1]
        assert crawl.returncode == 0, log[-3000:]
        run = client.endreplay.crawl_runs.find_one()
        stored = client.endreplay.posts.count_documents({})
    assert stored == 49 and stat(log, "finews/db/replayed_stored") > 0
    assert run["stored"] == (stat(log, "finews/posts/inserted") + stat(log, "finews/posts/updated")
                             + stat(log, "finews/db/replayed_stored"))
    assert run["stored"] >= 49
    # The replayed counter counts posts and rejects written, nothing else.
    assert 0 < stat(log, "finews/db/replayed") <= stat(log, "finews/db/spooled")
