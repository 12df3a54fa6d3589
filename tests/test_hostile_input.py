"""Everything a source sends is written by strangers (issue 18, item 1): any
feed item, text answer or post page becomes a stored post or a reject with
its reason, never an exception that loses it or its batch.

The spiders' callbacks run on saved responses, their items go through the
real item pipelines (clean, normalize, dedupe, mongo) from ``get_crawler``
into the embedded MongoDB server, and each test counts what was stored.
"""

from __future__ import annotations

import functools
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from itemadapter import ItemAdapter
from scrapy.http import HtmlResponse, Request, TextResponse
from scrapy.utils.test import get_crawler

from crawler.callbacks import CallbackErrorsMiddleware
from crawler.items import PostItem
from crawler.spiders.category import CategorySpider
from crawler.spiders.newslist import LISTING_SLICE, NewsListSpider
from crawler.spiders.newsshare import NewsShareSpider
from finews.core.feeds import FEEDS
from finews.replica.site import ReplicaSite
from finews.storage.store import MAX_DOCUMENT_BYTES, document_size
from pipelines.clean import CleanPipeline
from pipelines.dedupe import DedupePipeline
from pipelines.mongo import MongoPipeline, _post_doc
from pipelines.normalize import NormalizePipeline
from tests.conftest import CORPUS

SITE = "http://replica.test"
TEXT = SITE + "/NewsData/GetNewsText.do?id={}"
ROLLING_ROW = {"id": "202203012292975846", "infoCode": "NW202203012292975846", "title": "标题",
               "showtime": "2022-03-01 16:46:38", "digest": "【标题】摘要", "url_w": "http://x.test/a.html"}
REFERENCE_PAGE = "/hebeiribao/2022/03/01/NW202203012292975846.html"


class Chain:
    """A spider, the item pipelines and the callback-error middleware of one
    crawl, writing to the test's database."""

    def __init__(self, spider_cls, mongo_uri, db_name, tmp_path, **spider_args):
        self.crawler = get_crawler(spider_cls, {
            "MONGO_URI": mongo_uri, "MONGO_DATABASE": db_name, "FINEWS_DATA_DIR": str(tmp_path),
            "FINEWS_NEAR_DUPLICATES": False, "RETRY_TIMES": 0})
        self.crawler.stats.open_spider()
        self.spider = spider_cls.from_crawler(self.crawler, site=SITE, **spider_args)
        self.crawler.spider = self.spider
        self.steps = [CleanPipeline(), NormalizePipeline(), DedupePipeline.from_crawler(self.crawler)]
        self.store = MongoPipeline.from_crawler(self.crawler)
        self.store.open_spider()
        self.errors = CallbackErrorsMiddleware.from_crawler(self.crawler)
        self.requests: list[Request] = []

    def run(self, callback, response, **kwargs) -> None:
        """Call ``callback`` as Scrapy would: its items go down the pipelines;
        an exception it raises goes to the middleware."""
        try:
            outputs = list(callback(response, **kwargs))
        except Exception as error:
            outputs = list(self.errors.process_spider_exception(response, error, self.spider) or ())
        for output in outputs:
            if isinstance(output, Request):
                self.requests.append(output)
            else:
                self.item(output)

    def item(self, item) -> None:
        for step in self.steps:
            item = step.process_item(item, self.spider)
        self.store.process_item(item, self.spider)

    def close(self) -> dict:
        self.store.close_spider()
        return self.crawler.stats.get_stats()


@pytest.fixture
def chain(mongo_uri, db_name, db, tmp_path):
    made = []

    def make(spider_cls=NewsListSpider, **spider_args) -> Chain:
        made.append(Chain(spider_cls, mongo_uri, db_name, tmp_path, **spider_args))
        return made[-1]

    yield make
    for each in made:
        if each.store.store is not None and not each.store.writer._shutdown:
            each.close()


