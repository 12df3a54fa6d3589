"""The newslist spider: the five feeds of the replica, crawled into MongoDB."""

import json
import urllib.request

import pytest
from scrapy.http import Request, TextResponse
from scrapy.utils.test import get_crawler

from crawler.items import PostItem
from crawler.spiders.newslist import NewsListSpider
from finews.core.feeds import FEEDS, parse_feed
from finews.replica.faults import FaultPlan
from finews.replica.feeds import feed_answer, text_json
from finews.replica.server import ReplicaServer
from finews.replica.site import ReplicaSite
from tests.conftest import CORPUS
from tests.test_crawl import stat

TEXT = "/NewsData/GetNewsText.do"


@pytest.fixture
def own_replica():
    with ReplicaServer(ReplicaSite.from_folder(CORPUS)) as server:
        yield server


def text_requests(server) -> int:
    """GetNewsText.do requests the replica answered (its per-path counter)."""
    return sum(n for path, n in server.attempts.items() if path.startswith(TEXT))


def listed_items(site) -> dict[str, set[str]]:
    """info_code -> feeds listing it, read from the replica's feeds."""
    listed = {}
    for name, feed in FEEDS.items():
        body, _ = feed_answer(site, feed.path, feed.query.format(count=100))
        for item in parse_feed(name, body).items:
            listed.setdefault(item.info_code, set()).add(name)
    return listed


def _spider(**kwargs):
    crawler = get_crawler(NewsListSpider)
    return NewsListSpider.from_crawler(crawler, site="http://replica.test", **kwargs)


def _response(url, body, callback_kwargs=None):
    request = Request(url, cb_kwargs=callback_kwargs or {})
    return TextResponse(url, body=body.encode("utf-8"), request=request,
                        headers={"Content-Type": "application/json; charset=utf-8"})


def test_feed_callback_keeps_the_listing_and_asks_text_only_through_the_known_check(site):
    spider = _spider(feeds="media")
    body, _ = feed_answer(site, FEEDS["media"].path, FEEDS["media"].query.format(count=100), "feed_missing_fields")
    url = "http://replica.test" + FEEDS["media"].url("")
    out = list(spider.parse_feed(_response(url, body), feed="media"))
    listing = [o for o in out if isinstance(o, PostItem) and o.get("feed_listing")]
    rejects = [o for o in out if isinstance(o, PostItem) and o.get("reject_reason")]
    requests = [o for o in out if isinstance(o, Request)]
    assert len(listing) == 1 and len(listing[0]["feed_listing"]) == len(requests)
    assert rejects and {r["reject_reason"] for r in rejects} == {"missing_field"}
    answer = json.loads(feed_answer(site, FEEDS["media"].path, "type=45&count=100")[0])
    assert len(requests) + len(rejects) == len(answer["nodeList"])
    assert all(r.url.startswith("http://replica.test/NewsData/GetNewsText.do?id=NW") for r in requests)
    assert all(r.meta["known_check"][1] == "media" for r in requests)


def test_text_callback_takes_title_time_and_media_from_the_feed(site):
    spider = _spider()
    body, _ = feed_answer(site, FEEDS["rolling"].path, FEEDS["rolling"].query.format(count=100))
    item = next(i for i in parse_feed("rolling", body).items if i.site_code == "202204212352227421")
    url = f"http://replica.test{TEXT}?id={item.text_id}"
    payload = text_json(site, item.text_id)
    (post,) = spider.parse_text(_response(url, payload), feed="rolling", fields=item.fields, code=item.site_code)
    assert (post["title"], post["time_text"], post["media"], post["category"]) == (
        item.title, "2022-04-21 18:31:09", "东财滚动", "emnews")
    assert post["raw_html"].startswith("<blockquote>") and post["text_payload"] == payload
    assert post["time_source"] == "feed" and post["raw_code"] == "202204212352227421"
    (empty,) = spider.parse_text(_response(url, json.dumps({"content": "", "text": "x"})), feed="rolling",
                                 fields=item.fields, code=item.site_code)
    assert empty["reject_reason"] == "empty_text"


@pytest.mark.parametrize("kwargs", [{"feeds": "rolling,nope"}, {"count": "0"}, {"list_api": "not-a-url"},
                                    {"refresh": "sometimes"}])
def test_bad_arguments_are_refused(kwargs):
    with pytest.raises(ValueError):
        _spider(**kwargs)


def test_hosts_default_to_the_real_ones_and_can_each_be_moved():
    crawler = get_crawler(NewsListSpider)
    spider = NewsListSpider.from_crawler(crawler)
    assert spider.hosts == {"list": "http://183.136.162.242", "market": "http://43.240.125.15:1818",
                            "text": "http://finews.zning.xyz"}
    moved = NewsListSpider.from_crawler(get_crawler(NewsListSpider), market_api="http://127.0.0.1:9")
    assert moved.hosts["market"] == "http://127.0.0.1:9" and moved.hosts["list"] == "http://183.136.162.242"
    assert "127.0.0.1" in moved.allowed_domains
    both = NewsListSpider.from_crawler(get_crawler(NewsListSpider), site="http://a.test", text_site="http://b.test")
    assert both.hosts == {"list": "http://a.test", "market": "http://a.test", "text": "http://b.test"}


