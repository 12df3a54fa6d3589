"""Parsers for the pages the spiders fetch: plain functions of page text.

Each returns data or raises ``PageError`` with a reason that ends up in the
``rejects`` collection; none of them needs Scrapy.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from html import unescape
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import lxml.html
from lxml import etree
from parsel import Selector
from w3lib.encoding import html_body_declared_encoding, http_content_type_encoding, read_bom

from finews.core.reasons import Reason

# The mirror's own hosts: its pages' absolute links (back links, canonical)
# point here whatever host serves a copy of it (finews.zning.me: the older one).
MIRROR_HOST = "finews.withounder.com"
MIRROR_URL = f"https://{MIRROR_HOST}"
MIRROR_HOSTS = frozenset({MIRROR_HOST, "finews.zning.me"})
_BACK_LINK_PREFIX = "返回"
# "[GMT+8, Asia/Shanghai, CST] 2022-03-01 16:46:38 &nbsp;"; an older layout used round brackets.
_TIME_LABEL = re.compile(r"^\s*[\[(]\s*GMT\+8[^\])]*[\])]\s*")
_SECTION = re.compile(r"<section\b[^>]*>", re.I)
_TAGS_LINE = re.compile(r"<small>\s*tags:", re.I)
_PARAGRAPH = re.compile(r"<p[\s>]", re.I)
# An unclosed element in an article makes kramdown keep the rest of the post
# file as raw HTML: the article link and back links then end the section as
# the text "&lt;URL&gt;" and "[返回…](…)｜[返回首页](…)", before the closing tags
# kramdown adds at the end of the document.
_UNRENDERED_LINK = re.compile(r"&lt;([^\s<>]*?)&gt;")
_BLANK_LINE_BEFORE = re.compile(r"\n[ \t]*\n[ \t]*\Z")
_UNRENDERED_BACK_LINKS = re.compile(r"(?:\[返回[^\]\n]*\]\([^)\s]*\)[｜|]?[ \t]*)*")
_CLOSING_TAG = re.compile(r"</[A-Za-z][\w:.-]*\s*>")
_MARKDOWN_LINK = re.compile(r"\]\(([^)\s]*)\)")
_TRAILER_WINDOW = 8192
# /categories/, /emnews/ and /category/<slug>.html (pages of a listing: ?page=N)
_LISTING_PATH = re.compile(r"^/(?:categories/|emnews/|category/[^/]+\.html)$")


class PageError(ValueError):
    """A page that cannot yield a post; ``reason`` is a short stable code."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass
class ListingPage:
    tag: str
    links: list[tuple[str, str]] = field(default_factory=list)  # (url, title)
    next_url: str | None = None


@dataclass
class PostPage:
    title: str
    time_text: str
    body_html: str
    source_url: str
    tags: list[str]
    raw_article: str = ""  # the article exactly as written in the page source
    back_links: list[str] = field(default_factory=list)  # hrefs of the 返回… links after the article


@dataclass
class ShareText:
    title: str
    showtime: str
    media: str
    body_html: str


_TEXT_TYPES = {"application/json", "application/xml", "application/xhtml+xml", "application/atom+xml"}
_HTML_END = re.compile(rb"</html\s*>\s*$", re.I)


def decode_page(body: bytes, content_type: str | None = None, expect_html: bool = True) -> str:
    """Page text, however the server encoded it.

    A charset in the header, a BOM or (for HTML) a ``<meta charset>`` decides;
    with none, UTF-8 is tried strictly and GB18030 (a superset of GBK, which
    Chinese servers send undeclared) is the fallback. Raises ``PageError``
    for a binary body and for HTML cut off before ``</html>``.
    """
    kind = (content_type or "").split(";")[0].strip().lower()
    if (kind and not kind.startswith("text/") and kind not in _TEXT_TYPES) or b"\x00" in body[:2048]:
        raise PageError(Reason.NOT_TEXT, f"binary body ({content_type or 'no content type'})")
    if expect_html and not _HTML_END.search(body[-512:]):
        raise PageError(Reason.TRUNCATED, f"no </html> after {len(body)} bytes")
    bom, _ = read_bom(body)
    declared = bom or http_content_type_encoding(content_type or "") or (
        html_body_declared_encoding(body) if expect_html else None)
    if declared:  # w3lib resolves it (GBK and GB2312 to GB18030) or drops an unknown one
        return body.decode(declared, errors="replace")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return body.decode("gb18030", errors="replace")