def json_response(url: str, body: str, **cb_kwargs) -> TextResponse:
    return TextResponse(url, body=body.encode("utf-8", "surrogatepass"), request=Request(url, cb_kwargs=cb_kwargs),
                        headers={"Content-Type": "application/json; charset=utf-8"})


def page_response(url: str, html: str, **cb_kwargs) -> HtmlResponse:
    return HtmlResponse(url, body=html.encode("utf-8", "surrogatepass"), request=Request(url, cb_kwargs=cb_kwargs),
                        headers={"Content-Type": "text/html; charset=utf-8"})


def text_answer(chain: Chain, payload_json: str, row: dict | None = None) -> None:
    """The rolling feed item ``row`` and the text answer ``payload_json`` for it."""
    row = row or ROLLING_ROW
    fields = {k: v for k, v in row.items() if k in FEEDS["rolling"].fields}
    chain.run(chain.spider.parse_text, json_response(TEXT.format(row["infoCode"]), payload_json),
              feed="rolling", fields=fields, code=row["id"])


@functools.cache
def _reference_html() -> str:
    site = ReplicaSite.from_folder(CORPUS)
    return site.post_page(site.share_entry("NW202203012292975846"))


def reference_page(article: str) -> str:
    """The reference post page as the replica serves it, with ``article`` as its body."""
    page = _reference_html()
    start = page.index("</h1>") + len("</h1>")
    end = page.index('<p><a href="http://finews.zning.xyz')
    return page[:start] + "\n\n" + article + "\n\n" + page[end:]


# --- Text made valid Unicode at the edge -------------------------------------------------


def test_a_lone_surrogate_in_a_text_answer_is_stored_as_the_replacement_character(chain, db):
    """One ``\\ud800`` used to lose the whole write batch on every run."""
    c = chain()
    payload = json.dumps({"content": "第一段\ud800第二段", "text": ""})  # json.dumps writes it as \\ud800
    assert "\\ud800" in payload
    text_answer(c, payload)
    other = dict(ROLLING_ROW, id="202203012292975847", infoCode="NW202203012292975847", title="另一篇")
    text_answer(c, json.dumps({"content": "正常的文章"}), other)
    stats = c.close()
    posts = {d["_id"]: d for d in db.posts.find()}
    assert set(posts) == {"NW202203012292975846", "NW202203012292975847"}
    assert posts["NW202203012292975846"]["body_text"] == "摘要\n第一段\ufffd第二段"  # the digest, then the text
    assert stats.get("finews/posts/inserted") == 2 and not stats.get("finews/db/spooled")


# --- Times outside the stored range ------------------------------------------------------


@pytest.mark.parametrize("showtime, reason", [
    ("0001-01-01 00:00:00", "date_out_of_range"),
    ("9999-12-31 23:59:59 +0000", "date_out_of_range"),
    ("1899-12-31 23:59:59", "date_out_of_range"),
    ("2022-03-01 16:46:38 +2400", "missing_date"),
    ("2022-02-30 10:00:00", "missing_date"),
])
def test_a_share_time_outside_the_range_is_a_reject_and_the_rest_is_stored(chain, db, showtime, reason):
    c = chain(NewsShareSpider, info_codes="NW202203012292975846")
    share = json.dumps({"data": {"title": "坏时间", "showtime": showtime, "content": "<p>正文</p>"}})
    c.run(c.spider.parse_share_text, json_response(SITE + "/NewsData/GetNewsText.do?id=NW202203012292975846", share),
          code="NW202203012292975846", page_url=SITE + "/share/NW202203012292975846", page_title="坏时间")
    good = json.dumps({"data": {"title": "好时间", "showtime": "2022-03-01 16:46:38", "content": "<p>正文</p>"}})
    c.run(c.spider.parse_share_text, json_response(SITE + "/NewsData/GetNewsText.do?id=NW202203012292975847", good),
          code="NW202203012292975847", page_url=SITE + "/share/NW202203012292975847", page_title="好时间")
    stats = c.close()
    assert [d["_id"] for d in db.posts.find()] == ["NW202203012292975847"]
    (reject,) = db.rejects.find()
    assert reject["reason"] == reason and reject["raw_code"] == "NW202203012292975846"
    assert stats.get(f"finews/rejected/{reason}") == 1


