"""Hostile posts exported by ``finews export --format jekyll`` and built by
real Jekyll with the site's own layouts (tests/fixtures/finews-site/source): each
post is published at its own URL with the stored title, date, category and
tags, titles show as text, no Liquid runs, no script link is written
(issue 18, item 4).

Needs Debian's Jekyll: ``apt-get install jekyll ruby-jekyll-feed
ruby-jekyll-seo-tag``. Skipped without it unless ``FINEWS_REQUIRE_JEKYLL=1``
(CI sets it, so a missing Jekyll fails there).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import lxml.etree
import lxml.html
import pytest

from finews.core.feeds import original_post
from finews.core.jekyll import url_segment
from finews.core.normalize import normalize_post
from finews.storage.store import PostStore
from tests.conftest import ROOT
from tests.test_publish_hostile import (
    HOSTILE_ARTICLES,
    HOSTILE_CATEGORIES,
    HOSTILE_LINKS,
    HOSTILE_MEDIA,
    HOSTILE_TITLES,
    _assert_inert,
    shown,
)

pytestmark = pytest.mark.slow

# The site's own sources as real Jekyll built them (a copy of shared/corpus/finews-site/source)
# and the build environment of this test.
SITE = ROOT / "tests" / "fixtures" / "finews-site" / "source"
BUILD_CONFIG = ROOT / "tests" / "fixtures" / "jekyll_build.yml"
SHANGHAI = timezone(timedelta(hours=8))
LIQUID = "{{ site.time }} {% endraw %} {%- raw -%} {{ '{' }} {% include evil.html %}"


@pytest.fixture(scope="module")
def jekyll():
    binary = shutil.which("jekyll")
    if not binary:
        message = "jekyll not installed (apt-get install jekyll ruby-jekyll-feed ruby-jekyll-seo-tag)"
        if os.environ.get("FINEWS_REQUIRE_JEKYLL") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return binary


def _hostile_posts() -> list[dict]:
    """One post per hostile title, media name, category and link, stored as a crawl would."""
    titles, media, categories = list(HOSTILE_TITLES.values()), list(HOSTILE_MEDIA.values()), list(
        HOSTILE_CATEGORIES.values())
    posts = []
    for number in range(max(len(titles), len(media), len(categories), len(HOSTILE_LINKS))):
        code = f"NW2022030122929758{number:02d}"
        doc = normalize_post({
            "url": f"http://127.0.0.1:9/x/{code}.html", "title": titles[number % len(titles)],
            "time_text": f"2022-03-01 1{number % 10}:46:38", "body_html": f"<p>正文{number} {LIQUID}</p>",
            "body_text": "正文", "raw_code": code, "media": media[number % len(media)],
            "category": categories[number % len(categories)], "source_url": "http://finance.eastmoney.com/a"})
        doc["source_url"] = HOSTILE_LINKS[number % len(HOSTILE_LINKS)]  # whatever is stored
        doc["raw_article"] = HOSTILE_ARTICLES[number % len(HOSTILE_ARTICLES)]
        posts.append(doc)
    return posts


@pytest.fixture(scope="module")
def built(jekyll, tmp_path_factory, mongo_uri):
    """Hostile posts stored, exported by the ``finews`` command, built by Jekyll."""
    import pymongo

    tmp = tmp_path_factory.mktemp("publish")
    client = pymongo.MongoClient(mongo_uri)
    db = client[f"publish_{os.getpid()}"]
    try:
        posts = _hostile_posts()
        assert PostStore(db).write_posts(posts)["inserted"] == len(posts)
        stored = {doc["_id"]: doc for doc in db.posts.find()}
        source = tmp / "source"
        shutil.copytree(SITE, source)
        env = {**os.environ, "MONGO_URI": mongo_uri, "MONGO_DATABASE": db.name}
        result = subprocess.run([sys.executable, "-m", "finews.cli", "export", "--format", "jekyll", str(source)],
                                cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
    finally:
        client.drop_database(db.name)
        client.close()
    # The feed rebuild (newslist posts) writes through the same functions: a rolling item too.
    rolling = {"title": HOSTILE_TITLES["front_matter"], "digest": "【t】<script>alert(1)</script>{{ site.time }}",
               "id": "202203012292975899", "infoCode": "NW202203012292975899", "url_w": "javascript:alert(1)",
               "showtime": "2022-03-01 19:46:38"}
    name, text = original_post("rolling", rolling, {"content": f"滚动 {LIQUID}"})
    (source / "_posts" / name).write_text(text, encoding="utf-8")
    stored["rolling"] = {"title": rolling["title"], "category": "emnews", "tags": ["东财滚动新闻"],
                         "published_at": datetime(2022, 3, 1, 11, 46, 38, tzinfo=UTC), "stem": name[11:-3]}
    out = tmp / "site"
    result = subprocess.run([jekyll, "build", "--safe", "-s", str(source), "-d", str(out), "--config",
                             f"{source / '_config.yml'},{BUILD_CONFIG}"],
                            env={**os.environ, "JEKYLL_ENV": "production"}, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return stored, source, out


def _page_of(out: Path, stem: str) -> Path:
    pages = list(out.rglob(f"{stem}.html"))
    assert len(pages) == 1, (stem, pages)
    return pages[0]


def test_every_hostile_post_is_published_at_its_own_url(built):
    stored, source, out = built
    files = sorted((source / "_posts").glob("*.md"))
    assert len(files) == len(stored)
    for path in files:
        page = _page_of(out, path.stem[11:])
        # Jekyll's URL: /<categories>/<date>/<stem>.html, the date in Shanghai time
        assert re.search(r"/2022/03/01/[^/]+\.html$", page.as_posix())
    home = lxml.html.parse(str(out / "index.html")).getroot()
    assert "最近100条新消息" in home.text_content()  # no post took over /index.html
    assert len(home.findall(".//section//li")) == len(stored)
    _assert_inert(home)


def test_titles_dates_categories_and_tags_are_the_stored_ones(built):
    stored, _, out = built
    for doc in stored.values():
        stem = doc.get("stem") or doc["_id"]
        page = lxml.html.parse(str(_page_of(out, stem))).getroot()
        # Shown as text, exactly (what no page can carry as U+FFFD).
        assert page.findtext(".//section/h1") == shown(doc["title"])
        time_line = page.findtext(".//section/small")
        assert f"{doc['published_at'].astimezone(SHANGHAI):%Y-%m-%d %H:%M:%S}" in time_line
        tags = [em.text_content() for em in page.findall(".//section/small/em")]
        assert tags == [shown(tag) for tag in doc["tags"]]
        url = _page_of(out, stem).relative_to(out).as_posix()
        assert url == f"{url_segment(doc['category']).lower()}/2022/03/01/{stem}.html"
        meta_title = page.find(".//meta[@property='og:title']").get("content")
        assert meta_title == shown(doc["title"])


def test_no_liquid_runs_and_no_markup_or_script_link_is_live(built):
    stored, _, out = built
    for doc in stored.values():
        stem = doc.get("stem") or doc["_id"]
        page = lxml.html.parse(str(_page_of(out, stem))).getroot()
        _assert_inert(page, images=True)
        section = page.find(".//section")
        assert LIQUID in section.text_content()  # literally, not executed
        for a in section.iter("a"):
            assert a.get("href", "").startswith(("http://", "https://", "//")), a.get("href")
    for listing in ("categories/index.html", "emnews/index.html", "category/hebeiribao.html"):
        _assert_inert(lxml.html.parse(str(out / listing)).getroot())
    feed = lxml.etree.parse(str(out / "feed.xml"))
    titles = feed.findall(".//{http://www.w3.org/2005/Atom}entry/{http://www.w3.org/2005/Atom}title")
    assert len(titles) == min(len(stored), 10)  # jekyll-feed lists the 10 newest
    for title in titles:  # type="html": the HTML a feed reader shows
        shown_html = lxml.html.fragment_fromstring(title.text or "", create_parent="div")
        assert [e.tag for e in shown_html.iter()] == ["div"], title.text