def category_listing_urls(html: str, page_url: str) -> list[str]:
    """Listing pages a page links to outside its lists of posts.

    The real home page links to ``/categories/`` (a heading link); listings
    are never derived from post URLs, since not every category has a page
    (``/category/sitenews.html`` does not exist). Only links shaped like a
    listing of the site contract are returned (``/categories/``, ``/emnews/``,
    ``/category/<slug>.html``); the caller decides which hosts it fetches.
    """
    section = _content(Selector(text=html or "<html/>"))
    urls: dict[str, None] = {}
    for href in section.xpath(".//a[not(ancestor::li)]/@href").getall():
        url = _join(page_url, href)
        if url and is_listing_url(url):
            urls.setdefault(url)
    return list(urls)


def is_listing_url(url: str) -> bool:
    """Whether a URL has the path of one of the mirror's listing pages."""
    return bool(_LISTING_PATH.match(unquote(urlsplit(url).path)))


def parse_listing(html: str, page_url: str) -> ListingPage:
    """Post links of a listing: a category page, ``/emnews/``, the home page's
    newest posts or every section of ``/categories/`` (one ``<h2>`` and
    ``<ul>`` per tag)."""
    section = _content(Selector(text=html or "<html/>"))
    tag = (section.css("h2::text").get() or "").strip()
    links = []
    for anchor in section.css("ul li a"):
        url = _join(page_url, anchor.attrib.get("href", ""))
        if url:
            links.append((url, " ".join(anchor.css("::text").getall()).strip()))
    next_url = _join(page_url, section.css("a.next::attr(href)").get() or "")
    return ListingPage(tag, links, next_url or None)


def parse_post_page(html: str) -> PostPage:
    """Split a post page into title, time, article HTML, article link, tags.

    The article is written by strangers, so the page's own parts are found
    in the page text before any of it is parsed: the time line and title
    right after ``<section>``, the tags line, back links and article link at
    the end of the section. Only then is each part parsed on its own; an
    unclosed ``<table>`` or ``<svg>`` in the article cannot swallow them.
    """
    if not html or not html.strip():
        raise PageError(Reason.EMPTY_PAGE)
    opening = _section_opening(html)
    if opening is None:
        raise PageError(Reason.NO_POST_SECTION)
    close = html.rfind("</section>")
    inner = html[opening.end():close if close > opening.end() else len(html)]
    heading_end = inner.find("</h1>")
    if heading_end < 0:
        raise PageError(Reason.NO_TITLE_HEADING)
    heading_end += len("</h1>")
    head = html_fragment(inner[:heading_end])
    heading = head.find(".//h1") if head is not None else None
    if head is None or heading is None:
        raise PageError(Reason.NO_TITLE_HEADING)
    stamp = head.find(".//small")
    time_text = _TIME_LABEL.sub("", stamp.text_content()).strip() if stamp is not None else ""

    rest = inner[heading_end:]
    tags: list[str] = []
    tags_at = _last_match(_TAGS_LINE, rest)
    if tags_at is not None and _only_trailing(rest, tags_at, "</small>"):
        line = html_fragment(rest[tags_at:])
        tags = [t.strip() for t in line.xpath(".//em/text()") if t.strip()] if line is not None else []
        rest = rest[:tags_at]
    back_links: list[str] = []
    paragraph_at, paragraph = _last_paragraph(rest)
    if paragraph is not None and _is_back_links(paragraph):
        back_links = [a.get("href", "").strip() for a in paragraph.iter("a") if a.get("href", "").strip()]
        rest = rest[:paragraph_at]
        paragraph_at, paragraph = _last_paragraph(rest)
    source_url = ""
    if paragraph is not None and _is_article_link(paragraph):
        anchor = paragraph.find("a")
        source_url = anchor.get("href", "").strip() if anchor is not None else ""
        rest = rest[:paragraph_at]
    elif not back_links:
        unrendered = _unrendered_trailer(rest)
        if unrendered is not None:
            start, source_url, back_links, closing = unrendered
            rest = rest[:start] + closing
    article = rest.strip("\n")
    return PostPage(heading.text_content().strip(), time_text, article, source_url, tags, article, back_links)