def test_a_feed_item_dated_year_9999_is_an_item_reject(chain, db):
    c = chain(feeds="rolling")
    rows = [dict(ROLLING_ROW, showtime="9999-12-31 23:59:59"), dict(ROLLING_ROW, id="202203012292975847",
                                                                   infoCode="NW202203012292975847")]
    url = SITE + FEEDS["rolling"].url("")
    c.run(c.spider.parse_feed, json_response(url, json.dumps({"records": rows})), feed="rolling")
    c.close()
    assert [r.url for r in c.requests] == [TEXT.format("NW202203012292975847")]
    (reject,) = db.rejects.find()
    assert reject["reason"] == "date_out_of_range" and reject["raw_code"] == "202203012292975846"


# --- Deep and large structures -----------------------------------------------------------


@pytest.mark.parametrize("depth", [300, 5_000, 50_000])
def test_an_article_nested_deep_keeps_every_paragraph(chain, db, depth):
    words = ["开头的段落", "深处的段落", "结尾的段落"]
    article = (f"<p>{words[0]}</p>" + "<div>" * depth + f"<p>{words[1]}</p>" + "</div>" * depth
               + f"<p>{words[2]}</p>")
    c = chain()
    text_answer(c, json.dumps({"content": article}))
    c.close()
    (post,) = db.posts.find()
    assert post["body_text"].split("\n") == ["摘要", *words]  # the digest, then the text


def test_fifty_thousand_nested_brackets_in_a_feed_are_a_bad_json_reject(chain, db):
    c = chain(feeds="rolling")
    url = SITE + FEEDS["rolling"].url("")
    c.run(c.spider.parse_feed, json_response(url, '{"records": ' + "[" * 50_000 + "]" * 50_000 + "}"), feed="rolling")
    stats = c.close()
    (reject,) = db.rejects.find()
    assert reject["reason"] == "bad_json" and reject["url"] == url
    assert stats.get("finews/rejected/bad_json") == 1


@pytest.mark.slow  # a process of its own, or a scale: kept out of the fast suite's time
def test_every_item_of_a_feed_of_80000_is_kept_and_asked_for(chain, db):
    """A feed page of 80,000 items used to become one ``too_large`` reject."""
    count = 80_000
    rows = [dict(ROLLING_ROW, id=f"2022030122{i:08d}", infoCode=f"NW2022030122{i:08d}") for i in range(count)]
    c = chain(feeds="rolling")
    url = SITE + FEEDS["rolling"].url("")
    response = json_response(url, json.dumps({"records": rows}), feed="rolling")
    outputs = list(c.spider.parse_feed(response, feed="rolling"))
    listings = [o for o in outputs if isinstance(o, PostItem)]
    requests = [o for o in outputs if isinstance(o, Request)]
    assert len(requests) == count
    assert sum(len(item["feed_listing"]) for item in listings) == count
    assert all(document_size(_post_doc(ItemAdapter(item))) < MAX_DOCUMENT_BYTES for item in listings)
    for item in listings[:3]:  # stored as any slice is: its items kept
        c.item(item)
    c.close()
    assert db.feed_items.count_documents({}) == 3 * LISTING_SLICE
    assert db.rejects.count_documents({}) == 0


# --- Exceptions nobody foresaw -----------------------------------------------------------


def test_a_callback_that_raises_makes_its_page_a_reject(chain, db, monkeypatch):
    c = chain(CategorySpider)

    def broken(_html):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr("crawler.spiders.category.parse_post_page", broken)
    url = SITE + REFERENCE_PAGE
    c.run(c.spider.parse_post, page_response(url, "<html><body>x</body></html>", listing_title="标题"),
          listing_title="标题")
    stats = c.close()
    (reject,) = db.rejects.find()
    assert (reject["reason"], reject["url"], reject["title"]) == ("item_error", url, "标题")
    assert "RecursionError" in reject["detail"]
    assert stats.get("finews/rejected/item_error") == 1


