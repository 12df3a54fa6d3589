"""kill -9 while a batch is being written, at each step between its writes:
after one rerun every stored post has its source and its near-duplicate
signature. Real crawler processes (the killed one stopped at its step by
tests/helpers/paused_crawl.py, not by any hook of the store), real server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from finews.core.minhash import signature
from finews.storage.db import NEAR_DUPLICATE_INDEX, RAW_ARTICLES
from tests.conftest import ROOT


def _unfinished(db) -> tuple[set, set]:
    """Stored posts without a kept source, and without a signature they should have."""
    posts = {d["_id"]: d.get("body_text", "") for d in db.posts.find({}, {"body_text": 1})}
    sourced = {d["_id"] for d in db[RAW_ARTICLES].find({}, {"_id": 1})}
    signed = {d["_id"] for d in db[NEAR_DUPLICATE_INDEX].find({}, {"_id": 1})}
    unsigned = {code for code, text in posts.items() if code not in signed and signature(text) is not None}
    return set(posts) - sourced, unsigned


@pytest.mark.slow
@pytest.mark.parametrize("step", ["raw_kept", "posts_inserted", "signed"])
def test_kill_9_between_the_writes_of_a_batch_then_one_rerun_leaves_nothing_unfinished(
        step, replica, mongo_uri, db, tmp_path):
    paused = tmp_path / "paused"
    env = {**os.environ, "MONGO_URI": mongo_uri, "MONGO_DATABASE": db.name, "FINEWS_DATA_DIR": str(tmp_path / "var"),
           "FINEWS_AUTOTHROTTLE": "0", "MONGO_BATCH_SIZE": "10"}
    crawl = ["crawl", "category", "-a", f"site={replica.url}"]
    command = [sys.executable, "-m", "scrapy", *crawl]
    victim = subprocess.Popen([sys.executable, "-m", "tests.helpers.paused_crawl", step, str(paused), "--", *crawl],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not paused.exists():
        assert time.monotonic() < deadline and victim.poll() is None, "the writer never reached the step"
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    if step == "posts_inserted":
        assert _unfinished(db)[1], "the kill left posts stored and not yet signed"
    rerun = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    missing_source, unsigned = _unfinished(db)
    assert (missing_source, unsigned) == (set(), set())
    assert db.posts.count_documents({}) == 49
    assert db.write_journal.count_documents({}) == 0


def test_no_production_code_waits_on_a_test_variable():
    """Once the store slept an hour at a step named by FINEWS_TEST_PAUSE_AT:
    a variable left set in production would have stalled every crawl."""
    hooks = [str(path.relative_to(ROOT)) for folder in ("finews", "crawler", "pipelines")
             for path in (ROOT / folder).rglob("*.py") if "FINEWS_TEST_" in path.read_text(encoding="utf-8")]
    assert hooks == []
