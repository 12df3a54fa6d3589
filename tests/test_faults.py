"""Bad servers and bad pages: nothing lost, nothing crashes, every failure
explained. Real crawls against a replica that misbehaves on purpose."""

import json

import pytest

from finews.core.pages import PageError, decode_page
from finews.replica.faults import FaultPlan
from finews.replica.server import ReplicaServer
from finews.replica.site import ReplicaSite
from tests.conftest import CORPUS, corpus_posts, valid_corpus_codes
from tests.test_crawl import stat

ISSUE_SPEC = ("status500=0.1,status429=0.05,timeout=0.05,truncate=0.02,gbk=0.05,"
              "garbage=0.02,redirect_offsite=0.01,slow=0.05")


@pytest.fixture
def faulty():
    def start(spec, seed=1, site=None):
        plan = FaultPlan.parse(spec, seed=seed, hang_seconds=5, slow_seconds=0.5)
        return ReplicaServer(site or ReplicaSite.from_folder(CORPUS), faults=plan)
    return start


def _crawl(crawl, spider, *args, check=True):
    return crawl(spider, *args, env={"FINEWS_DOWNLOAD_TIMEOUT": "2"}, check=check)


def test_every_post_survives_the_issue_fault_mix(crawl, db, faulty):
    with faulty(ISSUE_SPEC) as server:
        result = _crawl(crawl, "category", f"site={server.url}")
        served = dict(server.faults_served)
    log = result.stderr
    assert {d["_id"] for d in db.posts.find({}, {"_id": 1})} == valid_corpus_codes()
    titles = {p.title for p in corpus_posts() if p.title}
    assert all(d["title"] in titles for d in db.posts.find({}, {"title": 1}))  # GBK pages decoded right
    # The init post has no article link; the dateless file is not published (as by real Jekyll).
    assert {r["reason"] for r in db.rejects.find()} == {"missing_link"}
    assert set(served) >= {"status500", "status429", "timeout", "gbk", "slow"}
    assert stat(log, "retry/count") >= sum(v for k, v in served.items() if k not in ("gbk", "slow"))
    assert stat(log, "finews/retry_after_waits") == served["status429"]
    fetched = "".join(line for line in log.splitlines() if "DNS" in line or "Crawled" in line)
    assert "finews-offsite.invalid" not in fetched


def test_share_pages_survive_the_fault_mix(crawl, db, faulty, site, tmp_path):
    codes = tmp_path / "codes.txt"
    codes.write_text("\n".join(site.share_codes()), encoding="utf-8")
    with faulty(ISSUE_SPEC, seed=2) as server:
        _crawl(crawl, "newsshare", f"site={server.url}", f"codes_file={codes}")
    assert {d["_id"] for d in db.posts.find({}, {"_id": 1})} == valid_corpus_codes()
    assert db.rejects.count_documents({}) == 0


def test_pages_that_never_recover_are_rejects_with_their_reason(crawl, db, faulty):
    with faulty("status500=1.0") as server:
        result = _crawl(crawl, "category", f"site={server.url}", "categories=hebeiribao", check=False)
    assert result.returncode == 1  # nothing could be fetched: the run failed
    reject = db.rejects.find_one()
    assert reject["reason"] == "http_500" and reject["url"].endswith("/category/hebeiribao.html")
    assert stat(result.stderr, "finews/fetch_failed/http_500") == 1
    assert stat(result.stderr, "retry/reason_count/500 Internal Server Error") == 5


@pytest.mark.parametrize("spec, reason", [
    ("redirect_offsite=1.0", "redirect_offsite"),
    ("garbage=1.0", "not_text"),
    ("truncate=1.0", "truncated"),
])
def test_persistent_damage_is_retried_then_rejected(crawl, db, faulty, spec, reason):
    with faulty(spec) as server:
        result = _crawl(crawl, "category", f"site={server.url}", "categories=hebeiribao", check=False)
    assert result.returncode in (0, 1)  # partial, or failed when no response came back at all
    assert [r["reason"] for r in db.rejects.find()] == [reason]
    assert stat(result.stderr, f"retry/reason_count/{reason}") == 5
    assert "DNS lookup failed" not in result.stderr and "CannotResolveHost" not in result.stderr


def test_oversized_pages_are_refused(crawl, db, faulty):
    with faulty("oversize=1.0") as server:
        result = crawl("category", f"site={server.url}", "categories=hebeiribao",
                       env={"FINEWS_DOWNLOAD_MAXSIZE": str(1024 * 1024)}, check=False)
    assert result.returncode == 1  # nothing could be fetched: the run failed
    reject = db.rejects.find_one()
    assert reject is not None and reject["reason"] == "download_too_large"
    assert "larger than download max size" in result.stderr or "maxsize" in result.stderr.lower()
    assert db.posts.count_documents({}) == 0


def test_same_seed_same_faults():
    plan = FaultPlan.parse(ISSUE_SPEC, seed=5)
    draws = [plan.choose(f"/p/{i}.html", 0) for i in range(500)]
    assert draws == [FaultPlan.parse(ISSUE_SPEC, seed=5).choose(f"/p/{i}.html", 0) for i in range(500)]
    assert draws != [FaultPlan.parse(ISSUE_SPEC, seed=6).choose(f"/p/{i}.html", 0) for i in range(500)]
    assert 0.25 < sum(1 for d in draws if d) / 500 < 0.45  # the spec adds up to 0.35


@pytest.mark.parametrize("spec", ["nope=0.1", "status500=2", "status500=x", "status500=0.6,timeout=0.6"])
def test_bad_fault_specs_are_refused(spec):
    with pytest.raises(ValueError):
        FaultPlan.parse(spec)


def test_gbk_pages_decode_with_or_without_a_charset_header(site):
    html = site.post_page(site.share_entry("NW202203012292975846"))
    gbk = html.replace('<meta charset="utf-8">', '<meta charset="gbk">').encode("gbk", "xmlcharrefreplace")
    assert decode_page(gbk, "text/html; charset=gbk") == decode_page(gbk, "text/html") == html.replace(
        '<meta charset="utf-8">', '<meta charset="gbk">')
    undeclared_json = json.dumps({"text": "<p>河北日报</p>"}, ensure_ascii=False).encode("gbk")
    assert "河北日报" in decode_page(undeclared_json, "application/json", expect_html=False)


@pytest.mark.parametrize("body, content_type, reason", [
    (b"\x89PNG\r\n\x1a\n\x00\x00", "image/png", "not_text"),
    (b"\x00\x01\x02garbage", "text/html", "not_text"),
    (b"<html><body><section><h1>cut", "text/html", "truncated"),
])
def test_damaged_bodies_are_named(body, content_type, reason):
    with pytest.raises(PageError) as error:
        decode_page(body, content_type)
    assert error.value.reason == reason
