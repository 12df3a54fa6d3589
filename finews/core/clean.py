"""Clean article HTML: strip eastmoney widget markup, then sanitize.

``clean_article`` is a plain function of HTML text; ``pipelines/clean.py``
applies it to crawled items.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import lxml.html
import nh3
from lxml import etree
from lxml.html import HtmlElement

from finews.core.pages import html_fragment

# Chart blocks are delimited by comments, not by an element of their own.
_STOCK_IMAGE_BLOCK = re.compile(
    r"<!--\s*EM_StockImg_Start\s*-->.*?<!--\s*EM_StockImg_End\s*-->", re.S | re.I
)
_HIDDEN = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)
_QUOTE_SITES = re.compile(r"^(?:https?:)?//(?:quote|data|so)\.eastmoney\.com/", re.I)
_SPACE = re.compile(r"[\s\u00a0\u3000]+")
# Characters XML (and so lxml) refuses, and the noncharacter used as the
# ampersand placeholder below; they carry no text anyway.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufdd0\ufffe\uffff]")
# nh3 (ammonia) takes time quadratic in the number of ``&`` in one text node
# (a 600 kB body of "& " took 1.6 s, 6 MB would take minutes); it is linear
# on any other character, so ``&amp;`` crosses it as this noncharacter.
_AMPERSAND = "\ufdd0"
# Tags whose content a parser (lxml or nh3) reads as raw text, turning the
# markup inside (or, unclosed, the rest of the article) into literal ``<p>``
# words: the tags are removed so that their content is read as markup.
_UNWRAPPED_TAGS = re.compile(
    r"</?(?:noscript|template|textarea|xmp|noembed|noframes|iframe|title|plaintext)(?=[\s/>])[^>]{0,1000}>?", re.I)
# Elements dropped with their content; any other element not allowed is
# unwrapped before nh3, which would drop SVG and MathML content (an unclosed
# <svg> or <math> would take the rest of the article with it).
_DROPPED_WITH_CONTENT = {"script", "style"}

ALLOWED_TAGS = {
    "p", "br", "strong", "b", "em", "i", "u", "s", "sub", "sup", "blockquote",
    "ul", "ol", "li", "h2", "h3", "h4", "h5", "h6", "pre", "code", "hr",
    "table", "thead", "tbody", "tfoot", "tr", "th", "td", "caption",
    "img", "a", "center", "figure", "figcaption",
}
ALLOWED_ATTRIBUTES = {
    "*": set(),  # none on every tag (nh3 would allow lang and title)
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
}
URL_SCHEMES = {"http", "https"}
BLOCK_TAGS = {
    "p", "div", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre",
    "td", "th", "caption", "figcaption", "center", "figure", "table", "tr", "ul", "ol", "hr",
}


@dataclass
class CleanArticle:
    body_html: str
    body_text: str
    images: list[str] = field(default_factory=list)

    @property
    def paragraphs(self) -> list[str]:
        return self.body_text.split("\n") if self.body_text else []


def clean_article(html: str) -> CleanArticle:
    """Sanitized article HTML, its text (one paragraph a line) and images.

    Widget markup is removed first while its structure is still visible; the
    stock and board names inside quote links stay as plain words. nh3 then
    decides what may remain: no script, style, event handler or non-http URL.
    """
    html = _UNWRAPPED_TAGS.sub("", _STOCK_IMAGE_BLOCK.sub("", _CONTROL.sub("", html or "")))
    root = html_fragment(html)
    if root is not None:
        _strip_widgets(root)
        _unwrap_unknown(root)
        _drop_layout_whitespace(root)
        html = _inner_html(root)
    safe = nh3.clean(
        html.replace("&amp;", _AMPERSAND),
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
    ).replace(_AMPERSAND, "&amp;").strip()
    safe_root = html_fragment(safe)
    if safe_root is None:
        return CleanArticle("", "", [])
    paragraphs = _paragraphs(safe_root)
    images = [src for src in safe_root.xpath(".//img/@src") if src.strip()]
    return CleanArticle(safe, "\n".join(paragraphs), images)


def _inner_html(root: HtmlElement) -> str:
    return (root.text or "") + "".join(
        lxml.html.tostring(child, encoding="unicode", with_tail=True) for child in root
    )


def _unwrap_unknown(root: HtmlElement) -> None:
    for node in list(root.iterdescendants()):
        if isinstance(node.tag, str) and node.tag not in ALLOWED_TAGS and node.tag not in _DROPPED_WITH_CONTENT:
            node.drop_tag()


def _drop_layout_whitespace(root: HtmlElement) -> None:
    """Remove blank text between block elements: kramdown puts each block on
    a line of its own, the share host's JSON does not, and the same article
    must clean to the same HTML from both."""
    if root.text and not root.text.strip() and len(root) and root[0].tag in BLOCK_TAGS:
        root.text = None
    for node in root.iter():
        if not isinstance(node.tag, str):
            continue
        if node.tag in BLOCK_TAGS and node.tail and not node.tail.strip():
            node.tail = None
        if node.text and not node.text.strip() and len(node) and node[0].tag in BLOCK_TAGS:
            node.text = None


def _strip_widgets(root: HtmlElement) -> None:
    for node in root.xpath(".//*[@style]"):
        if _HIDDEN.search(node.get("style", "")):
            node.drop_tree()
    for node in root.xpath(".//span[starts-with(@id,'quote_') or starts-with(@id,'bkquote_')]"):
        if not node.text_content().strip():
            node.drop_tree()
    unwrap = root.xpath(
        ".//span[starts-with(@id,'stock_') or starts-with(@id,'bk_')]"
        " | .//a[contains(concat(' ', normalize-space(@class), ' '), ' keytip ')]"
        " | .//span[contains(concat(' ', normalize-space(@class), ' '), ' em_stock_key_common ')]"
        " | .//a[@href]"
    )
    for node in unwrap:
        if node.tag == "a" and not _QUOTE_SITES.match(node.get("href", "")) and "keytip" not in node.get("class", ""):
            continue
        node.drop_tag()


def _paragraphs(root: HtmlElement) -> list[str]:
    """Text split at block boundaries and line breaks, whitespace collapsed."""
    pieces: list[str] = []
    for event, node in etree.iterwalk(root, events=("start", "end")):
        if not isinstance(node.tag, str):
            if event == "end" and node.tail:
                pieces.append(node.tail)
            continue
        if event == "start":
            if node.tag in BLOCK_TAGS or node.tag == "br":
                pieces.append("\n")
            if node.text:
                pieces.append(node.text)
        else:
            if node.tag in BLOCK_TAGS:
                pieces.append("\n")
            if node.tail and node is not root:
                pieces.append(node.tail)
    lines = (_SPACE.sub(" ", line).strip() for line in "".join(pieces).split("\n"))
    return [line for line in lines if line]
