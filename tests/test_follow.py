"""``finews follow`` while two crawlers write and a spool is replayed: every
change seen exactly once, in order. Real processes on loopback.

The expected changes come from the stored posts (a post at version N was
written N times), not from the change log the follower reads.
"""

import json
import os
import subprocess
import sys
import time

import pytest

from finews.core.normalize import normalize_post
from finews.replica.server import ReplicaServer
from finews.replica.site import ReplicaSite
from finews.storage.store import Spool
from tests.conftest import ROOT


def _spooled_post(n: int, code: str | None = None) -> dict:
    """A post of a batch spooled earlier: a new code, or a replica post's
    code with other words (a revision, before or after the crawl's copy)."""
    code = code or f"NW2030010100000{n:05d}"
    return normalize_post({
        "url": f"http://127.0.0.1:9/x/{code}.html", "title": f"补写{n}", "time_text": "2022-03-01 16:46:38",
        "body_html": f"<p>补写正文{n}</p>", "body_text": f"补写正文{n}", "raw_code": code,
        "tags": ["河北日报新闻"], "category": "hebeiribao",
    })


def _lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.mark.slow
def test_the_follower_sees_every_change_once_while_two_crawlers_write_and_a_spool_is_replayed(
        mongo_uri, db, tmp_path):
    env = {**os.environ, "MONGO_URI": mongo_uri, "MONGO_DATABASE": db.name, "FINEWS_AUTOTHROTTLE": "0",
           "MONGO_BATCH_SIZE": "20"}
    site = ReplicaSite.scaled(400)
    codes = [entry.post.raw_code for entry in site.entries]
    spool = Spool(tmp_path / "replayer" / "spool")
    for start in range(0, 200, 20):
        spool.append([_spooled_post(n, codes[n] if n % 2 else None) for n in range(start, start + 20)], [])
    followed = tmp_path / "changes.jsonl"
    follower = subprocess.Popen([sys.executable, "-m", "finews.cli", "follow", "--poll", "0.2"],
                                cwd=ROOT, env=env, stdout=followed.open("w"), stderr=subprocess.PIPE, text=True)
    try:
        with ReplicaServer(site) as replica:
            crawls = [subprocess.Popen([sys.executable, "-m", "scrapy", "crawl", spider, "-a", f"site={replica.url}"],
                                       cwd=ROOT, env={**env, "FINEWS_DATA_DIR": str(tmp_path / spider)},
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                      for spider in ("category", "newslist")]
            time.sleep(3)  # the crawlers are writing
            replay = subprocess.run([sys.executable, "-m", "finews.cli", "replay",
                                     "--data-dir", str(tmp_path / "replayer")],
                                    cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
            assert replay.returncode == 0, replay.stderr[-2000:]
            for crawl in crawls:
                log = crawl.communicate(timeout=900)[1]
                assert crawl.returncode == 0, log[-3000:]
        written = sorted((post["_id"], version) for post in db.posts.find({}, {"version": 1})
                         for version in range(1, post["version"] + 1))
        assert len({code for code, _ in written}) == 400 + 100
        assert len([code for code, version in written if version > 1]) >= 50  # revisions too
        deadline = time.monotonic() + 60
        while len(_lines(followed)) < len(written) and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(1)  # anything more would be a repeat
    finally:
        follower.terminate()
        follower.wait(30)
    seen = _lines(followed)
    assert sorted((c["info_code"], c["version"]) for c in seen) == written
    assert [c["position"] for c in seen] == sorted({c["position"] for c in seen})
