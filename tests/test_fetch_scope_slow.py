"""A hostile site on loopback, crawled by ``scrapy crawl`` (issue 18, part 3):
links and redirects to other schemes and to another port of the site's host,
a redirect loop, a gzip bomb, bodies over ``DOWNLOAD_MAXSIZE`` and a
robots.txt that forbids everything. Nothing off the site is fetched, every
page not read is a reject with its reason, and the run says ``partial``."""

from __future__ import annotations

import contextlib
import gzip
import json
import shutil
import socketserver
import threading
from urllib.parse import urlsplit

import pytest

from finews.core.infocode import normalize_info_code
from finews.core.reasons import FETCH, lookup
from finews.replica.server import ReplicaHandler, ReplicaServer
from finews.replica.site import ReplicaSite
from tests.conftest import CORPUS, REFERENCE, valid_corpus_codes

MAXSIZE = 8 * 1024 * 1024  # DOWNLOAD_MAXSIZE as crawler/settings.py sets it
HOSTILE_CODE = "NW202203021800000001"


class Counter(socketserver.ThreadingTCPServer):
    """Another port of the site's host (the database's, say): counts every
    connection, whatever protocol it speaks."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        self.hits = 0
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), self.Handler)

    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            with self.server.lock:
                self.server.hits += 1
            self.request.settimeout(2)  # an FTP client waits for the server to speak first
            with contextlib.suppress(OSError):
                self.request.recv(4096)
            self.request.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\nContent-Length: 2\r\n\r\nok")


class HostileHandler(ReplicaHandler):
    """The replica, except robots.txt and the paths the test routes."""

    def do_GET(self):
        path = urlsplit(self.path).path
        with self.server.lock:
            self.server.asked[path] = self.server.asked.get(path, 0) + 1
        if path == "/robots.txt":
            return self._write(self.server.robots.encode(), 200, "text/plain")
        answer = self.server.routes.get(path)
        if answer is None:
            return super().do_GET()
        status, headers, body = answer
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if "Content-Length" not in headers and status < 300:
            self.close_connection = True  # the body's end is the connection's
        self.end_headers()
        self.wfile.write(body)
        return None


def serve(site: ReplicaSite, robots: str = "", routes: dict | None = None) -> ReplicaServer:
    server = ReplicaServer(site)
    server.RequestHandlerClass = HostileHandler
    server.robots, server.routes, server.asked, server.lock = robots, routes or {}, {}, threading.Lock()
    return server.start()


def _redirect(location: str, status: int = 302):
    return status, {"Location": location, "Content-Length": "0"}, b""


def _hostile_post(other: int) -> str:
    """The reference post, with back links to other schemes and ports."""
    head = REFERENCE.read_text(encoding="utf-8").split("---\n")[1]
    head = head.replace("2022-03-01 16:46:38", "2022-03-02 18:00:00")
    back = "｜".join(f"[返回{i}]({href})" for i, href in enumerate([
        "file://127.0.0.1/category/hebeiribao.html",         # the crawler's /category/hebeiribao.html
        "file://finews.withounder.com/category/hebeiribao.html",
        f"http://127.0.0.1:{other}/category/hebeiribao.html",
        f"ftp://127.0.0.1:{other}/category/hebeiribao.html",
        f"http://127.0.0.1:{other}/categories/",
        "//finews.withounder.com/category/hebeiribao.html",  # the real back link: read on the site
    ]))
    return (f"---\n{head}---\n<p>正文</p>\n\n"
            f"<http://finews.zning.xyz/html_News/NewsShare.html?infoCode={HOSTILE_CODE}>\n\n{back}\n")


@pytest.fixture(scope="module")
def other_port():
    server = Counter()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, other_port):
    """The corpus and one post with hostile back links; eight listed posts
    answer with a hostile redirect or body instead of their page."""
    folder = tmp_path_factory.mktemp("site")
    shutil.copytree(CORPUS, folder, dirs_exist_ok=True)
    other = other_port.server_address[1]
    (folder / "posts" / f"2022-03-02-{HOSTILE_CODE}.md").write_text(_hostile_post(other), encoding="utf-8")
    site = ReplicaSite.from_folder(folder)
    canary = folder / "canary.html"
    canary.write_text(site.post_page(site.entries[0]).replace("<h1>", "<h1>CANARY-a1b2c3 "), encoding="utf-8")
    valid = valid_corpus_codes()
    listed = [e for e in site.entries if normalize_info_code(e.post.raw_code or e.post.stem) in valid]
    pages = [e.path for e in listed[:8]]
    routes = {
        pages[0]: _redirect(f"file://127.0.0.1{canary}"),
        pages[1]: _redirect(f"http://127.0.0.1:{other}/x.html"),
        pages[2]: _redirect(f"ftp://127.0.0.1:{other}/x.html", 301),
        pages[3]: _redirect("data:text/html;base64,Q0FOQVJZLWExYjJjMw=="),  # CANARY-a1b2c3
        pages[4]: _redirect("/loop/b.html", 307),
        "/loop/b.html": _redirect(pages[4]),
        pages[5]: (200, {"Content-Type": "text/html", "Content-Encoding": "gzip"},
                   gzip.compress(b" " * (8 * MAXSIZE), compresslevel=9)),
        pages[6]: (200, {"Content-Type": "text/html", "Content-Length": str(MAXSIZE + 1)}, b" " * (MAXSIZE + 1)),
        pages[7]: (200, {"Content-Type": "text/html"}, b" " * (MAXSIZE + 1)),  # no length: cut when read
    }
    # The home page also lists a post on the other port.
    home = site.home()
    site.home = lambda: home.replace("</ul>", f'<li><a href="http://127.0.0.1:{other}/hebeiribao/2022/03/01/'
                                              f'NW202203012292975846.html">别处</a></li>\n</ul>', 1)
    server = serve(site, robots="User-agent: *\nAllow: /\n", routes=routes)
    yield server, pages, {normalize_info_code(e.post.raw_code or e.post.stem) for e in listed[:8]}, canary
    server.stop()


@pytest.fixture(scope="module")
def crawled(hostile, mongo_uri, tmp_path_factory):
    """One category crawl of the hostile site into a database of its own."""
    import os
    import subprocess
    import sys
    import uuid

    from finews.storage.db import connect, ensure_indexes
    from tests.conftest import ROOT

    server = hostile[0]
    name = f"finews_scope_{uuid.uuid4().hex[:10]}"
    client = connect(mongo_uri)
    ensure_indexes(client[name])
    env = {**os.environ, "MONGO_URI": mongo_uri, "MONGO_DATABASE": name, "FINEWS_RETRY_TIMES": "1",
           "FINEWS_DATA_DIR": str(tmp_path_factory.mktemp("var"))}
    result = subprocess.run([sys.executable, "-m", "scrapy", "crawl", "category", "-a", f"site={server.url}",
                             "-s", "AUTOTHROTTLE_ENABLED=False"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    yield result, client[name]
    client.drop_database(name)
    client.close()


@pytest.mark.slow
def test_nothing_off_the_site_is_fetched(crawled, other_port, hostile):
    result, db = crawled
    assert other_port.hits == 0, result.stderr[-3000:]
    for collection in ("posts", "rejects", "crawl_runs"):
        stored = json.dumps(list(db[collection].find()), default=str, ensure_ascii=False)
        assert "CANARY-a1b2c3" not in stored, collection
    # A request that was made or refused is a post or a reject under its URL:
    # none is file:, ftp: or data: (the back links to them were not followed).
    urls = [d["url"] for d in db.rejects.find()] + [d["url"] for d in db.posts.find()]
    assert [u for u in urls if not u.startswith(("http://", "https://"))] == []


@pytest.mark.slow
def test_every_page_not_read_is_a_reject_with_its_reason(crawled, hostile, other_port):
    _, db = crawled
    server, pages, hostile_codes, _ = hostile
    reasons = {d["url"]: d["reason"] for d in db.rejects.find()}
    assert server.url + "/loop/b.html" not in reasons  # a reject names the page asked for, not where it led
    expected = ["redirect_offsite"] * 4 + ["redirect_loop"] + ["download_too_large"] * 3
    assert [reasons.get(server.url + page) for page in pages] == expected, reasons
    other = f"http://127.0.0.1:{other_port.server_address[1]}"
    assert reasons.get(f"{other}/hebeiribao/2022/03/01/NW202203012292975846.html") == "offsite", reasons
    # The loop was seen at once, not after REDIRECT_MAX_TIMES (20) rounds.
    assert server.asked["/loop/b.html"] <= 2
    # Everything else is stored, the post with the hostile back links too.
    stored = {d["_id"] for d in db.posts.find({}, {"_id": 1})}
    assert stored == (valid_corpus_codes() - hostile_codes) | {HOSTILE_CODE}


@pytest.mark.slow
def test_a_run_that_could_not_read_some_pages_is_partial(crawled):
    result, db = crawled
    assert result.returncode == 0, result.stderr[-3000:]  # scrapy crawl: partial is 0 (finews run: 3)
    run = db.crawl_runs.find_one()
    assert run["outcome"] == "partial"
    fetch = {r: n for r, n in run["failures_by_reason"].items() if lookup(r).kind == FETCH}
    assert fetch == {"redirect_offsite": 4, "redirect_loop": 1, "download_too_large": 3, "offsite": 1}


@pytest.mark.slow
def test_robots_txt_forbidding_everything_is_honoured_for_every_feed(crawl, db, tmp_path):
    """The five list feeds are asked for at once and wait on one robots.txt:
    none is fetched, each is a ``robots_forbidden`` reject, and a run that
    read nothing is not ``clean``."""
    server = serve(ReplicaSite.from_folder(CORPUS), robots="User-agent: *\nDisallow: /\n")
    try:
        result = crawl("newslist", f"site={server.url}", check=False)
    finally:
        server.stop()
    assert server.asked.pop("/robots.txt") == 1
    assert server.asked == {}, result.stderr[-3000:]
    rejects = list(db.rejects.find())
    assert len(rejects) == 5 and {r["reason"] for r in rejects} == {"robots_forbidden"}
    run = db.crawl_runs.find_one()
    assert run["outcome"] == "failed" and result.returncode == 1  # nothing was read at all
