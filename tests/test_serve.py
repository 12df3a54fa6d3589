"""``finews serve``: the mirror's site, Atom feeds, the JSON API and the
dashboard, served from a database filled by crawling the replica (the
``category`` spider, then ``newslist``: the crawl that exports every corpus
file the exporter knows byte for byte, tests/test_export_exact.py).

Pages are compared with the real Jekyll build (tests/fixtures/finews-site)
inside ``<section>``, byte for byte, as tests/test_replica_render.py does.
"""

from __future__ import annotations

import html
import json
import re
import time
import uuid
from datetime import UTC, datetime
from urllib.error import HTTPError
from urllib.parse import quote, unquote, urlencode
from urllib.request import urlopen

import feedparser
import lxml.html
import pytest
from pymongo import monitoring

from finews.replica.postfile import read_post_source
from finews.replica.site import SITE_URL, ReplicaSite, category_titles
from finews.serve.app import ServeServer
from finews.storage.db import connect, ensure_indexes
from finews.storage.reading import iter_posts, write_jekyll
from tests.conftest import make_engine_crawl
from tests.test_export_exact import qualifying_files
from tests.test_replica_render import REAL_SITE, _listing_pages, _raw_section, _real, _real_post_paths

RESULTS = {}


class Commands(monitoring.CommandListener):
    """Every command the server's client sends (to show what reaches the database)."""

    def __init__(self):
        self.sent: list[dict] = []

    def started(self, event):
        self.sent.append(dict(event.command))

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass


@pytest.fixture(scope="module")
def commands():
    return Commands()


@pytest.fixture(scope="module")
def stored(reactor, mongo_uri, replica, tmp_path_factory, commands):
    """A database with the corpus crawled from the replica, read through a
    client whose commands are recorded."""
    name = f"finews_test_{uuid.uuid4().hex[:12]}"
    folder = tmp_path_factory.mktemp("serve")
    writer = connect(mongo_uri)
    ensure_indexes(writer[name])
    crawl = make_engine_crawl(reactor, mongo_uri, name, folder)
    crawl("category", site=replica.url)
    crawl("newslist", site=replica.url)
    reader = connect(mongo_uri, event_listeners=[commands])
    yield reader[name]
    reader.close()
    writer.drop_database(name)
    writer.close()


@pytest.fixture(scope="module")
def server(stored, tmp_path_factory):
    """Feeds link to the real site's address, as the real feed does."""
    with ServeServer(stored, spool_folder=tmp_path_factory.mktemp("spool"), base_url=SITE_URL,
                     removals_every=0.5) as running:
        yield running


def get(server, path: str) -> tuple[int, dict, str]:
    try:
        with urlopen(server.url + path, timeout=30) as answer:
            return answer.status, dict(answer.headers), answer.read().decode("utf-8")
    except HTTPError as error:
        return error.code, dict(error.headers), error.read().decode("utf-8")


def api(server, path: str, **params) -> tuple[int, dict]:
    status, _, body = get(server, path + ("?" + urlencode(params) if params else ""))
    return status, json.loads(body)


def exact_post_paths() -> set[str]:
    """Real pages of the corpus files the crawl exports byte for byte."""
    names = {p.name for p in qualifying_files()}
    return {unquote(e.path) for e in ReplicaSite.from_folder().entries if e.post.name in names}


# -- the site --------------------------------------------------------------------------


def test_every_real_page_is_served_identically_inside_section(server):
    paths = sorted(_real_post_paths()) + [path for path, _ in _listing_pages(ReplicaSite.from_folder())]
    identical, differing = [], []
    for path in paths:
        status, _headers, body = get(server, quote(path))
        same = status == 200 and _raw_section(body) == _raw_section(_real(path))
        (identical if same else differing).append(path)
    RESULTS["pages"] = (len(identical), len(paths))
    print(f"\nserved pages identical to real Jekyll inside <section>: {len(identical)}/{len(paths)}; "
          f"differing: {differing}")
    assert exact_post_paths() <= set(identical)  # every post exported exactly is its real page
    assert len(exact_post_paths()) == 33
    # Measured 49/73: every category page and every post page but the 20 rolling news of
    # 2021-12-08 (older formats the exporter cannot write, the 8-hour quirk the feed times
    # correct: docs/schema.md) and the init post (not a post: never stored), and so the three
    # listings that show those.
    assert len(identical) >= 49, differing
    assert {p for p in differing if not p.startswith("/emnews/2021/12/08/")} == {
        "/sitenews/2021/12/01/init.html", "/", "/categories/", "/emnews/"}


