"""Page parsers on pages the replica renders from the real corpus."""

import json

import pytest

from finews.core.pages import (
    PageError,
    category_listing_urls,
    parse_listing,
    parse_post_page,
    parse_share_text,
    share_page_title,
)
from tests.conftest import corpus_posts

BASE = "http://127.0.0.1:9"


def test_listings_are_links_on_the_page_never_derived_from_posts(site):
    home = site.home()
    urls = category_listing_urls(home, BASE)
    assert all(url.removeprefix(BASE).split("/")[1] in home for url in urls)
    assert f"{BASE}/category/sitenews.html" not in urls  # the real site has no such page
    assert category_listing_urls(
        '<section><h2><a href="../categories/">分类</a></h2><ul><li><a href="/emnews/">x</a></li></ul>'
        '<p><a href="../achieves/emnews/">all</a> <a href="http://x.example/category/a.html">a</a></p></section>',
        f"{BASE}/") == [f"{BASE}/categories/", "http://x.example/category/a.html"]


def test_listing_lists_posts_newest_first(site):
    listing = parse_listing(site.listing("cailianshe"), f"{BASE}/category/cailianshe.html")
    assert listing.tag == "财联社新闻"
    assert [url.rsplit("/", 1)[1] for url, _ in listing.links] == [
        "NW202205312398034850.html", "NW202205302396671291.html", "NW202204212352070339.html"]
    assert listing.next_url is None


def test_long_listings_paginate():
    from finews.replica.site import ReplicaSite
    small = ReplicaSite(corpus_posts(), page_size=2)
    first = parse_listing(small.listing("cailianshe"), f"{BASE}/category/cailianshe.html")
    assert len(first.links) == 2 and first.next_url == f"{BASE}/category/cailianshe.html?page=2"
    second = parse_listing(small.listing("cailianshe", 2), first.next_url)
    assert len(second.links) == 1 and second.next_url is None


@pytest.mark.parametrize("post", [p for p in corpus_posts() if p.file_date], ids=lambda p: p.name)
def test_post_pages_give_back_their_file(site, post):
    entry = next(e for e in site.entries if e.post is post or e.post.name == post.name)
    page = parse_post_page(site.post_page(entry))
    assert page.title == post.title
    assert page.source_url == post.link
    assert page.tags == post.tags
    assert "返回首页" not in page.body_html
    assert (post.link or "&lt;&gt;") not in page.body_html


def test_reference_post_page(site):
    page = parse_post_page(site.post_page(site.share_entry("NW202203012292975846")))
    assert page.time_text == "2022-03-01 16:46:38"
    assert page.body_html.startswith("<p>近日，省政府新闻办召开新闻发布会")
    assert page.body_html.rstrip().endswith('<p class="em_media">（文章来源：河北日报）</p>')


@pytest.mark.parametrize("html, reason", [
    ("", "empty_page"),
    ("<html><body><p>hello</p></body></html>", "no_post_section"),
    ("<div class='wrapper'><section><small>x</small><p>no heading</p></section></div>", "no_title_heading"),
])
def test_broken_post_pages_say_why(html, reason):
    with pytest.raises(PageError) as error:
        parse_post_page(html)
    assert error.value.reason == reason


def test_share_text_reads_both_body_keys(site):
    rolling = parse_share_text(site.share_json("202112082206672930"))
    assert rolling.body_html == "<p>离岸人民币兑美元升至6.3512，为2018年以来最高水平。</p>"
    media = parse_share_text(site.share_json("NW202203012292975846"))
    assert (media.media, media.showtime) == ("河北日报", "2022-03-01 16:46:38")
    assert json.loads(site.share_json("NW202203012292975846")).keys() >= {"text", "title", "showtime", "medianame"}
    assert share_page_title(site.share_page("NW202203012292975846")).startswith("《河北省制造业")


@pytest.mark.parametrize("text, reason", [
    ("<html>not json</html>", "bad_json"), ("[1, 2]", "bad_json"), ('{"title": "x"}', "empty_article"),
    ('{"text": 5}', "empty_article"),
])
def test_broken_share_text_says_why(text, reason):
    with pytest.raises(PageError) as error:
        parse_share_text(text)
    assert error.value.reason == reason