@pytest.mark.parametrize("step", ["pipelines.clean.clean_article", "pipelines.normalize.normalize_post"])
def test_a_pipeline_step_that_raises_makes_its_item_a_reject_and_the_batch_is_stored(chain, db, monkeypatch, step):
    original = __import__(step.rsplit(".", 1)[0], fromlist=["x"]).__dict__[step.rsplit(".", 1)[1]]

    def fails_on_one(arg, *args, **kwargs):
        text = json.dumps(arg, ensure_ascii=False, default=str)
        if "炸弹" in text:
            raise OverflowError("date value out of range")
        return original(arg, *args, **kwargs)

    monkeypatch.setattr(step, fails_on_one)
    c = chain()
    bomb = dict(ROLLING_ROW, id="202203012292975849", infoCode="NW202203012292975849", title="炸弹")
    text_answer(c, json.dumps({"content": "<p>炸弹</p>"}), bomb)
    text_answer(c, json.dumps({"content": "<p>正文</p>"}))
    stats = c.close()
    assert [d["_id"] for d in db.posts.find()] == ["NW202203012292975846"]
    (reject,) = db.rejects.find()
    assert reject["reason"] == "item_error" and "OverflowError" in reject["detail"]
    assert stats.get("finews/rejected/item_error") == 1


# --- Properties: any input is a post or a reject -----------------------------------------

PROPERTY = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
hostile_text = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=60) | st.sampled_from(
    ["\ud800", "{{ site }}", "<img src=x onerror=alert(1)>", "0001-01-01 00:00:00", "9999-12-31 23:59:59",
     "2022-03-01 16:46:38", "", " ", "\x00", "[" * 1000, "NW202203012292975846"])
json_value = st.recursive(st.none() | st.booleans() | st.integers() | hostile_text,
                          lambda inner: st.lists(inner, max_size=3) | st.dictionaries(hostile_text, inner, max_size=3),
                          max_leaves=8)


def _outcomes(db) -> int:
    return db.posts.count_documents({}) + db.rejects.count_documents({})


@PROPERTY
@given(row=st.fixed_dictionaries({}, optional=dict.fromkeys(ROLLING_ROW, hostile_text | json_value)),
       payload=st.dictionaries(st.sampled_from(["content", "text", "title"]) | hostile_text, json_value, max_size=3))
def test_any_feed_item_and_text_answer_become_a_post_or_a_reject(chain, db, row, payload):
    db.posts.delete_many({})
    db.rejects.delete_many({})
    c = chain(feeds="rolling")
    url = SITE + FEEDS["rolling"].url("")
    row = dict(ROLLING_ROW, **row)
    c.run(c.spider.parse_feed, json_response(url, json.dumps({"records": [row]})), feed="rolling")
    for request in c.requests:  # the text answer of the one item, if it was asked for
        c.run(request.callback, json_response(request.url, json.dumps(payload)), **request.cb_kwargs)
    stats = c.close()
    assert _outcomes(db) == 1, (row, payload, list(db.rejects.find()))
    assert not stats.get("finews/db/spooled") and not stats.get("finews/db/write_errors")


@PROPERTY
@given(article=st.lists(hostile_text | st.sampled_from(
    ["<p>", "</p>", "<div>" * 400, "</div>" * 3, "<section>", "</section>", "<h1>", "&lt;", "<a href='file:///etc/passwd'>",
     "<script>", "<!--", "<", ">", "\r\n"]), max_size=12).map("".join))
def test_any_post_page_article_becomes_a_post_or_a_reject(chain, db, article):
    db.posts.delete_many({})
    db.rejects.delete_many({})
    c = chain(CategorySpider)
    url = SITE + REFERENCE_PAGE
    c.run(c.spider.parse_post, page_response(url, reference_page(article)), listing_title="标题")
    stats = c.close()
    assert _outcomes(db) == 1
    assert not stats.get("finews/db/spooled") and not stats.get("finews/db/write_errors")


