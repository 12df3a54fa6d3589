"""The spiders on pages real Jekyll rendered (``tests/fixtures/finews-site``, a copy of
``shared/corpus/finews-site``).

Fast tests call the spider callbacks on saved responses built from every page
of the site; the slow test crawls the folder served by a plain static file
server and checks every stored post against the post file it came from.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import lxml.etree
import lxml.html
import pytest
from markdown_it import MarkdownIt
from scrapy import Request
from scrapy.http import HtmlResponse
from scrapy.utils.test import get_crawler

from crawler.items import PostItem
from crawler.spiders.category import CategorySpider
from finews.core.dates import SITE_TZ
from finews.core.infocode import normalize_info_code
from finews.core.pages import parse_post_page
from finews.core.slugs import media_from_tag
from finews.replica.postfile import read_post_file
from finews.replica.site import BUNDLED_CORPUS
from pipelines.clean import CleanPipeline
from pipelines.normalize import NormalizePipeline

# A copy of ``shared/corpus/finews-site`` (real Jekyll's output) kept in the
# repository, so that a clone alone runs these tests; the posts are the bundled corpus.
SITE = Path(__file__).resolve().parent / "fixtures" / "finews-site" / "site"
POST_FILES = BUNDLED_CORPUS / "posts"
assert SITE.is_dir() and POST_FILES.is_dir(), f"the real site is missing: {SITE}"

BASE = "https://finews.withounder.com"
POST_PATH = re.compile(r"/(?:[^/]+/)?\d{4}/\d{2}/\d{2}/[^/]+\.html$")
POST_PAGES = sorted(p for p in SITE.rglob("*.html") if POST_PATH.search("/" + p.relative_to(SITE).as_posix()))
LISTING_PAGES = sorted([SITE / "index.html", SITE / "categories" / "index.html", SITE / "emnews" / "index.html",
                        *(SITE / "category").glob("*.html")])
SHOWN = re.compile(r"<small>\s*[\[(]GMT\+8[^\])]*[\])]\s*([^<&]+?)\s*(?:&nbsp;)?\s*</small>")
_markdown = MarkdownIt("commonmark", {"html": True})


def page_path(file: Path) -> str:
    relative = file.relative_to(SITE).as_posix()
    if relative.endswith("index.html"):
        relative = relative[: -len("index.html")]
    return "/" + relative


def response_for(file: Path) -> HtmlResponse:
    url = BASE + quote(page_path(file))
    return HtmlResponse(url=url, body=file.read_bytes(), headers={"Content-Type": "text/html; charset=utf-8"},
                        request=Request(url))


def post_file_for(url: str):
    """The post file behind a post page: Jekyll names the page after it."""
    stem = unquote(urlsplit(url).path.rsplit("/", 1)[-1]).removesuffix(".html")
    matches = [p for p in POST_FILES.glob(f"*-{stem}.md") if p.name[11:-3] == stem]
    assert len(matches) == 1, (url, matches)
    return read_post_file(matches[0])


def shown_time(post) -> str:
    """What the page shows for the file's ``date:``: as written with +0800;
    without an offset YAML reads UTC and the page shows it 8 hours later."""
    written = datetime.strptime(post.date[:19], "%Y-%m-%d %H:%M:%S")
    return f"{written if '+0800' in post.date else written + timedelta(hours=8):%Y-%m-%d %H:%M:%S}"


_TEXT_BLOCKS = {"p", "div", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "td", "th", "tr",
                "center", "figcaption"}


def file_body_text(post) -> str:
    """The article of a post file in its own words, one paragraph a line: its
    body without article link and back links, rendered as Jekyll does, then
    the text of each innermost block (whitespace runs as one space; script,
    style and hidden blocks are no words of the article). Plain lxml, not the
    product's cleaner, so that a cleaner losing or inventing words fails."""
    body = post.body
    cut = body.rfind(f"<{post.link}>")
    root = lxml.html.fragment_fromstring(_markdown.render(body[:cut] if cut >= 0 else body), create_parent="div")
    for hidden in root.xpath(".//script | .//style | .//*[contains(translate(@style, ' ', ''), 'display:none')]"):
        hidden.drop_tree()
    blocks = (" ".join(element.text_content().split()) for element in root.iter()
              if element.tag in _TEXT_BLOCKS and not any(d.tag in _TEXT_BLOCKS for d in element.iterdescendants()))
    return "\n".join(text for text in blocks if text)


