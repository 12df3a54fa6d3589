"""Parsers for the pages the spiders fetch: plain functions of page text.

Each returns data or raises ``PageError`` with a reason that ends up in the
``rejects`` collection; none of them needs Scrapy.
"""

from __future__ import annotations

import json
import re
from html import escape
from dataclasses import dataclass, field
from urllib.parse import unquote, urljoin, urlsplit

import lxml.html
from lxml import etree
from parsel import Selector
from w3lib.encoding import html_body_declared_encoding, http_content_type_encoding, read_bom

from finews.slugs import listing_path

_BACK_LINK_PREFIX = "返回"
_TIME_LABEL = re.compile(r"^\s*\(GMT\+8[^)]*\)\s*")


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


@dataclass
class ShareText:
    title: str
    showtime: str
    media: str
    body_html: str


RETRYABLE = {"not_text", "truncated", "bad_json", "empty_page"}
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
        raise PageError("not_text", f"binary body ({content_type or 'no content type'})")
    if expect_html and not _HTML_END.search(body[-512:]):
        raise PageError("truncated", f"no </html> after {len(body)} bytes")
    bom, _ = read_bom(body)
    declared = bom or http_content_type_encoding(content_type or "") or (
        html_body_declared_encoding(body) if expect_html else None)
    if declared:  # w3lib resolves it (GBK and GB2312 to GB18030) or drops an unknown one
        return body.decode(declared, errors="replace")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return body.decode("gb18030", errors="replace")


def category_listing_urls(home_html: str, base_url: str) -> list[str]:
    """Listing URLs of every category the home page shows posts of.

    The home page lists the newest posts per tag; Jekyll's permalink puts the
    category slug first in each post's path, so the listing is derived from
    that rather than guessed from the tag.
    """
    urls: dict[str, None] = {}
    for href in Selector(text=home_html).css("section ul li a::attr(href)").getall():
        path = urlsplit(urljoin(base_url, href)).path
        segments = [s for s in path.split("/") if s]
        if len(segments) >= 2:
            urls.setdefault(urljoin(base_url, listing_path(unquote(segments[0]))))
    return list(urls)


def parse_listing(html: str, page_url: str) -> ListingPage:
    sel = Selector(text=html)
    section = sel.css("section") or sel
    tag = (section.css("h2::text").get() or "").strip()
    links = []
    for anchor in section.css("ul li a"):
        href = anchor.attrib.get("href", "").strip()
        if href:
            links.append((urljoin(page_url, href), " ".join(anchor.css("::text").getall()).strip()))
    next_href = section.css("a.next::attr(href)").get()
    return ListingPage(tag, links, urljoin(page_url, next_href) if next_href else None)


def parse_post_page(html: str) -> PostPage:
    """Split a post page into title, time, article HTML, article link, tags."""
    if not html or not html.strip():
        raise PageError("empty_page")
    try:
        doc = lxml.html.document_fromstring(html)
    except (etree.ParserError, ValueError) as exc:
        raise PageError("unparsable_html", str(exc)) from exc
    section = next(iter(doc.xpath("//div[@class='wrapper']/section | //section")), None)
    if section is None:
        raise PageError("no_post_section")
    nodes = list(section)
    heading = next((n for n in nodes if n.tag == "h1"), None)
    if heading is None:
        raise PageError("no_title_heading")
    start = nodes.index(heading)
    stamp = next((n for n in nodes[:start] if n.tag == "small"), None)
    time_text = _TIME_LABEL.sub("", stamp.text_content()).strip() if stamp is not None else ""
    body = nodes[start + 1:]
    tags: list[str] = []
    if body and body[-1].tag == "small" and body[-1].text_content().strip().startswith("tags:"):
        tags = [t.strip() for t in body[-1].xpath(".//em/text()") if t.strip()]
        body = body[:-1]
    if body and _is_back_links(body[-1]):
        body = body[:-1]
    source_url = ""
    if body and _is_article_link(body[-1]):
        anchor = body[-1].find("a")
        source_url = anchor.get("href", "").strip() if anchor is not None else ""
        body = body[:-1]
    body_html = "".join(_outer_html(node) for node in body)
    return PostPage(heading.text_content().strip(), time_text, body_html, source_url, tags,
                    raw_article_source(html, source_url))


def raw_article_source(html: str, source_url: str) -> str:
    """The article's source text between the title and the article link,
    byte for byte (parsing and serializing would normalize the markup)."""
    start = html.find("</h1>", max(0, html.find("<section")))  # the post's title, not the site's
    if start < 0:
        return ""
    start += len("</h1>")
    ends = [html.rfind(f'<p><a href="{form}"') for form in {source_url, escape(source_url)}] if source_url else []
    ends.append(html.rfind("<p>&lt;&gt;</p>"))
    end = max(ends)
    if end < start:
        end = html.rfind("<small>tags:")
    return html[start:end].strip("\n") if end > start else ""


def share_page_title(html: str) -> str:
    """The share page's ``<title>``: the one thing its markup promises."""
    return " ".join(Selector(text=html or "<html/>").css("title::text").getall()).strip()


def parse_share_text(text: str) -> ShareText:
    """The ``GetNewsText.do`` JSON: article HTML under ``text`` or ``content``."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, TypeError) as exc:
        raise PageError("bad_json", str(exc)[:200]) from exc
    if not isinstance(data, dict):
        raise PageError("bad_json", "not an object")
    payload = data.get("data") if isinstance(data.get("data"), dict) else data
    body = payload.get("text") or payload.get("content") or ""
    if not isinstance(body, str) or not body.strip():
        raise PageError("empty_article")
    return ShareText(
        title=_str(payload.get("title")),
        showtime=_str(payload.get("showtime") or payload.get("datetime")),
        media=_str(payload.get("medianame") or payload.get("from")),
        body_html=body,
    )


def _str(value) -> str:
    return value.strip() if isinstance(value, str) else ""


def _is_back_links(node) -> bool:
    anchors = node.findall(".//a") if node.tag == "p" else []
    return bool(anchors) and all(a.text_content().strip().startswith(_BACK_LINK_PREFIX) for a in anchors)


def _is_article_link(node) -> bool:
    """Markdown renders the article link ``<URL>`` as a paragraph holding one
    autolink (its text is its href), and the empty link ``<>`` as text."""
    if node.tag != "p":
        return False
    text = node.text_content().strip()
    if text == "<>":
        return True
    anchors = node.findall("a")
    return len(anchors) == 1 and len(node) == 1 and anchors[0].get("href", "").strip() == text


def _outer_html(node) -> str:
    return lxml.html.tostring(node, encoding="unicode", with_tail=True)