def test_every_served_page_is_the_replicas_page_of_the_exported_files(server, stored, tmp_path):
    write_jekyll(stored, iter_posts(stored, {}), tmp_path)
    posts = [read_post_source(p) for p in sorted((tmp_path / "_posts").glob("*.md"))]
    exported = ReplicaSite([p for p in posts if p is not None], category_titles())
    assert len(exported.entries) == len(server.site.site().entries) == 53  # the corpus but init
    for entry in exported.entries:
        assert get(server, entry.path)[2] == exported.post_page(entry), entry.path
    for path, page in _listing_pages(exported):
        assert get(server, quote(path))[2] == page, path


def test_unknown_pages_are_404_and_writes_are_refused(server):
    assert get(server, "/hebeiribao/2022/03/01/NW000000000000000000.html")[0] == 404
    assert get(server, "/category/nope.html")[0] == 404
    assert get(server, "/feed/nope.xml")[0] == 404
    assert urlopen_status(server.url + "/", method="POST") == 405
    assert urlopen_status(server.url + "/", method="HEAD") == 200


def urlopen_status(url: str, method: str) -> int:
    from urllib.request import Request

    try:
        with urlopen(Request(url, data=b"" if method == "POST" else None, method=method), timeout=10) as answer:
            return answer.status
    except HTTPError as error:
        return error.code


def test_new_posts_appear_without_a_rebuild(server, stored, mongo_uri):
    from finews.core.normalize import normalize_post
    from finews.storage.store import PostStore

    get(server, "/")
    builds = server.site.builds
    code = "NW203001012999999999"
    def post(title, day="01"):
        return normalize_post({"url": "http://127.0.0.1:9/x.html", "title": title,
                               "time_text": f"2030-01-{day} 10:00:00", "body_html": "<p>正文</p>",
                               "body_text": "正文", "raw_code": code,
                               "tags": ["河北日报新闻"], "category": "hebeiribao"})

    writer = connect(mongo_uri)
    try:
        PostStore(writer[stored.name], near_duplicates=False).write_posts([post("新近的消息")])
        deadline = time.monotonic() + 10
        while "新近的消息" not in get(server, "/")[2] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "新近的消息" in get(server, "/")[2]
        assert get(server, f"/hebeiribao/2030/01/01/{code}.html")[0] == 200
        assert "新近的消息" in get(server, "/feed.xml")[2]
        assert server.site.builds == builds and server.site.updates >= 1  # added, not a new render
        # A changed post (a new version, another day: another URL) is served changed, at its new URL only.
        PostStore(writer[stored.name], near_duplicates=False).write_posts([post("改过的消息", "02")])
        deadline = time.monotonic() + 10
        while "改过的消息" not in get(server, "/")[2] and time.monotonic() < deadline:
            time.sleep(0.2)
        page = get(server, f"/hebeiribao/2030/01/02/{code}.html")[2]
        assert "改过的消息" in page and "新近的消息" not in get(server, "/")[2]
        assert get(server, f"/hebeiribao/2030/01/01/{code}.html")[0] == 404
    finally:
        writer[stored.name].posts.delete_one({"_id": code})
        writer[stored.name].raw_articles.delete_one({"_id": code})
        writer.close()
    deadline = time.monotonic() + 10
    while "改过的消息" in get(server, "/")[2] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert get(server, f"/hebeiribao/2030/01/02/{code}.html")[0] == 404  # removed: gone from the site