# --- A real crawl of a hostile source ----------------------------------------------------


class HostileSource:
    """The five list feeds and their text answers, as a stranger could write
    them, served on loopback."""

    MEDIA_ITEMS = 1_200  # three listing slices

    def __init__(self):
        good = [dict(ROLLING_ROW, id=f"20220301229700{i:04d}", infoCode=f"NW20220301229700{i:04d}", title=f"滚动{i}")
                for i in range(4)]
        dated_0001 = dict(ROLLING_ROW, id="202203012297009998", infoCode="NW202203012297009998",
                          showtime="0001-01-01 00:00:00")
        self.rolling = [*good, dated_0001]
        self.texts = {
            good[0]["infoCode"]: {"content": "正常的文章"},
            good[1]["infoCode"]: {"content": "坏字符\ud800在这里"},
            good[2]["infoCode"]: {"content": "<div>" * 20_000 + "<p>很深的段落</p>" + "</div>" * 20_000},
            good[3]["infoCode"]: {"content": "标题里也有坏字符"},
        }
        good[3]["title"] = "标题\udfff"
        self.media = [{"from": "河北日报", "infocode": f"NW20220301229800{i:04d}", "title": f"媒体{i}",
                       "showtime": "2022-03-01 16:46:38"} for i in range(self.MEDIA_ITEMS)]
        self.texts.update({row["infocode"]: {"text": f"<p>媒体文章{i}</p>"} for i, row in enumerate(self.media)})
        self.market = {"37": '{"record": ' + "[" * 50_000 + "]" * 50_000 + "}",
                       "38": json.dumps({"record": []}), "39": json.dumps({"record": []})}

    def answer(self, path: str, query: dict) -> str | None:
        if path == "/robots.txt":
            return ""
        if path == FEEDS["rolling"].path and query.get("type") == "102":
            return json.dumps({"records": self.rolling})
        if path == FEEDS["media"].path and query.get("type") == "45":
            return json.dumps({"nodeList": self.media})
        if path == FEEDS["market37"].path and query.get("marketType") in self.market:
            return self.market[query["marketType"]]
        if path == "/NewsData/GetNewsText.do" and query.get("id") in self.texts:
            return json.dumps(self.texts[query["id"]])
        return None


@pytest.fixture
def hostile_source():
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import parse_qsl, urlsplit

    source = HostileSource()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            parts = urlsplit(self.path)
            body = source.answer(parts.path, dict(parse_qsl(parts.query)))
            data = (body or "not found").encode("utf-8", "surrogatepass")
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Type", "application/json; charset=utf-8" if body else "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield source, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_crawl_of_a_hostile_source_stores_or_rejects_every_item_and_says_partial(crawl, db, hostile_source):
    source, url = hostile_source
    result = crawl("newslist", f"site={url}", env={"FINEWS_RETRY_TIMES": "0"})
    assert result.returncode == 0
    posts = {d["_id"]: d for d in db.posts.find({}, {"body_text": 1, "title": 1})}
    expected = {r["infoCode"] for r in source.rolling[:4]} | {r["infocode"] for r in source.media}
    assert set(posts) == expected
    assert posts["NW202203012297000001"]["body_text"].endswith("坏字符\ufffd在这里")
    assert posts["NW202203012297000002"]["body_text"].endswith("很深的段落")
    assert posts["NW202203012297000003"]["title"] == "标题\ufffd"
    rejects = {(r["reason"], r.get("raw_code") or r["url"]) for r in db.rejects.find()}
    assert ("date_out_of_range", "202203012297009998") in rejects
    assert any(reason == "bad_json" and "marketType=37" in where for reason, where in rejects)
    (run,) = db.crawl_runs.find()
    assert run["outcome"] == "partial"
    assert db.feed_items.count_documents({"feed": "media"}) == source.MEDIA_ITEMS