def share_page_title(html: str) -> str:
    """The share page's ``<title>``: the one thing its markup promises."""
    return " ".join(Selector(text=html or "<html/>").css("title::text").getall()).strip()


def json_object(text: str) -> dict[str, Any]:
    """A JSON answer (share text, list feed) as a dict; ``PageError`` (``bad_json``) otherwise.

    Its strings are made valid Unicode (``valid_text``): JSON can spell lone
    surrogates (``"\\ud800"``) that no UTF-8 writer, MongoDB's included, accepts."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, TypeError) as error:
        raise PageError(Reason.BAD_JSON, str(error)[:200]) from error
    except RecursionError:  # arrays or objects nested thousands deep
        raise PageError(Reason.BAD_JSON, "nested too deep to read") from None
    if not isinstance(data, dict):
        raise PageError(Reason.BAD_JSON, "not a JSON object")
    cleaned: dict[str, Any] = valid_text(data)
    return cleaned


_SURROGATE = re.compile(r"[\ud800-\udfff]")


def valid_text(value: Any) -> Any:
    """``value`` with every lone surrogate in its strings (keys too, at any
    depth) replaced by U+FFFD, the replacement character, as a decoder
    replaces bytes it cannot read. Valid text comes back unchanged."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value) if _SURROGATE.search(value) else value
    if isinstance(value, dict):
        return {valid_text(k): valid_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [valid_text(v) for v in value]
    return value


def parse_share_text(text: str) -> ShareText:
    """The ``GetNewsText.do`` JSON: article HTML under ``text`` or ``content``."""
    data = json_object(text)
    inner = data.get("data")
    payload: dict[str, Any] = inner if isinstance(inner, dict) else data
    body = payload.get("text") or payload.get("content") or ""
    if not isinstance(body, str) or not body.strip():
        raise PageError(Reason.EMPTY_ARTICLE)
    return ShareText(
        title=_str(payload.get("title")),
        showtime=_str(payload.get("showtime") or payload.get("datetime")),
        media=_str(payload.get("medianame") or payload.get("from")),
        body_html=body,
    )


def _content(sel: Selector) -> Selector:
    """The page's ``<section>`` (the whole page when it has none)."""
    return (sel.css("div.wrapper > section") or sel.css("section") or [sel])[0]


def _join(page_url: str, href: str) -> str:
    """An absolute http(s) URL from a link, against the page's own URL
    (never a ``<base href>``, which an article could carry)."""
    href = (href or "").strip()
    if not href:
        return ""
    url = urljoin(page_url, href)
    return url if urlsplit(url).scheme in ("http", "https") else ""


def html_fragment(html: str) -> lxml.html.HtmlElement | None:
    """``html`` parsed as a fragment under one ``<div>``; None if empty or unparsable.

    libxml2 stops reading at 256 nested elements and drops the rest of the
    text; such markup is parsed again with the elements past ``MAX_DEPTH``
    unwrapped, so every word of it is kept."""
    if not html.strip():
        return None
    parser = lxml.html.HTMLParser()
    try:
        root = lxml.html.fragment_fromstring(html, create_parent="div", parser=parser)
        if any(error.type_name == "ERR_RESOURCE_LIMIT" for error in parser.error_log):
            root = lxml.html.fragment_fromstring(flatten_deep(html), create_parent="div")
    except (etree.ParserError, ValueError):
        return None
    return root


MAX_DEPTH = 100
_TAG = re.compile(r"<(/?)([A-Za-z][\w:.-]*)(?:[^>\"']|\"[^\"]*\"|'[^']*')*?(/?)>")
_VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
                   "source", "track", "wbr"})


def flatten_deep(html: str, limit: int = MAX_DEPTH) -> str:
    """``html`` without the tags nested deeper than ``limit`` (their text stays)."""
    depth, out, last = 0, [], 0
    for match in _TAG.finditer(html):
        closing, name, self_closing = match.group(1), match.group(2).lower(), match.group(3)
        if name in _VOID or self_closing:
            continue
        deep = (depth >= limit) if not closing else (depth > limit)
        depth = depth + 1 if not closing else max(0, depth - 1)
        if deep:
            out.append(html[last:match.start()])
            last = match.end()
    out.append(html[last:])
    return "".join(out)