# -- feeds -------------------------------------------------------------------------------


def test_the_feed_is_the_one_jekyll_feed_wrote(server):
    status, headers, body = get(server, "/feed.xml")
    assert status == 200 and headers["Content-Type"].startswith("application/atom+xml")
    real = (REAL_SITE / "feed.xml").read_text(encoding="utf-8")
    updated = re.compile(r"<updated>[^<]*</updated>")  # the feed's own: the build time there
    assert updated.sub("", body, count=1) == updated.sub("", real, count=1)


def test_a_feed_reader_reads_the_feed(server):
    _status, _, body = get(server, "/feed.xml")
    feed = feedparser.parse(body)
    assert not feed.bozo, feed.get("bozo_exception")
    real = feedparser.parse((REAL_SITE / "feed.xml").read_text(encoding="utf-8"))
    assert feed.feed.title == "金融消息"
    assert len(feed.entries) == 10
    for mine, want in zip(feed.entries, real.entries, strict=True):
        assert (mine.title, mine.link, mine.published, mine.summary) == (want.title, want.link, want.published,
                                                                         want.summary)
        assert mine.published.endswith("+08:00")
        assert mine.published_parsed == want.published_parsed  # as UTC: the offset applied
        assert mine.summary and mine.content[0].value
    first = feed.entries[0]
    assert first.title == "消费电子股大爆发！旺季迎来需求复苏 业绩兑现成关键 关注电子板块两主线"
    assert first.link == f"{SITE_URL}/cailianshe/2022/05/31/NW202205312398034850.html"
    assert time.strftime("%Y-%m-%d %H:%M:%S", first.published_parsed) == "2022-05-31 10:03:41"  # 18:03:41 +08:00


def test_each_category_has_a_feed(server):
    feed = feedparser.parse(get(server, "/feed/hebeiribao.xml")[2])
    assert not feed.bozo
    assert feed.feed.title == "金融消息 | Hebeiribao"
    assert feed.entries and all("/hebeiribao/" in e.link for e in feed.entries)
    times = [e.published_parsed for e in feed.entries]
    assert times == sorted(times, reverse=True)
    assert all(any(t.term == "hebeiribao" for t in e.tags) for e in feed.entries)


# -- the API ---------------------------------------------------------------------------


def test_posts_are_filtered_by_category_media_and_time(server, stored):
    status, page = api(server, "/api/posts", category="hebeiribao", limit="200")
    assert status == 200
    assert {p["category"] for p in page["posts"]} == {"hebeiribao"}
    assert len(page["posts"]) == stored.posts.count_documents({"category": "hebeiribao"}) > 0
    status, page = api(server, "/api/posts", media="财联社", limit="200")
    assert {p["media"] for p in page["posts"]} == {"财联社"}
    assert len(page["posts"]) == stored.posts.count_documents({"media": "财联社"}) > 0
    # Site time (Asia/Shanghai) unless an offset is given; a bare `until` date is the whole day.
    status, page = api(server, "/api/posts", since="2022-05-30", until="2022-05-30", limit="200")
    assert page["posts"]
    assert all("2022-05-29T16:00:00Z" <= p["published_at"] < "2022-05-30T16:00:00Z" for p in page["posts"])
    want = stored.posts.count_documents({"published_at": {"$gte": datetime(2022, 5, 29, 16, tzinfo=UTC),
                                                          "$lt": datetime(2022, 5, 30, 16, tzinfo=UTC)}})
    assert len(page["posts"]) == want
    # 2022-05-26 00:19:55 in Shanghai is 2022-05-25 16:19:55 UTC: on the 26th, not the 25th.
    late = "NW202205262391921712"
    day = api(server, "/api/posts", since="2022-05-26", until="2022-05-26")[1]["posts"]
    assert late in [p["info_code"] for p in day]
    assert late not in [p["info_code"] for p in api(server, "/api/posts", until="2022-05-25")[1]["posts"]]
    assert late in [p["info_code"] for p in api(server, "/api/posts", since="2022-05-25T16:19:55Z",
                                                until="2022-05-26T00:19:55+08:00")[1]["posts"]]


