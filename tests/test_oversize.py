"""Posts the database cannot take become rejects, never an outage; a bad
spooled batch is quarantined and the others replayed. Real server."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from bson import json_util

from finews.core.normalize import normalize_post
from finews.storage.db import connect
from finews.storage.store import PostStore, Spool
from tests.conftest import CORPUS, REFERENCE, ROOT
from tests.test_crawl import stat


def _post(code: str, text: str = "正文") -> dict:
    return normalize_post({
        "url": f"http://127.0.0.1:9/x/{code}.html", "title": "标题", "time_text": "2022-03-01 16:46:38",
        "body_html": f"<p>{text}</p>", "body_text": text, "raw_code": code,
        "tags": ["河北日报新闻"], "category": "hebeiribao",
    })


def _huge(code: str) -> dict:
    """A post like the 6 MB body of ``&`` that cleans to over 16 MB."""
    return _post(code, "&amp; " * 1_600_000)  # body_html 9.6 MB + body_text 9.6 MB


def test_a_post_over_the_size_limit_is_a_too_large_reject_with_its_sizes(db):
    counts, refused = PostStore(db).write_batch(
        [_post("NW202203012292975846"), _huge("NW202203012292975847")],
        [{"url": "http://x/a", "reason": "http_500", "spider": "category"}])
    assert counts["inserted"] == 1 and [r["reason"] for r in refused] == ["too_large"]
    reject = db.rejects.find_one({"reason": "too_large"})
    assert reject["raw_code"] == "NW202203012292975847"
    assert "over the 12582912-byte limit" in reject["detail"] and "body_text 9600000 characters" in reject["detail"]
    assert db.rejects.count_documents({"reason": "http_500"}) == 1  # the batch's own rejects are written too


def test_a_document_the_server_refuses_is_a_reject_and_the_rest_of_the_batch_is_stored(db):
    # No size check of our own: the driver and server refuse the 19 MB document.
    store = PostStore(db, max_document_bytes=64 * 1024 * 1024)
    posts = [_post("NW202203012292975846"), _huge("NW202203012292975847"), _post("NW202203012292975848", "另一")]
    counts, refused = store.write_batch(posts, [])
    assert counts["inserted"] == 2
    assert [r["reason"] for r in refused] == ["write_refused"] and "too large" in refused[0]["detail"]
    assert {d["_id"] for d in db.posts.find()} == {"NW202203012292975846", "NW202203012292975848"}
    assert db.rejects.count_documents({"reason": "write_refused"}) == 1
    assert db.write_journal.count_documents({}) == 0


def test_a_bad_spooled_batch_is_quarantined_and_replay_goes_on(db, tmp_path):
    spool = Spool(tmp_path / "spool")
    spool.append([_post("NW202203012292975846")], [])
    path = spool.append([{"title": "no code"}], [])  # a batch no store can take
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("{not json\n")
    spool.append([_huge("NW202203012292975847")], [])  # a post too large: a reject, not a bad batch
    spool.append([_post("NW202203012292975848", "另一")], [{"url": "http://x/b", "reason": "http_500"}])
    counts = spool.replay(PostStore(db))
    assert counts["inserted"] == 2 and counts["quarantined"] == 2 and counts["rejected/too_large"] == 1
    assert {d["_id"] for d in db.posts.find()} == {"NW202203012292975846", "NW202203012292975848"}
    assert {r["reason"] for r in db.rejects.find()} == {"too_large", "http_500"}
    assert not list((tmp_path / "spool").glob("spool-*"))
    quarantined = [json_util.loads(line) for f in (tmp_path / "spool" / "quarantine").iterdir()
                   for line in f.read_text(encoding="utf-8").splitlines()]
    assert [q["line"] for q in quarantined] == [1, 2]  # one file per spooled batch
    assert "KeyError" in quarantined[0]["reason"] and "no code" in quarantined[0]["batch"]
    assert quarantined[1]["batch"] == "{not json"
    assert spool.replay(PostStore(db)) == {}


@pytest.mark.slow
def test_an_oversized_post_in_a_crawl_is_rejected_and_nothing_is_spooled(mongo_uri, db, tmp_path):
    folder = tmp_path / "site"
    shutil.copytree(CORPUS, folder)
    big = REFERENCE.read_text(encoding="utf-8").replace("2292975846", "2292975999").replace(
        "<p>近日，", "<p>" + "大段正文。" * 60_000 + "</p><p>近日，", 1)
    (folder / "posts" / "2022-03-01-NW202203012292975999.md").write_text(big, encoding="utf-8")
    from finews.replica.server import ReplicaServer
    from finews.replica.site import ReplicaSite

    env = {**os.environ, "MONGO_URI": mongo_uri, "MONGO_DATABASE": db.name, "FINEWS_DATA_DIR": str(tmp_path / "var"),
           "FINEWS_AUTOTHROTTLE": "0", "MONGO_MAX_DOCUMENT_BYTES": "1000000"}
    with ReplicaServer(ReplicaSite.from_folder(folder)) as server:
        command = [sys.executable, "-m", "scrapy", "crawl", "category", "-a", f"site={server.url}"]
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        again = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert stat(result.stderr, "finews/rejected/too_large") == 1 and stat(result.stderr, "finews/db/spooled") == 0
    reject = db.rejects.find_one({"reason": "too_large"})
    assert reject["url"].endswith("NW202203012292975999.html") and "byte limit" in reject["detail"]
    assert db.posts.find_one({"_id": "NW202203012292975999"}) is None
    assert db.posts.find_one({"_id": "NW202203012292975846"}) is not None
    assert not (tmp_path / "var" / "spool").exists() or not list((tmp_path / "var" / "spool").glob("spool-*"))
    assert again.returncode == 0 and stat(again.stderr, "finews/db/spooled") == 0
    with connect(mongo_uri) as client:
        assert client[db.name].rejects.find_one({"reason": "too_large"})["count"] == 2
