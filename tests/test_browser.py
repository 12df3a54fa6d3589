"""``finews serve`` as a reader sees it: pages opened in headless Chromium
(Debian's ``chromium``) over a crawled replica. The DOM Chromium builds
(after any script that could run) is checked against the database and the
corpus post files, and a screenshot of each page is kept in
``test-artifacts/`` for a person to look at.

Skipped without Chromium unless ``FINEWS_REQUIRE_CHROMIUM=1`` (``.ci/run``
installs it and sets it).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from urllib.parse import urljoin, urlsplit
from urllib.request import urlopen

import lxml.html
import pytest

from finews.core.normalize import normalize_post
from finews.serve.app import ServeServer
from finews.storage.store import PostStore
from tests.conftest import CORPUS, ROOT
from tests.test_serve import commands, stored  # noqa: F401 (module fixtures: the corpus crawled from the replica)

pytestmark = pytest.mark.slow
ARTIFACTS = ROOT / "test-artifacts"
REAL_SITE = ROOT / "tests" / "fixtures" / "finews-site" / "site"
REFERENCE = "NW202203012292975846"  # the reference post of the corpus


@pytest.fixture(scope="module")
def chromium():
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if not binary:
        message = "chromium not installed (apt-get install chromium)"
        if os.environ.get("FINEWS_REQUIRE_CHROMIUM") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return binary


def _browser(chromium: str, tmp_path, *args: str) -> str:
    result = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=3000", *args],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def open_page(chromium: str, tmp_path, url: str, shot: str):
    """The DOM as Chromium built it, and a screenshot kept as an artifact."""
    ARTIFACTS.mkdir(exist_ok=True)
    _browser(chromium, tmp_path, "--window-size=1280,1600", f"--screenshot={ARTIFACTS / shot}", url)
    assert (ARTIFACTS / shot).stat().st_size > 10_000  # a rendered page, not an empty canvas
    return lxml.html.document_fromstring(_browser(chromium, tmp_path, "--dump-dom", url))


@pytest.fixture(scope="module")
def served(stored):  # noqa: F811
    with ServeServer(stored) as server:
        yield server


def test_the_home_page_lists_the_newest_posts(chromium, served, stored, tmp_path):  # noqa: F811
    """The first posts a reader sees are the real site's (as real Jekyll
    rendered its home page) and the newest stored."""
    page = open_page(chromium, tmp_path, served.url + "/", "serve-home.png")
    shown = [" ".join(a.text_content().split()) for a in page.xpath("//section//li//a")]
    real = lxml.html.parse(str(REAL_SITE / "index.html")).getroot()
    assert shown[:10] == [" ".join(a.text_content().split()) for a in real.xpath("//section//li//a")][:10]
    newest = stored.posts.find_one({}, {"title": 1}, sort=[("published_at", -1)])
    assert newest["title"] in shown[:3]


def test_a_post_page_shows_its_words_and_its_links_work(chromium, served, stored, tmp_path):  # noqa: F811
    post = stored.posts.find_one({"_id": REFERENCE})
    url = served.url + _page_of(served, REFERENCE)
    page = open_page(chromium, tmp_path, url, "serve-post.png")
    sentence = _a_sentence((CORPUS / "posts" / f"2022-03-01-{REFERENCE}.md").read_text(encoding="utf-8"))
    text = " ".join(page.xpath("//section")[0].text_content().split())
    assert post["title"] in text and sentence in text
    links = {urljoin(url, href) for href in page.xpath("//a/@href")}
    own = sorted(link for link in links if urlsplit(link).netloc == urlsplit(served.url).netloc)
    assert {urlsplit(link).path for link in own} >= {"/", "/category/hebeiribao.html"}  # home, its category
    for link in own:
        with urlopen(link, timeout=30) as answer:
            assert answer.status == 200, link


def test_the_dashboard_shows_the_last_run(chromium, served, stored, tmp_path):  # noqa: F811
    run = stored.crawl_runs.find_one(sort=[("started_at", -1)])
    page = open_page(chromium, tmp_path, served.url + "/dashboard/", "serve-dashboard.png")
    first_row = " ".join(page.xpath("//table//tr[td]")[0].text_content().split())
    assert run["spider"] in first_row and run["outcome"] in first_row and str(run.get("stored", "")) in first_row


def test_hostile_posts_run_no_script_in_the_browser(chromium, db, tmp_path):
    """Whatever reached the database, no script of a post runs: the sanitizer,
    the escaping of titles and, as the backstop, the page's CSP."""
    marker = "document.documentElement.setAttribute('data-pwned','{}')"
    title = f"<img src=x onerror=\"{marker.format('title')}\">标题"
    post = normalize_post({"url": "http://127.0.0.1:9/x.html", "title": title, "time_text": "2022-03-01 10:00:00",
                           "body_html": "<p>正文</p>", "body_text": "正文", "raw_code": "NW202203012292979999",
                           "tags": ["河北日报新闻"], "category": "hebeiribao"})
    PostStore(db, near_duplicates=False).write_posts([post])
    # Another writer stored an unsanitized body: only the CSP stands between it and the reader.
    db.posts.update_one({"_id": "NW202203012292979999"}, {"$set": {
        "body_html": f"<p>正文</p><script>{marker.format('body')}</script>"
                     f"<img src=x onerror=\"{marker.format('onerror')}\">"}})
    db.raw_articles.delete_many({})
    with ServeServer(db) as server:
        for path in ("/", _page_of(server, "NW202203012292979999")):
            page = open_page(chromium, tmp_path, server.url + path, "serve-hostile.png")
            assert page.xpath("/html/@data-pwned") == [], path


def _page_of(server, code: str) -> str:
    import json

    with urlopen(f"{server.url}/api/posts/{code}", timeout=30) as answer:
        return json.loads(answer.read())["page"]


def _a_sentence(post_file: str) -> str:
    """A sentence of the article as its post file writes it (after the front
    matter and the ``> `` digest), markup removed."""
    body = post_file.split("\n---", 2)[-1]
    text = " ".join(lxml.html.fragment_fromstring(body, create_parent="div").text_content().split())
    sentences = [s for s in re.split(r"[。！？]", text) if len(s) > 15 and "http" not in s and ">" not in s]
    return sentences[1]