def test_text_search_finds_chinese_in_titles_and_bodies(server, stored):
    status, page = api(server, "/api/posts", q="消费电子")
    assert status == 200 and page["posts"]
    codes = {p["info_code"] for p in page["posts"]}
    want = {d["_id"] for d in stored.posts.find({}, {"title": 1, "body_text": 1})
            if "消费电子" in d["title"] or "消费电子" in d["body_text"]}
    assert codes == want and "NW202205312398034850" in codes
    # A body-only match counts too: the reference post's first line.
    page = api(server, "/api/posts", q="省政府新闻办召开新闻发布会")[1]
    assert [p["info_code"] for p in page["posts"]] == ["NW202203012292975846"]
    # Regex characters are text.
    assert api(server, "/api/posts", q=".*")[1]["posts"] == []


def test_pagination_returns_every_post_exactly_once(server, stored):
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": "7", **({"cursor": cursor} if cursor else {})}
        status, page = api(server, "/api/posts", **params)
        assert status == 200
        seen += [p["info_code"] for p in page["posts"]]
        pages += 1
        cursor = page["next"]
        if not cursor:
            break
    total = stored.posts.count_documents({})
    assert sorted(seen) == sorted(d["_id"] for d in stored.posts.find({}, {"_id": 1})) and len(seen) == total
    assert pages == -(-total // 7)
    times = [p["published_at"] for p in api(server, "/api/posts", limit="200")[1]["posts"]]
    assert times == sorted(times, reverse=True)


@pytest.mark.parametrize("form", ["NW202205312398034850", "nw202205312398034850", "202205312398034850",
                                  " NW202205312398034850 "])
def test_one_post_by_any_form_of_its_code(server, form):
    status, post = api(server, "/api/posts/" + quote(form))
    assert status == 200
    assert post["info_code"] == "NW202205312398034850" and post["body_html"] and post["body_text"]
    assert post["page"] == "/cailianshe/2022/05/31/NW202205312398034850.html"
    assert get(server, post["page"])[0] == 200


def test_unknown_and_malformed_codes(server):
    assert api(server, "/api/posts/NW209901012999999999")[0] == 404
    status, answer = api(server, "/api/posts/not-a-code")
    assert status == 400 and "\n" not in answer["error"]
    assert api(server, "/api/nothing")[0] == 404


def test_categories_runs_and_rejects(server, stored):
    categories = api(server, "/api/categories")[1]["categories"]
    by_slug = {c["category"]: c for c in categories}
    assert by_slug["hebeiribao"]["posts"] == stored.posts.count_documents({"category": "hebeiribao"})
    assert by_slug["hebeiribao"]["media"] == ["河北日报"]
    assert sum(c["posts"] for c in categories) == stored.posts.count_documents({})
    runs = api(server, "/api/runs")[1]["runs"]
    assert [r["spider"] for r in runs] == ["newslist", "category"]
    assert all(r["outcome"] in ("clean", "partial") and r["pages_per_second"] > 0 for r in runs)
    rejects = api(server, "/api/rejects", limit="2")[1]
    assert stored.rejects.count_documents({}) == 0 or rejects["rejects"]
    spec = api(server, "/api/openapi.json")[1]
    assert spec["openapi"].startswith("3.") and {"/api/posts", "/api/posts/{code}", "/api/categories",
                                                 "/api/runs", "/api/rejects"} <= set(spec["paths"])


@pytest.mark.parametrize("query", [
    '{"$where":"sleep(10000)"}=1',
    quote('{"$where": "sleep(10000)"}'),
    "category[$ne]=x",
    "category%5B%24ne%5D=x",
    "category=a&category=b",
    "q=" + quote("(a+)+$" * 30),
    "since=%24gt",
    "until=2022-13-01",
    "since=1900-01-01",
    "limit=1e9",
    "limit=0",
    "cursor=eyIkZ3QiOiIifQ",
    "cursor=!!!",
    "category=" + "x" * 201,
    "q=%00",
    "&".join(f"p{i}=1" for i in range(30)),
])
def test_hostile_parameters_get_one_line_400_and_never_reach_the_database(server, commands, query):
    get(server, "/api/posts")  # anything the site cache still had to read
    before = len(commands.sent)
    status, _headers, body = get(server, "/api/posts?" + query)
    assert status == 400, body
    assert body.count("\n") == 1 and json.loads(body)["error"]
    assert commands.sent[before:] == []


def test_text_reaches_the_database_as_an_escaped_pattern_only(server, commands):
    before = len(commands.sent)
    hostile = '$where (a+)+$ {"$gt": ""}'
    assert api(server, "/api/posts", q=hostile)[0] == 200
    finds = [c for c in commands.sent[before:] if "find" in c]
    assert len(finds) == 1
    text = json.dumps(finds[0]["filter"], default=str)
    assert re.escape(hostile) in [clause["title"]["$regex"] for clause in finds[0]["filter"]["$and"][0]["$or"]
                                  if "title" in clause]
    assert '"$where"' not in text and '"$gt"' not in text.replace('"$gte"', "")


# -- safety and the dashboard --------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/categories/", "/emnews/", "/category/hebeiribao.html",
                                  "/hebeiribao/2022/03/01/NW202203012292975846.html", "/dashboard/", "/nope",
                                  "/api/posts", "/feed.xml"])
