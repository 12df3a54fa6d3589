"""The spool against its own replay, a full disk, and posts the database
cannot take. A real MongoDB server (the embedded one); fast."""

from __future__ import annotations

import errno
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime

import pytest
from bson import json_util

from finews.core.normalize import normalize_post
from finews.core.reasons import Reason
from finews.storage.store import PostStore, Spool
from tests.conftest import ROOT


def _post(n: int, body: str = "<p>正文</p>") -> dict:
    code = f"NW2022030122{n:08d}"
    return normalize_post({
        "url": f"http://127.0.0.1:9/x/{code}.html", "title": f"标题{n}", "time_text": "2022-03-01 16:46:38",
        "body_html": body, "body_text": body.strip("<p>/"), "raw_code": code,
        "tags": ["河北日报新闻"], "category": "hebeiribao",
    })


def _files(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []


WRITER = """
import sys
from finews.storage.store import Spool
from tests.test_spool import _post

spool, batches, per_batch = Spool(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
for b in range(batches):
    spool.append([_post(b * per_batch + i, "<p>" + "长文" * 20000 + "</p>") for i in range(per_batch)], [])
"""


@pytest.mark.slow  # a process of its own, or a scale: kept out of the fast suite's time
def test_replay_running_while_a_process_spools_loses_none(db, tmp_path):
    """A crawl spools while ``finews replay`` (or a crawl's start/end replay)
    replays the same folder: every spooled post reaches the database once,
    and the spool ends empty. Before, a replay could claim a file between its
    creation and its write, read it empty and delete it (1,000 posts spooled,
    100 stored)."""
    spool = Spool(tmp_path / "spool")
    batches, per_batch = 20, 10
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(spool.folder), str(batches), str(per_batch)],
                              cwd=ROOT, stderr=subprocess.PIPE, text=True)
    store = PostStore(db, near_duplicates=False)
    replayed: Counter = Counter()
    while writer.poll() is None:
        replayed.update(spool.replay(store))
    assert writer.returncode == 0, writer.stderr.read()
    replayed.update(spool.replay(store))  # what was spooled after the last pass
    left = (replayed, _files(spool.folder), _files(spool.quarantine))
    assert db.posts.count_documents({}) == batches * per_batch, left
    assert replayed["inserted"] == batches * per_batch and replayed["unchanged"] == 0
    assert _files(spool.folder) == []


def test_a_line_cut_off_mid_character_is_quarantined_and_replay_goes_on(db, tmp_path):
    """A torn last line (a write that did not finish, cut inside a UTF-8
    character) is quarantined with its reason; before, ``finews replay``
    ended in a UnicodeDecodeError traceback and stored nothing after it."""
    spool = Spool(tmp_path / "spool")
    spool.append([_post(1)], [])
    whole = (json_util.dumps({"posts": [_post(2)], "rejects": []}, ensure_ascii=False) + "\n").encode()
    torn = json_util.dumps({"posts": [_post(3)], "rejects": []}, ensure_ascii=False).encode()
    cut = torn.index("标题3".encode()) + 1  # inside the first character's three bytes
    (spool.folder / "spool-1-999999999-0.jsonl").write_bytes(whole + torn[:cut])
    counts = spool.replay(PostStore(db, near_duplicates=False))
    assert counts["inserted"] == 2 and counts["quarantined"] == 1
    assert {d["_id"] for d in db.posts.find()} == {_post(1)["info_code"], _post(2)["info_code"]}
    [record] = [json_util.loads(line) for f in spool.quarantine.iterdir() for line in f.read_text().splitlines()]
    assert record["line"] == 2 and "cut off" in record["reason"]
    assert _files(spool.folder) == []


def test_a_spool_write_that_fails_leaves_nothing_to_replay(tmp_path, monkeypatch):
    """ENOSPC half way through a batch: the write raises, and no torn file is
    left that a replay would take (before: a torn line, replayed as garbage)."""
    import finews.storage.store as store_module

    real_open = open

    class FullDisk:
        def __init__(self, handle):
            self.handle = handle

        def write(self, data):
            self.handle.write(data[: len(data) // 2])
            self.handle.flush()
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.handle, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return self.handle.__exit__(*exc)

    monkeypatch.setattr(store_module, "open", lambda *a, **k: FullDisk(real_open(*a, **k)), raising=False)
    spool = Spool(tmp_path / "spool")
    with pytest.raises(OSError):
        spool.append([_post(i) for i in range(20)], [])
    assert _files(spool.folder) == []


def test_text_that_is_not_unicode_is_spooled_and_only_its_post_rejected(db, tmp_path):
    """A lone surrogate in one post: the spool still takes the batch, and at
    replay that post is an ``item_error`` reject while the others are stored
    (before: the spool write raised too, 0 bytes, the batch lost)."""
    spool = Spool(tmp_path / "spool")
    bad = _post(3) | {"title": "坏\ud800标题"}
    spool.append([_post(1), bad, _post(2)], [{"url": "http://x/\udfff", "reason": "http_500"}])
    counts = spool.replay(PostStore(db, near_duplicates=False))
    assert counts["inserted"] == 2 and counts["rejected/item_error"] == 1 and counts.get("quarantined", 0) == 0
    assert db.posts.count_documents({}) == 2
    reject = db.rejects.find_one({"reason": Reason.ITEM_ERROR})
    assert reject["raw_code"] == bad["info_code"] and "surrogates not allowed" in reject["detail"]
    assert "\n" not in reject["detail"] and reject["title"] == "坏\\ud800标题"
    assert db.rejects.find_one({"reason": "http_500"})["url"] == "http://x/\\udfff"


def test_a_time_past_the_stored_range_is_that_posts_reject(db):
    """Year 9999 handed to the writer with two good posts: those are stored
    and counted, it is a reject with its reason."""
    bad = _post(3) | {"published_at": datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)}
    counts, refused = PostStore(db).write_batch([_post(1), bad, _post(2)], [])
    assert counts["inserted"] == 2
    assert [(r["raw_code"], r["reason"]) for r in refused] == [(bad["info_code"], Reason.DATE_OUT_OF_RANGE)]
    assert {d["_id"] for d in db.posts.find()} == {_post(1)["info_code"], _post(2)["info_code"]}
    assert db.rejects.count_documents({"reason": Reason.DATE_OUT_OF_RANGE}) == 1


def test_an_error_raised_for_one_post_mid_write_costs_only_that_post(db, monkeypatch):
    """Any exception that is no outage (here an OverflowError in the insert of
    one post) makes that post an ``item_error`` reject; the rest is stored."""
    bad = _post(3)
    real_insert = PostStore._insert

    def insert(self, docs, *args, **kwargs):
        if any(doc["info_code"] == bad["info_code"] for doc in docs):
            raise OverflowError("date value out of range")
        return real_insert(self, docs, *args, **kwargs)

    monkeypatch.setattr(PostStore, "_insert", insert)
    counts, refused = PostStore(db).write_batch([_post(1), bad, _post(2)], [])
    assert counts["inserted"] == 2
    assert [(r["raw_code"], r["reason"], r["detail"]) for r in refused] == [
        (bad["info_code"], Reason.ITEM_ERROR, "OverflowError: date value out of range")]
    assert db.posts.count_documents({}) == 2 and db.write_journal.count_documents({}) == 0