@pytest.fixture(scope="module")
def spider():
    crawler = get_crawler(CategorySpider)
    crawler.spider = CategorySpider.from_crawler(crawler, site=BASE)
    return crawler.spider


def stored_fields(item):
    """What the clean and normalize pipelines make of an item (a reject keeps its reason)."""
    for pipeline in (CleanPipeline(), NormalizePipeline()):
        item = pipeline.process_item(item)
    return dict(item)


def test_the_site_has_every_published_post():
    assert len(POST_PAGES) == 54


@pytest.mark.parametrize("file", POST_PAGES, ids=lambda p: p.relative_to(SITE).as_posix())
def test_post_page_gives_back_its_file(spider, file):
    response = response_for(file)
    post = post_file_for(response.url)
    items = [o for o in spider.parse_post(response, listing_title=post.title) if isinstance(o, PostItem)]
    assert len(items) == 1
    fields = stored_fields(items[0])
    page_time = SHOWN.search(file.read_text(encoding="utf-8")).group(1)
    assert fields["time_text"] == page_time == shown_time(post)
    if post.category == "sitenews":  # the site's "init" post names no article
        assert fields["reject_reason"] == "missing_link"
        return
    assert not fields.get("reject_reason"), fields.get("reject_detail")
    assert fields["title"] == post.title
    assert fields["category"] == post.category
    assert fields["tags"] == post.tags
    assert fields["media"] == media_from_tag(post.tags[0])
    assert fields["source_url"] == post.link  # empty where the page has no article link (<>)
    assert fields["info_code"] == normalize_info_code(post.raw_code or post.stem)
    assert fields["body_text"] == file_body_text(post)
    assert fields["published_at"] == datetime.strptime(page_time, "%Y-%m-%d %H:%M:%S").replace(
        tzinfo=SITE_TZ).astimezone(UTC)


@pytest.mark.parametrize("file", LISTING_PAGES, ids=lambda p: p.relative_to(SITE).as_posix())
def test_listing_pages_lead_only_to_pages_that_exist(spider, file):
    spider._posts.clear()
    spider._listings.clear()
    requests = list(spider.parse_listing(response_for(file)))
    assert all(r.url.startswith(BASE + "/") for r in requests)
    posts = {unquote(urlsplit(r.url).path) for r in requests if r.callback == spider.parse_post}
    listings = {unquote(urlsplit(r.url).path) for r in requests if r.callback == spider.parse_listing}
    assert posts <= {page_path(p) for p in POST_PAGES}
    assert listings <= {page_path(p) for p in LISTING_PAGES}
    if file.parent.name == "category":
        slug = file.stem
        assert posts == {page_path(p) for p in POST_PAGES if page_path(p).startswith(f"/{slug}/")}
    if file == SITE / "index.html":
        assert listings == {"/categories/"}


def test_home_categories_and_emnews_list_every_post_once(spider):
    spider._posts.clear()
    spider._listings.clear()
    entry_pages = [SITE / "index.html", SITE / "categories" / "index.html", SITE / "emnews" / "index.html"]
    requests = [r for file in entry_pages for r in spider.parse_listing(response_for(file))
                if r.callback == spider.parse_post]
    assert sorted(unquote(urlsplit(r.url).path) for r in requests) == sorted(page_path(p) for p in POST_PAGES)


def test_back_links_lead_to_category_pages_on_the_crawled_host():
    crawler = get_crawler(CategorySpider)
    spider = crawler.spider = CategorySpider.from_crawler(crawler, site="http://127.0.0.1:8000")
    file = SITE / "hebeiribao" / "2022" / "03" / "01" / "NW202203012292975846.html"
    body = file.read_bytes()
    url = "http://127.0.0.1:8000/hebeiribao/2022/03/01/NW202203012292975846.html"
    response = HtmlResponse(url=url, body=body, encoding="utf-8", request=Request(url))
    followed = [o.url for o in spider.parse_post(response) if isinstance(o, Request)]
    # The page links //finews.withounder.com/category/hebeiribao.html; its home link is not a listing.
    assert followed == ["http://127.0.0.1:8000/category/hebeiribao.html"]