def test_runs_fetch_only_what_is_new(crawl, own_replica, db):
    listed = listed_items(own_replica.site)
    items = sum(len(feeds) for feeds in listed.values())
    first = crawl("newslist", f"site={own_replica.url}")
    assert text_requests(own_replica) == items  # one per listed item
    assert {d["_id"] for d in db.posts.find({}, {"_id": 1})} == set(listed)
    assert stat(first.stderr, "finews/posts/inserted") == len(listed)
    assert db.rejects.count_documents({}) == 0
    assert db.feed_items.count_documents({}) == items
    twin = db.posts.find_one({"_id": "NW202204212352227421"})
    assert (twin["kind"], twin["time_source"], sorted(twin["sources"])) == ("media", "feed", ["media", "rolling"])

    before = text_requests(own_replica)
    second = crawl("newslist", f"site={own_replica.url}")
    assert text_requests(own_replica) - before == 0
    assert stat(second.stderr, "finews/skipped_known") == items

    request = urllib.request.Request(own_replica.url + "/_admin/add?n=3", method="POST")
    added = json.loads(urllib.request.urlopen(request, timeout=10).read())["codes"]
    new_items = sum(len(feeds) for code, feeds in listed_items(own_replica.site).items() if code in added)
    assert new_items >= 3
    before = text_requests(own_replica)
    third = crawl("newslist", f"site={own_replica.url}")
    assert text_requests(own_replica) - before == new_items
    assert stat(third.stderr, "finews/posts/inserted") == 3
    assert db.posts.count_documents({}) == len(listed) + 3


@pytest.mark.slow
def test_feed_faults_lose_nothing_for_good(crawl, db):
    """Damaged feeds and failing text requests: every item is stored or a
    reject with a reason, and a clean run afterwards fetches exactly what is missing."""
    plan = FaultPlan.parse("feed_bad_json=0.15,feed_no_items=0.1,feed_html_error=0.1,feed_missing_fields=0.2,"
                           "status500=0.1,truncate=0.05", seed=4)
    site = ReplicaSite.from_folder(CORPUS)
    listed = listed_items(site)
    with ReplicaServer(site, faults=plan) as server:
        result = crawl("newslist", f"site={server.url}", check=False)
    assert result.returncode == 0, result.stderr[-2000:]  # scrapy crawl: a partial run is 0 (README)
    kinds = {d["_id"]: d["kind"] for d in db.posts.find({}, {"kind": 1})}
    assert set(kinds) <= set(listed)
    reasons = {r["reason"] for r in db.rejects.find()}
    assert reasons and reasons <= {"missing_field", "bad_json", "feed_no_items", "truncated", "http_500"}
    fetch_failed = reasons & {"bad_json", "truncated", "http_500"}  # fetch reasons make a run partial (docs/schema.md)
    assert db.crawl_runs.find_one()["outcome"] == ("partial" if fetch_failed else "clean"), reasons
    # What a clean run must fetch: items of posts not stored, and media items
    # of posts stored only as their rolling twin (the media version replaces it).
    expected = sum(len(feeds) if code not in kinds else
                   (len(feeds - {"rolling"}) if kinds[code] == "rolling" else 0)
                   for code, feeds in listed.items())
    with ReplicaServer(site) as server:
        crawl("newslist", f"site={server.url}")
        assert text_requests(server) == expected
    assert {d["_id"] for d in db.posts.find({}, {"_id": 1})} == set(listed)


def test_deploy_polls_the_feeds_every_5_minutes_and_the_mirror_hourly():
    import configparser

    import yaml

    from finews.cli.config import load_config
    from tests.conftest import ROOT

    deploy = ROOT / "deploy"
    feeds, mirror = (load_config(deploy / name, environ={}) for name in ("finews.toml", "finews-category.toml"))
    assert ([j.spider for j in feeds.jobs], feeds.every) == (["newslist"], 300)
    assert ([j.spider for j in mirror.jobs], mirror.every) == (["category"], 3600)
    assert "COPY deploy/finews-category.toml /etc/finews/finews-category.toml" in (deploy / "Dockerfile").read_text()
    cron = {name: next(d for d in yaml.safe_load_all((deploy / "kubernetes" / name).read_text())
                       if d["kind"] == "CronJob")
            for name in ("cronjob.yaml", "cronjob-category.yaml")}
    assert cron["cronjob.yaml"]["spec"]["schedule"] == "*/5 * * * *"
    assert cron["cronjob-category.yaml"]["spec"]["schedule"].split()[1:] == ["*"] * 4
    args = cron["cronjob-category.yaml"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args == ["run", "--config", "/etc/finews/finews-category.toml"]
    services = yaml.safe_load((deploy / "docker-compose.yml").read_text())["services"]
    assert services["crawler-category"]["command"][-2:] == ["--every", "1h"]
    timer = configparser.ConfigParser(interpolation=None)
    timer.read(deploy / "systemd" / "finews-category.timer")
    assert timer["Timer"]["OnCalendar"] == "*:17"  # hourly
    service = configparser.ConfigParser(strict=False, interpolation=None)
    service.read(deploy / "systemd" / "finews-category.service")
    assert service["Service"]["ExecStart"].endswith("--config /etc/finews/finews-category.toml")
