"""The replica renders what real Jekyll rendered (``shared/corpus/finews-site/site``).

Every corpus post page, the home page, ``/categories/``, ``/emnews/`` and every
category page of the real build is compared with the replica's page for the
same path, element by element inside ``<section>`` (tag, attributes, text,
markup). Differences kept on purpose are listed in ``KEPT_DIFFERENCES`` with
their reason; none is inside ``<section>`` for the corpus.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

import lxml.html
import pytest

from finews.replica import kramdown
from finews.replica.postfile import PostFile
from finews.replica.site import SITE_URL, ReplicaSite, jekyll_time
from tests.conftest import ROOT

REAL_SITE = ROOT / "tests" / "fixtures" / "finews-site" / "site"  # a copy of shared/corpus/finews-site


# What the replica does differently from the real pages, on purpose.
KEPT_DIFFERENCES = {
    "head: description, ld+json, analytics, html5shiv":
        "not rendered: no spider reads them and the SEO excerpt would need Jekyll's excerpt rules",
    'head: <meta charset="utf-8"> (real: "UTF-8")':
        "same meaning; the gbk fault and tests/test_faults.py rewrite this exact string",
    "category pages: a.next after 500 posts":
        "scale mode only (the corpus never has 500 posts in a category): real pages list every post",
    "category pages: one for every media category, <title> from its first post's tag when the "
    "category has no page file":
        "the bundled corpus holds 10 of the site's category page files; the site's scripts made one per medium",
    "post files whose front matter is not YAML: left out with a warning":
        "Jekyll logs a YAML error and still publishes the body at a path dated by the build, a page no "
        "spider could tell from a real post",
    "categories: one slug per post":
        "Jekyll splits `categories: a b` into two categories (/a/b/… URLs); no corpus post has such a slug",
}


def _section(html: str):
    return lxml.html.document_fromstring(html).xpath("//div[@class='wrapper']/section")[0]


def _elements(section) -> list[tuple]:
    """Each top-level element: tag, attributes, text, markup; then the loose text between them."""
    out = [("text", (section.text or "").strip())]
    for node in section:
        markup = lxml.html.tostring(node, encoding="unicode", with_tail=False)
        if isinstance(node.tag, str):
            out.append((node.tag, dict(node.attrib), node.text_content(), markup))
        else:  # a comment (eastmoney's article markup has some)
            out.append(("comment", {}, node.text, markup))
        out.append(("text", (node.tail or "").strip()))
    return out


def _real(path: str) -> str:
    file = REAL_SITE / unquote(urlsplit(path).path).lstrip("/")
    return (file / "index.html" if path.endswith("/") else file).read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def replica_site():
    return ReplicaSite.from_folder()


def _real_post_paths() -> set[str]:
    pages = {"/" + str(p.relative_to(REAL_SITE)) for p in REAL_SITE.rglob("*.html")}
    return {p for p in pages if re.search(r"/\d{4}/\d{2}/\d{2}/[^/]+\.html$", p)}


def test_the_replica_serves_exactly_the_post_pages_jekyll_published(replica_site):
    assert {unquote(e.path) for e in replica_site.entries} == _real_post_paths()
    assert len(replica_site.entries) == 54


@pytest.mark.parametrize("path", sorted(_real_post_paths()))
def test_each_post_page_matches_the_real_one_element_by_element(replica_site, path):
    entry = replica_site.post_at(path)
    assert entry is not None, f"the replica does not serve {path}"
    mine, real = _section(replica_site.post_page(entry)), _section(_real(path))
    assert [e[0] for e in _elements(mine)] == [e[0] for e in _elements(real)]  # same elements, same order
    for got, want in zip(_elements(mine), _elements(real), strict=True):
        assert got == want
    # And the section's source, byte for byte: what raw-source readers (the Jekyll export) see.
    assert _raw_section(replica_site.post_page(entry)) == _raw_section(_real(path))


def _raw_section(html: str) -> str:
    return html[html.index("<section>"):html.index("</section>")]


def _listing_pages(site: ReplicaSite) -> list[tuple[str, str | None]]:
    pages = [("/", site.home()), ("/categories/", site.categories_page()), ("/emnews/", site.rolling_news())]
    for file in sorted((REAL_SITE / "category").glob("*.html")):
        pages.append((f"/category/{file.name}", site.listing(file.stem)))
    return pages


def test_listing_pages_match_the_real_ones(replica_site):
    pages = _listing_pages(replica_site)
    assert len(pages) == 3 + 16
    for path, html in pages:
        assert html is not None, path
        assert _elements(_section(html)) == _elements(_section(_real(path))), path
        assert _raw_section(html) == _raw_section(_real(path)), path


def test_only_category_pages_the_real_site_has_are_served(replica_site):
    assert replica_site.listing("sitenews") is None  # no category page file, not a medium
    assert replica_site.listing("emnews") is None  # rolling news are at /emnews/ only
    assert replica_site.listing("nope") is None


def test_absolute_links_point_at_the_real_site_and_listing_links_are_root_relative(replica_site):
    entry = replica_site.share_entry("NW202203012292975846")
    doc = lxml.html.document_fromstring(replica_site.post_page(entry))
    assert doc.xpath("//header/h1/a/@href") == [f"{SITE_URL}/"]
    assert doc.xpath("//link[@rel='canonical']/@href") == [f"{SITE_URL}{entry.path}"]
    back = doc.xpath("//section/p[a[starts-with(., '返回')]]/a/@href")
    assert back == ["//finews.withounder.com/category/hebeiribao.html", "//finews.withounder.com/"]
    for path, html in _listing_pages(replica_site):
        hrefs = lxml.html.document_fromstring(html).xpath("//section//ul/li/a/@href")
        assert (hrefs and all(h.startswith("/") and not h.startswith("//") for h in hrefs)) or (path.startswith(
            "/category/") and not hrefs)
        assert all(replica_site.post_at(h) for h in hrefs), path


def test_home_lists_the_100_newest_posts_and_categories_20_per_tag():
    site = ReplicaSite.scaled(300)
    home = lxml.html.document_fromstring(site.home())
    assert home.xpath("//section/h2[1]/a/@href") == ["../categories/"]
    assert home.xpath("//section/ul/li/a/@href") == [e.path for e in site.entries[:100]]
    sections = lxml.html.document_fromstring(site.categories_page()).xpath("//section/h2")
    assert len(sections) == len(site.tags()) >= 20
    for heading in sections:
        items = heading.getnext().xpath("li/a/@href")
        assert items == [e.path for e in site.tags()[heading.get("id")][:20]]


# -- kramdown's rendering ---------------------------------------------------------


@pytest.mark.parametrize("source, html", [
    ("<>\n", "<p>&lt;&gt;</p>\n"),
    ("<http://a.example/x?a=1&b=2>\n", '<p><a href="http://a.example/x?a=1&amp;b=2">http://a.example/x?a=1&amp;b=2</a></p>\n'),
    ("> 摘要\n", "<blockquote>\n  <p>摘要</p>\n</blockquote>\n"),
    ('<p>a</p><p class=x>b<br>c</p>\n', '<p>a</p>\n<p class="x">b<br />c</p>\n'),
    ('<p><a href="/q?a=1&b=2">x</a></p>\n', '<p><a href="/q?a=1&amp;b=2">x</a></p>\n'),
    ("<p>1 & 2 &amp; 3</p>\n", "<p>1 &amp; 2 &amp; 3</p>\n"),
    ("[返回](//finews.withounder.com/)\n", '<p><a href="//finews.withounder.com/">返回</a></p>\n'),
    ("<div>unclosed\n\n<http://x.example/>\n", "<div>unclosed\n\n&lt;http://x.example/&gt;\n</div>\n"),
])
def test_kramdown_rendering(source, html):
    assert kramdown.render(source) == html


# -- times -------------------------------------------------------------------------


def test_dates_without_offset_show_eight_hours_later_and_may_move_to_the_next_day():
    late = PostFile(name="2022-03-01-NW202203012292970000.md", title="t", date="2022-03-01 16:30:00",
                    category="hebeiribao", tags=["河北日报新闻"], body="x\n")
    site = ReplicaSite([late])
    entry = site.entries[0]
    assert entry.path == "/hebeiribao/2022/03/02/NW202203012292970000.html"
    assert "<small>[GMT+8, Asia/Shanghai, CST] 2022-03-02 00:30:00 &nbsp; </small>" in site.post_page(entry)
    assert entry.time_text == "2022-03-01 16:30:00"  # the share host shows the written time
    written = jekyll_time("2022-03-01 16:30:00 +0800")
    assert (written.isoformat(), jekyll_time("2022-03-01 16:30:00").isoformat()) == (
        "2022-03-01T16:30:00+08:00", "2022-03-02T00:30:00+08:00")
    assert jekyll_time("+0800") is None and jekyll_time("") is None


# -- cases beyond the corpus, rendered by real Jekyll (tests/fixtures/jekyll_extra) --

EXTRA = ROOT / "tests" / "fixtures" / "jekyll_extra"


@pytest.fixture(scope="module")
def extra_site():
    return ReplicaSite.from_folder(EXTRA / "_posts")


def test_extra_cases_are_published_where_jekyll_published_them(extra_site):
    real = {"/" + str(p.relative_to(EXTRA / "site")) for p in (EXTRA / "site").rglob("*.html")}
    assert {unquote(e.path) for e in extra_site.entries} == real
    assert "/hebeiribao/2022/03/02/late.html" in real  # 16:30 without +0800: the next day's URL
    assert {"/2022/03/05/nofm.html", "/2022/03/06/blankfirst.html", "/2022/03/07/empty.html"} <= real


@pytest.mark.parametrize("path", sorted("/" + str(p.relative_to(EXTRA / "site"))
                                        for p in (EXTRA / "site").rglob("*.html")))
def test_extra_cases_match_real_jekyll(extra_site, path):
    real = (EXTRA / "site" / path.lstrip("/")).read_text(encoding="utf-8")
    mine = extra_site.post_page(extra_site.post_at(path))
    assert _elements(_section(mine)) == _elements(_section(real))
    assert _raw_section(mine) == _raw_section(real)


@pytest.mark.parametrize("body", ["<p>" * 20000, "<div><span>" * 5000, "> " * 5000, "<!--" * 20000,
                                  "<?" * 20000, "`" * 20000 + "x", "*a " * 20000])
def test_hostile_bodies_render_without_exhausting_the_renderer(body):
    """Deep nesting must not hit Python's recursion limit (the replica would drop the
    connection); unclosed comments or code spans must not rescan the rest of the body."""
    html = kramdown.render(body + "\n")
    assert html.endswith("\n") and len(html) >= len(body)
