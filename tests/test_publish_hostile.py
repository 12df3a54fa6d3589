"""Publishing cannot be injected (issue 18, item 4): what a hostile source
put in a title, media name, category, article link or body comes out of
``finews export --format jekyll`` as data, never as front matter, Liquid,
markup or a script link, and the replica renders such files as text.

Expected values come from PyYAML, ``html.unescape`` and lxml, not from the
exporter. Real Jekyll reads the same files in tests/test_publish_jekyll.py.
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import unquote

import lxml.html
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from finews.core.feeds import original_post
from finews.core.jekyll import post_file
from finews.core.normalize import normalize_post
from finews.replica.postfile import parse_post_file, read_post_source
from finews.replica.site import ReplicaSite
from finews.storage.reading import iter_posts, write_jekyll
from finews.storage.store import PostStore

KEYS = {"layout", "title", "date", "categories", "tags"}
SHANGHAI = timezone(timedelta(hours=8))
WHEN = datetime(2022, 3, 1, 8, 46, 38, tzinfo=UTC)
LINK_LINE = re.compile(r"^<([^<>\s]*)>\s*$", re.M)

# Values a feed or page controls, each aimed at one way into the file.
HOSTILE_TITLES = {
    "front_matter": 'x"\npermalink: /index.html\nlayout: none\ndate: 1999-01-01\ncategories: evil\n"',
    "markup": "<img src=x onerror=alert(1)>",
    "attribute": 'a" onmouseover="alert(1)',
    "liquid": "{{ site.time }} {% include evil.html %}",
    "yaml_specials": "- [a]: {b} # c & *d !e |f >g %h @i `j ' \\ \t\x85\u2028\ufeff\x00\x7f",
}
HOSTILE_MEDIA = {
    "front_matter": 'm\npermalink: /index.html',
    "markup": "<svg onload=alert(1)>",
    "link_text": "a](javascript:alert(1))[b",
    "yaml": "- x: y #z",
    "number": "123",
    "boolean": "yes",
    "ial": "*e*{: onclick=alert(1)}",
}
HOSTILE_CATEGORIES = {
    "front_matter": 'c\npermalink: /index.html',
    "yaml": "[a, b]",
    "spaces": "Reuters News",
    "number": "0x1f",
    "null": "null",
    "quote": 'a"b',
}
HOSTILE_LINKS = ["javascript:alert(1)", "data:text/html,<script>alert(1)</script>", "JAVASCRIPT:alert(1)",
                 " javascript:alert(1)", "http://x/<script>alert(1)</script>", "http://x/a b", "file:///etc/passwd",
                 "vbscript:msgbox(1)", "//evil.example/x", "http:alert(1)"]
HOSTILE_ARTICLES = [
    "<p>a</p><script>alert(1)</script>",
    "<p>a<img src=x onerror=alert(1)></p>",
    '<p><a href="jav&#x61;script:alert(1)">a</a></p>',
    '<p><a href="java\tscript:alert(1)">a</a></p>',
    "<p>a</p><iframe src=//evil.example></iframe>",
    '<p><img src="data:image/svg+xml,<svg onload=alert(1)>"></p>',
    "a\n{: onclick=\"alert(1)\"}",
    "[a](javascript:alert(1))",
]


def _post(title="标题", media="河北日报", category="hebeiribao", source_url="http://finance.eastmoney.com/a",
          body="<p>正文</p>") -> dict:
    return {"info_code": "NW202203012292975846", "kind": "media", "title": title, "published_at": WHEN,
            "media": media, "category": category, "tags": [media + "新闻"], "body_html": body,
            "source_url": source_url}


def _front_matter(text: str) -> dict:
    """The front matter as Jekyll finds it (``---`` line to ``---`` line), read by PyYAML."""
    match = re.match(r"\A---\n(.*?)\n---\n", text, re.S)
    assert match, text[:200]
    return yaml.safe_load(match.group(1))


def _listed(value) -> list:
    """A categories/tags value as Jekyll reads it: a string is split at spaces."""
    return value.split() if isinstance(value, str) else list(value)


def shown(text: str) -> str:
    """What a page or feed can show of a text: XML's characters only (XML 1.0 ``Char``), else U+FFFD."""
    return re.sub("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]", "\ufffd", text)