def _last_match(pattern: re.Pattern[str], text: str) -> int | None:
    last = None
    for match in pattern.finditer(text):
        last = match.start()
    return last


def _only_trailing(text: str, start: int, closing: str) -> bool:
    """Whether ``text`` ends with the element starting at ``start``."""
    end = text.find(closing, start)
    return end >= 0 and not text[end + len(closing):].strip()


def _last_paragraph(text: str) -> tuple[int, lxml.html.HtmlElement] | tuple[None, None]:
    """Start and parsed element of a ``<p>`` that ends ``text``, if it does."""
    stripped = text.rstrip()
    if not stripped.lower().endswith("</p>"):
        return None, None
    start = _last_match(_PARAGRAPH, stripped)
    if start is None:
        return None, None
    root = html_fragment(stripped[start:])
    if root is None:
        return None, None
    nodes = list(root)
    if len(nodes) != 1 or nodes[0].tag != "p" or (root.text or "").strip() or (nodes[0].tail or "").strip():
        return None, None
    return start, nodes[0]


def _section_opening(html: str) -> re.Match[str] | None:
    """The page's own ``<section>`` tag. A title is written unescaped into the
    head (``og:title``), so a ``<section`` there is text, not the element:
    when there are several, an HTML parser says on which line the element is."""
    openings = _SECTION.finditer(html)
    first = next(openings, None)
    if first is None or next(openings, None) is None:
        return first
    try:
        doc = lxml.html.document_fromstring(html)
    except (etree.ParserError, ValueError):
        return first
    section = next(iter(doc.xpath("//div[@class='wrapper']/section | //body//section")), None)
    if section is None or not section.sourceline:
        return first
    line_start = 0
    for _ in range(section.sourceline - 1):
        line_start = html.find("\n", line_start) + 1
        if line_start == 0:
            return first
    return _SECTION.search(html, line_start) or first


def _unrendered_trailer(text: str) -> tuple[int, str, list[str], str] | None:
    """Start, article link, back links and closing tags of a trailer kramdown
    left as text (see ``_UNRENDERED_LINK``), or None. The link is the last
    ``&lt;`` of the text, after a blank line; after it come only back links
    in markdown and the closing tags kramdown added."""
    at = text.rfind("&lt;", max(0, len(text) - _TRAILER_WINDOW))
    if at < 0 or not _BLANK_LINE_BEFORE.search(text[max(0, at - 100):at]):
        return None
    link = _UNRENDERED_LINK.match(text, at)
    if link is None:
        return None
    remainder = text[link.end():].rstrip()
    closing_at = len(remainder)
    while remainder[:closing_at].endswith(">"):
        tag_at = remainder.rfind("</", 0, closing_at)
        if tag_at < 0 or not _CLOSING_TAG.fullmatch(remainder, tag_at, closing_at):
            return None
        closing_at = len(remainder[:tag_at].rstrip())
    back = remainder[:closing_at].strip()
    if not _UNRENDERED_BACK_LINKS.fullmatch(back):
        return None
    start = text.rfind("\n", 0, at)
    back_links = [unescape(href) for href in _MARKDOWN_LINK.findall(back)]
    return start, unescape(link.group(1)).strip(), back_links, remainder[closing_at:]


def _str(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _is_back_links(node: lxml.html.HtmlElement) -> bool:
    anchors = node.findall(".//a") if node.tag == "p" else []
    return bool(anchors) and all(a.text_content().strip().startswith(_BACK_LINK_PREFIX) for a in anchors)


def _is_article_link(node: lxml.html.HtmlElement) -> bool:
    """Markdown renders the article link ``<URL>`` as a paragraph holding one
    autolink (its text is its href), and the empty link ``<>`` as text."""
    if node.tag != "p":
        return False
    text = node.text_content().strip()
    if text == "<>":
        return True
    anchors = node.findall("a")
    return len(anchors) == 1 and len(node) == 1 and anchors[0].get("href", "").strip() == text
