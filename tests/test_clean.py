import re

"""Cleaning on real corpus articles, and sanitizing against hostile HTML."""

import pytest

from finews.pages import parse_post_page
from pipelines.clean import clean_article
from finews.postfile import read_post_file
from tests.conftest import POSTS


def _article(site, code):
    return clean_article(parse_post_page(site.post_page(site.share_entry(code))).body_html)


def test_reference_paragraphs(site):
    article = _article(site, "NW202203012292975846")
    # The corpus file holds 16 <p> paragraphs, two of them bold sub-headings.
    assert len(article.paragraphs) == 16
    assert article.paragraphs[0].startswith("近日，省政府新闻办召开新闻发布会")
    assert article.paragraphs[2] == "构建“一核、两极、四带、多集群”发展格局"
    assert article.paragraphs[-1] == "（文章来源：河北日报）"
    assert article.images == []


def test_eastmoney_widgets_go_and_their_words_stay(site):
    # The rolling-news copy of the 蔚来 story carries every kind of widget.
    name = "-202205262391921712.md"
    text = read_post_file(POSTS / name).body
    for widget in ("EM_StockImg_Start", 'class="keytip"', 'id="quote_', "display:none", "em_stock_key_common"):
        assert widget in text
    entry = next(e for e in site.entries if e.post.name == name)
    article = clean_article(parse_post_page(site.post_page(entry)).body_html)
    for leftover in ("EM_StockImg", "keytip", "quote_", "data-code", "display:none", "webquoteklinepic",
                     "em_stock_key_common", "quote.eastmoney.com", "<span"):
        assert leftover not in article.body_html
    assert "（文章来源：上海证券报）" in article.paragraphs
    assert "国内首款使用超低GWP(全球变暖潜值)制冷剂的新能源汽车来了！" in article.paragraphs
    assert "蔚来旗下ET7" in article.body_text
    assert article.images == re.findall(r'src="(https://dfscdn[^"]+)"', text)
    assert len(article.images) == 3  # pictures stay; the K-line chart image does not


def test_every_corpus_body_cleans_to_text(site):
    for entry in site.entries:
        article = clean_article(parse_post_page(site.post_page(entry)).body_html)
        assert article.body_text, entry.post.name
        assert "<script" not in article.body_html and "style=" not in article.body_html


XSS = [
    '<script>alert(1)</script>',
    '<img src=x onerror=alert(1)>',
    '<a href="javascript:alert(1)">x</a>',
    '<a href="JaVaScRiPt:alert(1)">x</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
    '<svg><script>alert(1)</script></svg>',
    '<svg onload=alert(1)>',
    '<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>',
    '<iframe src="javascript:alert(1)"></iframe>',
    '<style>body{background:url(javascript:alert(1))}</style>',
    '<p style="background:url(javascript:alert(1))">x</p>',
    '<body onload=alert(1)>',
    '<object data="javascript:alert(1)"></object>',
    '<form action="javascript:alert(1)"><input type=submit></form>',
    '<img src="jav&#x09;ascript:alert(1)">',
    '<a href="&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)">x</a>',
    '<div onmouseover="alert(1)">x</div>',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<base href="javascript:alert(1)//">',
    '<<script>script>alert(1)<</script>/script>',
]


@pytest.mark.parametrize("attack", XSS)
def test_no_script_survives(attack):
    html = clean_article(f"<p>正文</p>{attack}").body_html.lower()
    for bad in ("<script", "javascript:", "onerror", "onload", "onmouseover", "<svg", "<math", "<iframe",
                "<style", "style=", "data:", "<object", "<form", "<meta", "<base"):
        assert bad not in html, (attack, html)


def test_empty_and_garbage_input():
    assert clean_article("").body_text == ""
    assert clean_article("<<<>>>").body_html is not None
    assert clean_article("plain words").paragraphs == ["plain words"]