def _check_front_matter(text: str, title: str, category: str, tag: str) -> None:
    title, tag = shown(title), shown(tag)
    meta = _front_matter(text)
    assert set(meta) == KEYS
    assert meta["layout"] == "post"
    assert meta["date"] == "2022-03-01 16:46:38 +0800"  # PyYAML keeps "+0800" times as text
    assert html.unescape(meta["title"]) == title and not set('<>"') & set(meta["title"])
    assert [unquote(c) for c in _listed(meta["categories"])] == [category]
    assert [html.unescape(t) for t in _listed(meta["tags"])] == [tag]
    # finews' own reader (the replica's) agrees.
    post = parse_post_file(text, "2022-03-01-NW202203012292975846.md")
    assert html.unescape(post.title) == title.strip() and post.category == "/".join(_listed(meta["categories"])).strip()


values = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@settings(max_examples=300, deadline=None)
@given(title=values, media=values, category=values.filter(lambda s: s.strip()))
def test_any_title_media_and_category_read_back_exactly(title, media, category):
    text = post_file(_post(title, media, category), None)
    _check_front_matter(text, title, category, media + "新闻")


@settings(max_examples=200, deadline=None)
@given(title=values.filter(lambda s: s.strip()), media=values.filter(lambda s: s.strip()))
def test_the_feed_rebuild_writes_the_same_front_matter(title, media):
    fields = {"from": media, "infocode": "NW202203012292975846", "title": title, "showtime": "2022-03-01 16:46:38"}
    name, text = original_post("media", fields, {"text": "<p>正文</p>"})
    assert name == "2022-03-01-NW202203012292975846.md"
    from finews.core.slugs import media_slug
    # The title is written as the feed gave it; the media name as a crawl reads it (stripped).
    media = media.strip()
    _check_front_matter(text, title, media_slug(media), media + "新闻")


@pytest.mark.parametrize("case", sorted(HOSTILE_TITLES))
def test_hostile_titles_stay_the_title(case):
    _check_front_matter(post_file(_post(title=HOSTILE_TITLES[case]), None), HOSTILE_TITLES[case], "hebeiribao",
                        "河北日报新闻")


@pytest.mark.parametrize("case", sorted(HOSTILE_MEDIA))
def test_hostile_media_names_stay_the_tag(case):
    media = HOSTILE_MEDIA[case]
    text = post_file(_post(media=media), None)
    _check_front_matter(text, "标题", "hebeiribao", media + "新闻")
    # The back link's text is the tag, shown as text: no link, emphasis or attribute of its own.
    page = lxml.html.fromstring(_replica_page(text))
    back = [a for a in page.iter("a") if a.text_content().startswith("返回") and "首页" not in a.text_content()]
    assert [a.text_content() for a in back] == ["返回" + " ".join((media + "新闻").split())]
    assert [a.get("href") for a in back] == ["//finews.withounder.com/category/hebeiribao.html"]
    _assert_inert(page)


@pytest.mark.parametrize("case", sorted(HOSTILE_CATEGORIES))
def test_hostile_categories_stay_one_category(case):
    _check_front_matter(post_file(_post(category=HOSTILE_CATEGORIES[case]), None), "标题",
                        HOSTILE_CATEGORIES[case], "河北日报新闻")


@pytest.mark.parametrize("link", HOSTILE_LINKS)
def test_only_http_article_links_are_written(link):
    text = post_file(_post(source_url=link), None)
    assert LINK_LINE.findall(text) == [""]  # as the original wrote a post without a link: <>
    feed_fields = {"title": "t", "digest": "【t】d", "id": "202203012292975846", "infoCode": "NW202203012292975846",
                   "url_w": link, "showtime": "2022-03-01 16:46:38"}
    _, rolling = original_post("rolling", feed_fields, {"content": "正文"})
    assert LINK_LINE.findall(rolling) == [""]
    _assert_inert(lxml.html.fromstring(_replica_page(text)))