def test_every_response_forbids_inline_script(server, path):
    headers = get(server, path)[1]
    policy = headers["Content-Security-Policy"]
    assert "script-src 'none'" in policy and "unsafe-inline" not in policy.split("style-src")[0]
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_hostile_titles_and_bodies_are_inert(db, tmp_path):
    from finews.core.clean import clean_article
    from finews.core.normalize import normalize_post
    from finews.storage.store import PostStore

    title = '<script>alert(1)</script><img src=x onerror=alert(2)>"标题'
    article = clean_article('<p>正文<script>alert(3)</script><img src="x" onerror="alert(4)"></p>')
    post = normalize_post({"url": "http://127.0.0.1:9/x.html", "title": title, "time_text": "2022-03-01 10:00:00",
                           "body_html": article.body_html, "body_text": article.body_text, "raw_code":
                           "NW202203012292979999", "tags": ["<b>河北</b>新闻"], "category": "hebeiribao"})
    PostStore(db, near_duplicates=False).write_posts([post])
    # A body that reached the database unsanitized (another writer): CSP is the backstop.
    db.posts.update_one({"_id": "NW202203012292979999"}, {"$set": {"body_html": "<p>x</p><script>alert(5)</script>"}})
    db.raw_articles.delete_many({})
    db.crawl_runs.insert_one({"_id": "run-6", "spider": "<b>x</b>", "outcome": "clean",
                              "started_at": datetime(2022, 3, 1, tzinfo=UTC)})
    with ServeServer(db) as served:
        pages = {path: get(served, path) for path in ("/", "/categories/", "/category/hebeiribao.html",
                                                      "/hebeiribao/2022/03/01/NW202203012292979999.html",
                                                      "/dashboard/")}
        feed = get(served, "/feed.xml")[2]
    for path, (status, headers, body) in pages.items():
        assert status == 200, path
        doc = lxml.html.document_fromstring(body)
        content = doc.xpath("//section") or doc.xpath("//body")
        assert content[0].xpath(".//script | .//*[@*[starts-with(name(), 'on')]] | .//b | .//img[@src='x']") == []
        assert "alert(5)" not in body and "alert(3)" not in body  # sanitized, not only blocked
        assert "script-src 'none'" in headers["Content-Security-Policy"]
    post_page = lxml.html.document_fromstring(pages["/hebeiribao/2022/03/01/NW202203012292979999.html"][2])
    assert post_page.xpath("//section/h1")[0].text_content() == title  # shown as text
    assert "<b>x</b>" in lxml.html.document_fromstring(pages["/dashboard/"][2]).text_content()  # the spider, as text
    parsed = feedparser.parse(feed)
    # type="html": the reader shows the HTML, which is the title's text
    assert not parsed.bozo and html.unescape(parsed.entries[0].title) == title and "<" not in parsed.entries[0].title


