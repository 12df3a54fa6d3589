"""The real spiders, run as ``scrapy crawl`` against the replica, into MongoDB."""

import re
from datetime import UTC, datetime

import pytest
from scrapy import signals
from scrapy.utils.test import get_crawler

from crawler.scheduler import JobScheduler
from crawler.spiders.category import CategorySpider
from finews.replica.server import ReplicaServer
from finews.replica.site import ReplicaSite
from tests.conftest import CORPUS, valid_corpus_codes


def stat(log: str, key: str) -> int:
    match = re.search(rf"'{re.escape(key)}': (\d+)", log)
    return int(match.group(1)) if match else 0


def test_category_crawl_stores_every_valid_post_exactly_once(crawl, replica, db):
    result = crawl("category", f"site={replica.url}")
    assert {d["_id"] for d in db.posts.find({}, {"_id": 1})} == valid_corpus_codes()
    assert db.posts.count_documents({}) == 49
    assert stat(result.stderr, "finews/posts/inserted") + stat(result.stderr, "finews/posts/updated") >= 49

    rejects = {r["url"].split(replica.url)[1]: r for r in db.rejects.find()}
    # The dateless file is not published by real Jekyll; a replica that still serves it gets it rejected.
    dateless = "/emnews/-202205262391921712.html"
    assert set(rejects) - {dateless} == {"/sitenews/2021/12/01/init.html"}
    if dateless in rejects:
        assert (rejects[dateless]["reason"], rejects[dateless]["spider"]) == ("missing_title", "category")
    assert rejects["/sitenews/2021/12/01/init.html"]["reason"] == "missing_link"
    assert db.crawl_runs.find_one()["outcome"] == "clean"
    assert all(isinstance(r["last_seen_at"], datetime) for r in rejects.values())

    flagged = {d["_id"]: d["near_duplicates"] for d in db.posts.find({"near_duplicates": {"$exists": True}})}
    assert flagged == {"NW202112082206781916": ["NW202112082206672930"],
                       "NW202112082206672930": ["NW202112082206781916"]}

    twin = db.posts.find_one({"_id": "NW202204212352227421"})
    assert (twin["kind"], twin["category"], twin["media"]) == ("media", "yangshixinwenkehuduan", "央视新闻客户端")

    # It ends as `finews run` does: the summary table on stdout, counted from what reached the database.
    lines = result.stdout.splitlines()
    header = lines[0].split()
    row = dict(zip(header, lines[2].split(), strict=True))
    assert row["spider"] == "category"
    assert int(row["stored"]) + int(row["updated"]) + int(row["unchanged"]) == 49
    assert int(row["rejected"]) == len(rejects)
    assert lines[-1] == "outcome: clean"


def test_reference_post_is_stored_exactly(crawl, replica, db):
    crawl("category", f"site={replica.url}", "categories=河北日报")
    post = db.posts.find_one({"_id": "NW202203012292975846"})
    assert post["info_code"] == "NW202203012292975846"
    assert post["title"] == "《河北省制造业高质量发展“十四五”规划》出台 实施八项行动 构建现代化制造业体系"
    assert post["published_at"] == datetime(2022, 3, 1, 8, 46, 38, tzinfo=UTC)
    assert (post["media"], post["category"], post["tags"]) == ("河北日报", "hebeiribao", ["河北日报新闻"])
    paragraphs = post["body_text"].split("\n")
    assert len(paragraphs) == 16  # the corpus file's 16 <p>; see docs/schema.md
    assert paragraphs[0].startswith("近日，省政府新闻办召开新闻发布会")
    assert paragraphs[-1] == "（文章来源：河北日报）"
    assert post["url"] == f"{replica.url}/hebeiribao/2022/03/01/NW202203012292975846.html"
    assert post["source_url"] == "http://finews.zning.xyz/html_News/NewsShare.html?infoCode=NW202203012292975846"
    assert post["images"] == [] and len(post["content_hash"]) == 64 and post["version"] == 1
    assert post["first_seen_at"] == post["crawled_at"]
    assert db.posts.count_documents({}) == 1