def test_http_article_links_are_written_as_they_are():
    link = "http://finance.eastmoney.com/news/1354,202112082206672930.html"
    assert LINK_LINE.findall(post_file(_post(source_url=link), None)) == [link]


@pytest.mark.parametrize("article", HOSTILE_ARTICLES)
def test_articles_with_active_content_are_published_sanitized(article):
    text = post_file(_post(body="<p>干净</p>"), article)
    assert text.split("\n---\n", 1)[1].startswith("<p>干净</p>\n\n<")
    fields = {"from": "河北日报", "infocode": "NW202203012292975846", "title": "t", "showtime": "2022-03-01 16:46:38"}
    _, rebuilt = original_post("media", fields, {"text": article})
    for written in (text, rebuilt):
        _assert_inert(lxml.html.fromstring(_replica_page(written)), images=True)


liquid_text = st.text(st.sampled_from(list('{}%"- xraw\nendr')), max_size=60)


@settings(max_examples=300, deadline=None)
@given(article=liquid_text)
def test_liquid_in_a_body_is_written_literally(article):
    """Jekyll runs Liquid on a body holding ``{{`` or ``{%``: the body is
    written so that the only Liquid in it outputs ``{`` (``{{ "{" }}``)."""
    from finews.core.jekyll import liquid_output

    text = post_file(_post(body=article), None)
    body = text.split("\n---\n", 1)[1]
    assert not re.search(r"\{[{%]", body.replace('{{ "{" }}', ""))
    assert liquid_output(body).startswith(article + "\n\n<")


def test_ordinary_posts_are_written_as_before():
    """The original's format: title quoted, category and tags as plain words, body as it is."""
    text = post_file(_post(), None)
    assert text == ('---\nlayout: post\ntitle: "标题"\ndate: 2022-03-01 16:46:38 +0800\ncategories: hebeiribao\n'
                    "tags: 河北日报新闻\n---\n<p>正文</p>\n\n<http://finance.eastmoney.com/a>\n\n"
                    "[返回河北日报新闻](//finews.withounder.com/category/hebeiribao.html)｜[返回首页](//finews.withounder.com/)")


# -- the replica renders titles as text ------------------------------------------------


def _replica_page(text: str) -> str:
    site = ReplicaSite([parse_post_file(text, "2022-03-01-NW202203012292975846.md")])
    return site.post_page(site.entries[0])


def _assert_inert(page, images: bool = False) -> None:
    """No element, attribute or link a browser would run (images only where
    an article may have them, with an http(s) or relative source)."""
    layout = ("AutoRefresh", "getFullYear", "GoogleAnalyticsObject")  # the site's own scripts
    scripts = [e for e in page.iter("script") if not any(word in (e.text or "") for word in layout)
               and not (e.get("src") or "").endswith("scale.fix.js")
               and not (e.get("type") == "application/ld+json" and "<" not in (e.text or ""))]
    assert scripts == []
    for element in page.iter():
        if not isinstance(element.tag, str) or element.tag == "body":  # the layout's own <body onload>
            continue
        banned = {"svg", "iframe", "embed", "object"} | (set() if images else {"img"})
        assert element.tag not in banned, lxml.html.tostring(element)
        for name, value in element.attrib.items():
            assert not name.startswith("on"), (element.tag, name)
            squeezed = re.sub(r"[\x00-\x20]", "", value).lower()
            assert not squeezed.startswith(("javascript:", "data:", "vbscript:")), (element.tag, name, value)


@pytest.mark.parametrize("case", sorted(HOSTILE_TITLES))
def test_replica_shows_exported_titles_as_text(case):
    title = HOSTILE_TITLES[case]
    text = post_file(_post(title=title), None)
    site = ReplicaSite([parse_post_file(text, "2022-03-01-NW202203012292975846.md")])
    entry = site.entries[0]
    for source in (site.post_page(entry), site.home(), site.categories_page(), site.listing("hebeiribao")):
        page = lxml.html.fromstring(source)
        _assert_inert(page)
        shown = [a.text_content() for a in page.iter("a", "h1") if a.get("href", entry.path) == entry.path]
        # lxml, like a browser, reads the title back; whitespace as YAML and HTML keep it.
        assert any(s.strip() == title.strip() for s in shown) or case == "yaml_specials", shown
    if case == "liquid":
        assert "{{ site.time }}" in lxml.html.fromstring(site.post_page(entry)).findtext(".//section/h1")


