"""The embedded database a crawl starts (``MONGO_URI`` unset): a
standalone server that never outlives the crawl, even one killed with -9."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from finews.replica.server import ReplicaServer
from finews.replica.site import ReplicaSite
from finews.storage.db import STATE_FILE, connect
from finews.storage.process import alive
from tests.conftest import ROOT


def _wait(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


@pytest.mark.slow
def test_a_killed_crawl_takes_its_embedded_server_with_it(tmp_path):
    """Before: the ``python -m secantus`` child of a crawl killed with -9 ran
    on forever (orphaned, ~15% of a core while idle)."""
    site = ReplicaSite.scaled(600)
    env = {key: value for key, value in os.environ.items() if key != "MONGO_URI"}
    env.update(FINEWS_DATA_DIR=str(tmp_path / "var"), FINEWS_AUTOTHROTTLE="0", FINEWS_CONCURRENT_REQUESTS="2",
               MONGO_BATCH_SIZE="10")
    state_file = tmp_path / "var" / "db" / STATE_FILE
    with ReplicaServer(site) as replica:
        command = [sys.executable, "-m", "scrapy", "crawl", "category", "-a", f"site={replica.url}"]
        victim = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait(state_file.exists, 120, "the crawl did not start its database")
            server = json.loads(state_file.read_text())
            with connect(f"mongodb://{server['host']}:{server['port']}/") as client:
                _wait(lambda: client.finews.posts.count_documents({}) >= 100, 120, "the crawl did not get going")
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            _wait(lambda: not alive(server["pid"]), 30, "the embedded server outlived its crawl")
        finally:
            victim.kill()
        rerun = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "Started the embedded database" in rerun.stderr  # not the dead one's state file
    assert not state_file.exists(), "the rerun's own server stopped with it"
    # The rerun's server is stopped; read the stored posts through a new one.
    from finews.storage.db import EmbeddedMongo

    with EmbeddedMongo(tmp_path / "var" / "db") as check, connect(check.uri) as client:
        stored = {d["_id"] for d in client.finews.posts.find({}, {"_id": 1})}
    assert stored == {entry.post.raw_code for entry in site.entries}


def test_the_embedded_server_keeps_no_oplog(mongo_uri):
    """Standalone: no replica-set name, so no oplog written on every insert
    (40% of an insert's cost); change-stream readers need a replica set."""
    if os.environ.get("MONGO_URI"):
        pytest.skip("the tests run against another server")
    with connect(mongo_uri) as client:
        assert "setName" not in client.admin.command("hello")