def test_second_crawl_adds_no_document(crawl, replica, db):
    crawl("category", f"site={replica.url}")
    first = {d["_id"]: d for d in db.posts.find()}
    result = crawl("category", f"site={replica.url}")
    second = {d["_id"]: d for d in db.posts.find()}
    assert second.keys() == first.keys()
    assert stat(result.stderr, "finews/posts/inserted") == 0
    assert all(second[k]["first_seen_at"] == first[k]["first_seen_at"] for k in first)
    assert db.rejects.count_documents({"url": {"$regex": "/sitenews/2021/12/01/init.html$"}}) == 1
    assert all(r["count"] == 2 for r in db.rejects.find())


def test_categories_accept_slugs_and_media_names(crawl, replica, db):
    crawl("category", f"site={replica.url}", "categories=cailianshe,中国基金报")
    assert {d["category"] for d in db.posts.find()} == {"cailianshe", "zhongguojijinbao"}
    assert db.posts.count_documents({}) == 4


def test_newsshare_stores_each_code_and_rejects_bad_ones(crawl, replica, db, site, tmp_path):
    codes = tmp_path / "codes.txt"
    codes.write_text("\n".join(site.share_codes()) + "\nNOT-A-CODE\nNW209901012292975846\n", encoding="utf-8")
    result = crawl("newsshare", f"site={replica.url}", f"codes_file={codes}")
    assert {d["_id"] for d in db.posts.find({}, {"_id": 1})} == valid_corpus_codes()
    reasons = {r["reason"] for r in db.rejects.find()}
    assert reasons == {"bad_info_code", "http_404"}
    assert stat(result.stderr, "finews/rejected") == 2
    reference = db.posts.find_one({"_id": "NW202203012292975846"})
    assert (reference["media"], reference["category"], reference["tags"]) \
        == ("河北日报", "hebeiribao", ["河北日报新闻"])
    assert reference["url"].startswith(f"{replica.url}/html_News/NewsShare.html")


def test_both_spiders_agree_on_content(crawl, replica, db, site, tmp_path):
    crawl("category", f"site={replica.url}")
    codes = tmp_path / "codes.txt"
    codes.write_text("\n".join(site.share_codes()), encoding="utf-8")
    pages = {d["_id"]: d for d in db.posts.find()}
    result = crawl("newsshare", f"site={replica.url}", f"codes_file={codes}")
    assert stat(result.stderr, "finews/posts/inserted") == 0
    assert db.posts.count_documents({}) == 49
    # The page's kramdown layout and the share JSON clean to the same article;
    # only a time the share host writes differently (the 8-hour quirk) may change.
    shared = {d["_id"]: d for d in db.posts.find()}
    assert all(shared[k]["body_html"] == pages[k]["body_html"] for k in pages)
    assert all(shared[k]["published_at"] == pages[k]["published_at"] for k in pages if shared[k]["version"] == 1)


class OffsiteLinkSite(ReplicaSite):
    """A replica whose listing also links to another host."""

    def listing(self, slug, page=1):
        html = super().listing(slug, page)
        return html and html.replace("<ul>", '<ul>\n<li><a href="http://finews.withounder.com/x/2022/01/01/NW202201012222222222.html">off</a></li>'
                                     '<li><a href="http://example.com/y.html">off</a></li>', 1)


def test_spiders_never_leave_the_configured_host(crawl, db):
    with ReplicaServer(OffsiteLinkSite.from_folder(CORPUS)) as server:
        result = crawl("category", f"site={server.url}", "categories=hebeiribao", check=False)
    assert stat(result.stderr, "finews/offsite_blocked") >= 2  # with their hosts' robots.txt
    # Only the three on-site requests were sent: robots.txt, the listing, the post.
    assert stat(result.stderr, "downloader/request_count") == 3
    assert db.posts.count_documents({}) == 1
    # A listed post that could not be fetched is a reject, never a silence.
    assert sorted((r["url"], r["reason"]) for r in db.rejects.find()) == [
        ("http://example.com/y.html", "offsite"),
        ("http://finews.withounder.com/x/2022/01/01/NW202201012222222222.html", "offsite")]