def test_replica_escapes_a_raw_hostile_title_of_a_source_file(tmp_path):
    """A post file the exporter did not write (the source's own) with a raw
    ``<img onerror>`` title and tag: the replica still shows them as text."""
    path = tmp_path / "2022-03-01-NW202203012292975846.md"
    path.write_text('---\nlayout: post\ntitle: "<img src=x onerror=alert(1)>"\ndate: 2022-03-01 16:46:38 +0800\n'
                    'categories: hebeiribao\ntags: "<svg/onload=alert(2)>新闻"\n---\n正文\n\n'
                    "<http://finews.zning.xyz/html_News/NewsShare.html?infoCode=NW202203012292975846>\n",
                    encoding="utf-8")
    site = ReplicaSite([read_post_source(path)])
    entry = site.entries[0]
    for source in (site.post_page(entry), site.home(), site.categories_page(), site.listing("hebeiribao")):
        _assert_inert(lxml.html.fromstring(source))
    assert lxml.html.fromstring(site.post_page(entry)).findtext(".//section/h1") == "<img src=x onerror=alert(1)>"


def test_replica_renders_an_exported_liquid_body_literally():
    text = post_file(_post(body="<p>{{ site.time }} {% endraw %} {%- include x -%}</p>"), None)
    page = lxml.html.fromstring(_replica_page(text))
    assert "{{ site.time }} {% endraw %} {%- include x -%}" in page.text_content()


# -- through the database and the exporter ------------------------------------------


def test_hostile_stored_posts_export_to_files_that_read_back(db, tmp_path):
    """Stored through PostStore (what a crawl stores), exported by ``write_jekyll``."""
    docs = []
    # Every hostile title, media and article goes through at least once (a zip of the
    # titles and media stopped at the shorter, leaving media and articles out).
    titles, medias = list(HOSTILE_TITLES.values()), list(HOSTILE_MEDIA.values())
    for number in range(max(len(titles), len(medias), len(HOSTILE_ARTICLES))):
        title, media = titles[number % len(titles)], medias[number % len(medias)]
        code = f"NW2022030122929758{number:02d}"
        doc = normalize_post({"url": f"http://127.0.0.1:9/x/{code}.html", "title": title,
                              "time_text": "2022-03-01 16:46:38", "body_html": "<p>正文 {{ site.time }}</p>",
                              "body_text": "正文", "raw_code": code, "media": media,
                              "source_url": "http://finance.eastmoney.com/a"})
        doc["source_url"] = HOSTILE_LINKS[number]  # whatever is stored, even what normalize no longer stores
        doc["raw_article"] = HOSTILE_ARTICLES[number % len(HOSTILE_ARTICLES)]
        docs.append(doc)
    assert PostStore(db).write_posts(docs)["inserted"] == len(docs)
    out = tmp_path / "site"
    assert write_jekyll(db, iter_posts(db, {}), out) == len(docs)
    stored = {doc["_id"]: doc for doc in db.posts.find()}
    for path in sorted((out / "_posts").glob("*.md")):
        text = path.read_text(encoding="utf-8")
        post = stored["NW" + path.stem.rsplit("-NW", 1)[1]]
        meta = _front_matter(text)
        assert set(meta) == KEYS
        assert html.unescape(meta["title"]) == shown(post["title"])
        assert [unquote(c) for c in _listed(meta["categories"])] == [post["category"]]
        assert [html.unescape(t) for t in _listed(meta["tags"])] == post["tags"]
        assert LINK_LINE.findall(text) == [""]
    site = ReplicaSite.from_folder(out / "_posts")
    assert len(site.entries) == len(docs)
    for entry in site.entries:
        page = lxml.html.fromstring(site.post_page(entry))
        _assert_inert(page)
        assert "{{ site.time }}" in page.text_content()
    for source in (site.home(), site.categories_page()):
        _assert_inert(lxml.html.fromstring(source))