def test_the_dashboard_shows_runs_posts_per_day_spool_and_lease(server, stored, mongo_uri):
    (server.spool_folder / "spool-1-2-3.jsonl").write_text("{}\n", encoding="utf-8")
    writer = connect(mongo_uri)
    writer[stored.name].locks.insert_one({"_id": "category-abc", "owner": "run-42", "host": "crawler-7", "pid": 4242,
                                          "expires_at": datetime(2100, 1, 1, tzinfo=UTC)})
    try:
        status, headers, body = get(server, "/dashboard/")
    finally:
        writer[stored.name].locks.delete_many({})
        writer.close()
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert body.count("<tr><td>") >= 3 and "newslist" in body and "category" in body
    assert "<svg" in body and body.count("<rect") == 60 and "2022-05-31" in body
    assert "1 batches waiting" in body
    assert "run-42" in body and "crawler-7" in body


def test_serve_with_a_busy_port_prints_one_line_and_exits_2(capsys):
    import socket

    from finews.cli import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        code = main(["serve", "--port", str(taken.getsockname()[1])])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "in use" in err


@pytest.mark.slow
def test_finews_serve_on_the_embedded_default(tmp_path):
    """``finews import`` into a fresh embedded database, then ``finews serve``
    on it as a user runs them: the posts are served, and Ctrl-C/SIGTERM stops it."""
    import os
    import signal
    import subprocess
    import sys

    from finews.storage.db import free_port
    env = {k: v for k, v in os.environ.items() if k != "MONGO_URI"}
    lines = [json.dumps({"_id": code, "info_code": code, "kind": "media", "title": f"标题{n}",
                         "published_at": f"2022-03-0{n + 1}T08:00:00Z", "media": "河北日报", "category": "hebeiribao",
                         "tags": ["河北日报新闻"], "body_html": f"<p>正文{n}</p>", "body_text": f"正文{n}",
                         "url": "http://127.0.0.1:9/x.html", "source_url": "", "images": [],
                         "content_hash": f"{n:064x}", "version": 1, "first_seen_at": "2022-03-01T08:00:00Z",
                         "crawled_at": "2022-03-01T08:00:00Z", "schema_version": 2}, ensure_ascii=False)
             for n, code in enumerate(["NW202203012292970001", "NW202203022292970002"])]
    (tmp_path / "posts.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    loaded = subprocess.run([sys.executable, "-m", "finews.cli", "import", "posts.jsonl"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    port = free_port()
    serving = subprocess.Popen([sys.executable, "-m", "finews.cli", "serve", "--port", str(port)], cwd=tmp_path,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        banner = serving.stdout.readline()
        assert f"Serving 2 posts at http://127.0.0.1:{port}" in banner, serving.stderr.read()[-2000:]
        with urlopen(f"http://127.0.0.1:{port}/api/posts", timeout=30) as answer:
            assert [p["title"] for p in json.load(answer)["posts"]] == ["标题1", "标题0"]
        with urlopen(f"http://127.0.0.1:{port}/", timeout=30) as answer:
            assert "标题1" in answer.read().decode("utf-8")
    finally:
        serving.send_signal(signal.SIGTERM)
        assert serving.wait(60) == 0


def test_an_unsanitized_stored_body_is_exported_sanitized():
    from finews.core.jekyll import post_file

    post = {"title": "t", "published_at": datetime(2022, 3, 1, 2, tzinfo=UTC), "category": "hebeiribao",
            "tags": ["河北日报新闻"], "source_url": "", "info_code": "NW202203012292979999", "kind": "media",
            "body_html": '<p>正文</p><script>alert(1)</script><p onclick="alert(2)">x</p>'}
    text = post_file(post, None)
    assert "<p>正文</p>" in text and "alert" not in text and "<script" not in text
