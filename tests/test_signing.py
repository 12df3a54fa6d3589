"""Signing near-duplicate texts in a child process: the same signatures as
in the crawl's own process, the crawl's own process taking over when the
child fails, and no child outliving its parent."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from scrapy.utils.test import get_crawler

from crawler.items import PostItem
from crawler.spiders.category import CategorySpider
from finews.core.clean import clean_article
from finews.core.minhash import signatures
from finews.core.normalize import normalize_post
from finews.core.pages import parse_post_page
from finews.storage.process import alive
from finews.storage.signing import SigningProcess
from pipelines.mongo import MongoPipeline

PAIR = ("202112082206781916", "202112082206672930")  # the same story under two codes
OTHER = "NW202203012292975846"


def _texts(site, count=None) -> list[str]:
    return [clean_article(parse_post_page(site.post_page(entry)).body_html).body_text
            for entry in site.entries[:count]]


def _same(a, b) -> bool:
    return len(a) == len(b) and all(
        (x is None and y is None) or (x is not None and y is not None and x.dtype == y.dtype and (x == y).all())
        for x, y in zip(a, b, strict=True))


def _gone(pid: int, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            waited, _ = os.waitpid(pid, os.WNOHANG)  # reap it if it is our child
        except ChildProcessError:
            waited = 0
        if waited == pid or not alive(pid):
            return True
        time.sleep(0.05)
    return False


def test_the_child_signs_exactly_as_this_process_does(site):
    texts = [*_texts(site), "", "，。 ", "a"]
    with SigningProcess() as signer:
        assert _same(signer(texts), signatures(texts))
        pid = signer.pid
        os.kill(pid, signal.SIGINT)  # Ctrl-C reaches the whole process group; the crawl still needs it
        assert _same(signer(texts[:3]), signatures(texts[:3]))
        assert signer.fallback is None and signer.pid == pid
    assert _gone(pid)


def test_a_killed_child_is_replaced_by_signing_here(site):
    texts = _texts(site, 10)
    with SigningProcess() as signer:
        signer(texts[:1])
        os.kill(signer.pid, signal.SIGKILL)
        assert _same(signer(texts), signatures(texts))
        assert "ended" in signer.fallback and signer.pid is None
        assert _same(signer(texts), signatures(texts))  # and goes on doing so


@pytest.mark.slow  # a process of its own, or a scale: kept out of the fast suite's time
def test_a_stuck_child_is_killed_after_the_timeout(site):
    texts = _texts(site, 5)
    with SigningProcess() as signer:
        signer(texts[:1])
        signer.timeout = 0.5
        pid = signer.pid
        os.kill(pid, signal.SIGSTOP)
        started = time.monotonic()
        assert _same(signer(texts), signatures(texts))
        assert time.monotonic() - started < 10 and "in time" in signer.fallback
        assert _gone(pid)


@pytest.mark.slow  # a process of its own, or a scale: kept out of the fast suite's time
def test_a_huge_article_gets_time_in_proportion_to_its_length():
    """Slow to sign anywhere, so no sign of a stuck child."""
    rng = random.Random(1)
    text = "".join(chr(0x4E00 + rng.randrange(3000)) for _ in range(300_000))  # ~1 s to sign: no shingle twice
    with SigningProcess() as signer:
        signer(["离岸人民币升至6.35"])
        signer.timeout = 0.2
        assert signer([text])[0] is not None
        assert signer.fallback is None


def test_a_child_answering_nonsense_is_not_believed(site, monkeypatch):
    texts = _texts(site, 3)
    nonsense = ("import struct, sys, time; sys.stdin.buffer.read(8); "
                "sys.stdout.buffer.write(struct.pack('>Q', 3) + b'abc'); sys.stdout.flush(); time.sleep(30)")
    monkeypatch.setattr(SigningProcess, "command", [sys.executable, "-c", nonsense])
    with SigningProcess() as signer:
        assert _same(signer(texts), signatures(texts))
        assert signer.fallback and signer.pid is None


@pytest.mark.slow  # a process of its own, or a scale: kept out of the fast suite's time
def test_the_child_ends_with_a_parent_killed_by_kill_9(tmp_path):
    """A script with no ``__main__`` guard, as a user's would be: the child
    must not re-run it, and must exit once the parent is gone."""
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent("""
        import sys, time
        from finews.storage.signing import SigningProcess
        signer = SigningProcess()
        signer(["离岸人民币升至6.35"])
        print(signer.pid, signer.fallback, flush=True)
        time.sleep(120)
    """), encoding="utf-8")
    parent = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, stdout=subprocess.PIPE, text=True)
    try:
        pid, fallback = parent.stdout.readline().split()
        assert fallback == "None"
        assert alive(int(pid))
        parent.kill()
        parent.wait()
        assert _gone(int(pid))
    finally:
        parent.kill()
        parent.wait()


def _item(site, code: str) -> PostItem:
    page = parse_post_page(site.post_page(site.share_entry(code)))
    body = clean_article(page.body_html)
    return PostItem(spider="category", **normalize_post({
        "url": f"http://127.0.0.1:9/x/{code}.html", "title": page.title or code, "time_text": "2022-03-01 16:46:38",
        "body_html": body.body_html, "body_text": body.body_text, "raw_code": code, "tags": [], "category": "x",
    }))


def _pipeline(mongo_uri, db_name, tmp_path):
    crawler = get_crawler(CategorySpider, {"MONGO_URI": mongo_uri, "MONGO_DATABASE": db_name,
                                          "FINEWS_DATA_DIR": str(tmp_path), "MONGO_BATCH_SIZE": 2})
    crawler.stats.open_spider()
    return crawler, MongoPipeline.from_crawler(crawler)


@pytest.mark.parametrize("child", ["answers", "killed"])
def test_the_pipeline_flags_through_its_child_or_without_it(db, mongo_uri, db_name, site, tmp_path, child):
    crawler, pipeline = _pipeline(mongo_uri, db_name, tmp_path)
    pipeline.open_spider()
    pid = pipeline.signer.pid
    assert pid and alive(pid)  # started with the crawl, not at the first batch
    if child == "killed":
        os.kill(pid, signal.SIGKILL)
    for code in (*PAIR, OTHER):
        pipeline.process_item(_item(site, code))
    pipeline.close_spider()
    flagged = {d["_id"]: d.get("near_duplicates") for d in db.posts.find({}, {"near_duplicates": 1})}
    assert flagged == {"NW" + PAIR[0]: ["NW" + PAIR[1]], "NW" + PAIR[1]: ["NW" + PAIR[0]], OTHER: None}
    assert crawler.stats.get_value("finews/posts/near_duplicate_pairs") == 1
    assert crawler.stats.get_value("finews/signing_fallback") == (1 if child == "killed" else None)
    if child == "answers":  # what it cost in memory, for bench/memory.py and operators
        assert crawler.stats.get_value("finews/signing_peak_rss_kib") > 10_000
    assert _gone(pid)