def test_feed_entries_are_post_pages_with_their_titles():
    feed = lxml.etree.parse(str(SITE / "feed.xml"))
    ns = {"a": "http://www.w3.org/2005/Atom"}
    entries = feed.findall("a:entry", ns)
    assert entries
    pages = {page_path(p): p for p in POST_PAGES}
    for entry in entries:
        path = unquote(urlsplit(entry.find("a:link[@rel='alternate']", ns).get("href")).path)
        page = parse_post_page(pages[path].read_text(encoding="utf-8"))
        assert page.title == entry.findtext("a:title", namespaces=ns)


def test_both_time_layouts_are_read():
    page = (SITE / "hebeiribao" / "2022" / "03" / "01" / "NW202203012292975846.html").read_text(encoding="utf-8")
    square = parse_post_page(page)
    round_ = parse_post_page(page.replace("[GMT+8, Asia/Shanghai, CST]", "(GMT+8, Asia/Shanghai, CST)"))
    assert square.time_text == round_.time_text == "2022-03-01 16:46:38"


# -- the whole site, crawled over HTTP ----------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def static_site():
    """``finews-site/site`` behind a plain static file server on loopback."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port),
                               "--directory", str(SITE)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "static server did not start"
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.mark.slow
def test_crawl_of_the_real_site_is_clean_and_stores_every_post(crawl, static_site, db):
    crawl("category", f"site={static_site}")
    run = db.crawl_runs.find_one()
    assert run["outcome"] == "clean", run

    expected = {}
    for file in POST_PAGES:
        post = post_file_for(file.name)
        if post.category != "sitenews":
            expected.setdefault(normalize_info_code(post.raw_code or post.stem), []).append((file, post))
    stored = {d["_id"]: d for d in db.posts.find()}
    assert set(stored) == set(expected)  # twins (rolling and media copy of one article) are one post
    for code, doc in stored.items():
        file, post = next(((f, p) for f, p in expected[code] if page_path(f) == urlsplit(doc["url"]).path),
                          (None, None))
        assert post is not None, (code, doc["url"])
        assert (doc["title"], doc["category"], doc["tags"]) == (post.title, post.category, post.tags)
        assert doc["media"] == media_from_tag(post.tags[0])
        assert doc["body_text"] == file_body_text(post)
        assert doc["source_url"] == post.link  # empty where the page has no article link (<>)
        shown = datetime.strptime(shown_time(post), "%Y-%m-%d %H:%M:%S").replace(tzinfo=SITE_TZ)
        assert doc["published_at"].replace(tzinfo=UTC) == shown.astimezone(UTC)

    rejects = {urlsplit(r["url"]).path: r["reason"] for r in db.rejects.find()}
    assert rejects == {"/sitenews/2021/12/01/init.html": "missing_link"}


def test_a_post_with_an_empty_link_is_stored_under_the_code_in_its_name(spider):
    """kramdown renders the empty link ``<>`` as the text ``<p>&lt;&gt;</p>``."""
    file = SITE / "zhongguojijinbao" / "2022" / "05" / "29" / "NW202205292395438077.html"
    post = post_file_for(file.name)
    text = file.read_text(encoding="utf-8")
    rendered = f'<p><a href="{post.link}">{post.link}</a></p>'
    assert rendered in text
    response = response_for(file).replace(body=text.replace(rendered, "<p>&lt;&gt;</p>").encode())
    fields = stored_fields(next(o for o in spider.parse_post(response) if isinstance(o, PostItem)))
    assert not fields.get("reject_reason"), fields.get("reject_detail")
    assert fields["info_code"] == "NW202205292395438077"
    assert fields["source_url"] == ""  # no article link: none is made up
    assert fields["body_text"] == file_body_text(post) and "<>" not in fields["body_text"]


def test_category_keeps_its_case_from_the_back_link(spider):
    """Jekyll lower-cases a category in the URL (``CBOT`` → ``/cbot/…``); the
    back link to its category page keeps it as the post file writes it."""
    file = SITE / "hebeiribao" / "2022" / "03" / "01" / "NW202203012292975846.html"
    text = file.read_text(encoding="utf-8").replace("/category/hebeiribao.html", "/category/CBOT.html")
    url = BASE + "/cbot/2022/03/01/NW202203012292975846.html"
    response = HtmlResponse(url=url, body=text.encode(), encoding="utf-8", request=Request(url))
    item = next(o for o in spider.parse_post(response) if isinstance(o, PostItem))
    assert item["category"] == "CBOT"


# -- post files beyond the corpus, rendered by real Jekyll (tests/fixtures/jekyll_extra) --

EXTRA = Path(__file__).resolve().parent / "fixtures" / "jekyll_extra"
HOSTILE_PAGES = sorted((EXTRA / "site" / "hebeiribao").rglob("NW*.html"))


def extra_response(file: Path) -> HtmlResponse:
    url = BASE + "/" + file.relative_to(EXTRA / "site").as_posix()
    return HtmlResponse(url=url, body=file.read_bytes(), encoding="utf-8", request=Request(url))


@pytest.mark.parametrize("file", HOSTILE_PAGES, ids=lambda p: p.stem)
def test_hostile_articles_rendered_by_jekyll_are_stored_with_the_words_around_them(spider, file):
    post = read_post_file(next((EXTRA / "_posts").glob(f"*-{file.stem}.md")))
    fields = stored_fields(next(o for o in spider.parse_post(extra_response(file)) if isinstance(o, PostItem)))
    assert not fields.get("reject_reason"), fields.get("reject_detail")
    assert (fields["info_code"], fields["title"], fields["tags"]) == (file.stem, post.title, post.tags)
    assert fields["source_url"] == post.link
    text = fields["body_text"]
    assert "<" not in text and "返回" not in text and "elsewhere" not in fields["body_html"]
    words = re.findall(r"<p>(before \w+|after \w+|a|b)</p>", post.body)
    assert words and all(w in text.split("\n") for w in words), (words, text)


@pytest.mark.parametrize("name", ["nofm", "blankfirst", "empty"])
def test_a_page_of_a_file_without_front_matter_is_a_reject_with_its_reason(spider, name):
    file = next((EXTRA / "site" / "2022").rglob(f"{name}.html"))
    outputs = list(spider.parse_post(extra_response(file)))
    assert [(o["reject_reason"], o["url"]) for o in outputs] == [("no_front_matter", extra_response(file).url)]


def test_an_article_link_naming_another_code_does_not_move_the_post(spider):
    """A post page whose trailer is missing could end its article with a link
    to another post; the page's own name keeps the key."""
    file = SITE / "zhongguojijinbao" / "2022" / "05" / "29" / "NW202205292395438077.html"
    other = "http://finews.zning.xyz/html_News/NewsShare.html?infoCode=NW202203012292975846"
    post = post_file_for(file.name)
    text = file.read_text(encoding="utf-8").replace(post.link, other)
    response = response_for(file).replace(body=text.encode())
    before = spider.crawler.stats.get_value("finews/link_code_mismatch", 0)
    fields = stored_fields(next(o for o in spider.parse_post(response) if isinstance(o, PostItem)))
    assert fields["info_code"] == "NW202205292395438077" and fields["source_url"] == other
    assert spider.crawler.stats.get_value("finews/link_code_mismatch") == before + 1


def test_a_title_written_into_the_head_cannot_move_the_section(spider):
    """Jekyll writes the title unescaped into ``og:title``: markup there is
    text of an attribute, not the page's section."""
    file = SITE / "hebeiribao" / "2022" / "03" / "01" / "NW202203012292975846.html"
    text = file.read_text(encoding="utf-8")
    fake = '"><section><small>[GMT+8] 1999-01-01 00:00:00</small><h1>假标题</h1><p>假正文</p></section><x y="'
    og_title = '<meta property="og:title" content="'
    page = parse_post_page(text.replace(og_title, og_title + fake, 1))
    assert page == parse_post_page(text)
