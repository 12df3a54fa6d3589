"""Cleaning on real corpus articles, and sanitizing against hostile HTML."""

import re
from urllib.parse import urlsplit

import lxml.html
import pytest

from finews.core.clean import ALLOWED_ATTRIBUTES, ALLOWED_TAGS, clean_article
from finews.core.pages import parse_post_page
from finews.replica.postfile import read_post_file
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


def test_eastmoney_widgets_go_and_their_words_stay():
    # The rolling-news copy of the 蔚来 story carries every kind of widget (the
    # real site does not publish this dateless file: its article is cleaned as written).
    name = "-202205262391921712.md"
    text = read_post_file(POSTS / name).body
    for widget in ("EM_StockImg_Start", 'class="keytip"', 'id="quote_', "display:none", "em_stock_key_common"):
        assert widget in text
    article = clean_article(text[:text.rfind("<>")])
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
    '<a href=" javascript:alert(1)">x</a>',
    '<a href="java\tscript:alert(1)">x</a>',
    '<a href="java&#0000009;script:alert(1)">x</a>',
    '<a href="vbscript:msgbox(1)">x</a>',
    '<a href="&#x6A;avascript:alert(1)">x</a>',
    '<img src="x" srcset="javascript:alert(1) 1x">',
    '<svg><a xlink:href="javascript:alert(1)"><text>x</text></a></svg>',
    '<svg><use href="data:image/svg+xml;base64,PHN2Zz48c2NyaXB0PmFsZXJ0KDEpPC9zY3JpcHQ+PC9zdmc+"/></svg>',
    '<svg><animate onbegin=alert(1) attributeName=x dur=1s>',
    '<math><a xlink:href="javascript:alert(1)">x</a></math>',
    '<math href="javascript:alert(1)">x</math>',
    '<details open ontoggle=alert(1)>',
    '<video><source onerror="alert(1)"></video>',
    '<audio src=x onerror=alert(1)>',
    '<embed src="javascript:alert(1)">',
    '<link rel="stylesheet" href="javascript:alert(1)">',
    '<isindex type=image src=1 onerror=alert(1)>',
    '<table background="javascript:alert(1)"><tr><td>x</td></tr></table>',
    '<p style="width:expression(alert(1))">x</p>',
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    '<template><script>alert(1)</script></template>',
    '<img src=`javascript:alert(1)`>',
    '<a href="data:text/html,<script>alert(1)</script>">x</a>',
    '<xmp><script>alert(1)</script></xmp>',
    '<form><button formaction="javascript:alert(1)">x</button></form>',
    '<input onfocus=alert(1) autofocus>',
    '<marquee onstart=alert(1)>x</marquee>',
    '<object type="text/x-scriptlet" data="https://x/evil.sct"></object>',
]


@pytest.mark.parametrize("attack", XSS)
def test_no_script_survives(attack):
    """Judged on the markup, as a browser would read it: text that merely
    mentions ``onerror`` (escaped) is harmless; an element or attribute is not."""
    html = clean_article(f"<p>正文</p>{attack}").body_html
    root = lxml.html.fragment_fromstring(html, create_parent="div")
    for element in root.iterdescendants():
        if not isinstance(element.tag, str):
            continue
        assert element.tag in ALLOWED_TAGS, (attack, html)
        for name, value in element.attrib.items():
            assert name in ALLOWED_ATTRIBUTES.get(element.tag, set()) | {"rel"}, (attack, html)
            cleaned = re.sub(r"[\x00-\x20]", "", value).lower()
            assert not cleaned.startswith(("javascript:", "vbscript:", "data:")), (attack, html)
            if name in ("href", "src"):
                assert urlsplit(cleaned).scheme in ("", "http", "https"), (attack, html)
    assert "<script" not in html.lower() and "<style" not in html.lower()


def test_empty_and_garbage_input():
    assert clean_article("").body_text == ""
    garbage = clean_article("<<<>>>")  # a "<" not followed by a letter is text (HTML)
    assert (garbage.body_html, garbage.body_text) == ("&lt;&lt;&lt;&gt;&gt;&gt;", "<<<>>>")
    assert clean_article("plain words").paragraphs == ["plain words"]


HOSTILE_TAGS = ["<svg>", "<math>", '<embed src="http://elsewhere.example/x.swf">', "<table>",
                '<a href="http://elsewhere.example/">', "<template>", "<noscript>", "<textarea>", "<xmp>",
                "<iframe>", "<plaintext>", '<base href="http://elsewhere.example/">',
                '<meta http-equiv="refresh" content="0;url=http://elsewhere.example/">']


@pytest.mark.parametrize("tag", HOSTILE_TAGS)
def test_an_unclosed_tag_keeps_the_words_around_it(tag):
    article = clean_article(f"<p>前段文字</p>\n{tag}\n<p>中间 <b>粗体</b></p>\n<p>后段文字</p>")
    assert article.paragraphs[0] == "前段文字"
    assert {"中间 粗体", "后段文字"} <= set(article.paragraphs)
    assert "<" not in article.body_text and "&lt;" not in article.body_html


@pytest.mark.parametrize("tag", ["noscript", "template", "textarea", "iframe"])
def test_text_in_raw_text_elements_is_words_not_markup(tag):
    article = clean_article(f"<p>前</p><{tag}><p>里面<b>字</b></p></{tag}><p>后</p>")
    assert article.paragraphs == ["前", "里面字", "后"]


def test_ampersands_survive_cleaning_as_text():
    article = clean_article("<p>" + "& " * 50_000 + "</p><p>a &amp; b</p>")
    assert article.paragraphs == [" ".join(["&"] * 50_000), "a & b"]
    assert article.body_html.count("&amp;") == 50_001
    assert "\ufdd0" not in clean_article("<p>x\ufdd0y</p>").body_html