def test_scrapy_crawl_starts_the_embedded_database_when_mongo_uri_is_unset(crawl, replica, tmp_path, db_name):
    from finews.storage.db import EmbeddedMongo, connect
    result = crawl("category", f"site={replica.url}", "categories=hebeiribao", env={"MONGO_URI": ""})
    assert "Started the embedded database" in result.stderr
    with EmbeddedMongo(tmp_path / "var" / "db") as server, connect(server.uri) as client:
        assert client[db_name].posts.count_documents({}) == 1


@pytest.mark.parametrize("spider, args, named", [("newsshare", [], "info_codes"),
                                                 ("category", ["site=not-a-url"], "site")])
def test_bad_spider_arguments_fail_loudly(crawl, db, spider, args, named):
    """Exit 2 (README: bad spider arguments) with one line naming the
    argument, before anything runs: a crash (exit 1, a traceback) fails."""
    result = crawl(spider, *args, check=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"scrapy crawl: {spider}: ") and named in lines[0]
    assert db.crawl_runs.count_documents({}) == 0


class RefusingScheduler(JobScheduler):
    """The project's scheduler, refusing the reference post's page: a request
    the scheduler drops, as a duplicate filter would. The engine looks at an
    idle spider again only every 5 s, and nothing wakes it once the reject is
    stored: polled sooner here (as crawler/scheduler.py does for shared
    crawls) to keep the test fast."""

    def open(self, spider):
        spider.crawler.engine._SLOT_HEARTBEAT_INTERVAL = 0.2
        return super().open(spider)

    def enqueue_request(self, request) -> bool:
        return not request.url.endswith("/NW202203012292975846.html") and super().enqueue_request(request)


def test_a_request_the_scheduler_drops_is_stored_as_a_reject(engine_crawl, replica, db):
    """Scrapy drops a request refused by the scheduler with a signal and no
    errback; alone, nothing should be refused, so the page is a reject, filed
    through the real engine's item pipelines before the run closes."""
    stats = engine_crawl("category", {"SCHEDULER": f"{__name__}.RefusingScheduler"},
                         site=replica.url, categories="hebeiribao")
    url = f"{replica.url}/hebeiribao/2022/03/01/NW202203012292975846.html"
    assert [(r["url"], r["reason"], r["spider"], r["title"], r["detail"]) for r in db.rejects.find()] == [
        (url, "dropped", "category", "《河北省制造业高质量发展“十四五”规划》出台 实施八项行动 构建现代化制造业体系",
         "the scheduler refused the request")]
    assert db.posts.count_documents({}) == 0
    assert (stats["finews/requests_dropped"], stats["finews/rejected/dropped"]) == (1, 1)
    assert stats["finews/outcome"] == "partial"  # a page was not read
    assert stats.get("log_count/ERROR", 0) == 0


def test_in_a_shared_crawl_a_dropped_request_is_a_peers_not_a_reject():
    """In a shared crawl the seen-set refuses what another worker holds: counted,
    and nothing is filed (the crawler has no engine here: filing would fail)."""
    crawler = get_crawler(CategorySpider, {"FINEWS_REDIS_URL": "redis://127.0.0.1:9/0"})
    spider = crawler.spider = CategorySpider.from_crawler(crawler, site="http://127.0.0.1:9")
    request = spider.post_request("http://127.0.0.1:9/hebeiribao/2022/03/01/NW202203012292975846.html", "标题")
    results = crawler.signals.send_catch_log(signal=signals.request_dropped, request=request, spider=spider)
    assert [result for _, result in results] == [None]
    assert crawler.stats.get_value("finews/requests_dropped") == 1
