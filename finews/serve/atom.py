"""Atom feeds as jekyll-feed 0.17 writes them (its ``feed.xml`` template,
minified as the plugin minifies it), from the served site's entries.

``/feed.xml`` holds the 10 newest posts; ``/feed/<slug>.xml`` the 10 newest
of one category (jekyll-feed's path and title for a category feed). What the
real plugin does and the server does not: ``smartify`` of titles (typographic
quotes and dashes; titles are Chinese text) and the feed's ``<updated>``,
which is the build time there and the newest post's time here. A ``]]>`` in
a body is split across two CDATA sections (jekyll-feed would write an
invalid feed).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from finews.replica import kramdown
from finews.replica.site import MIRROR_TITLE, Entry

FEED_LIMIT = 10  # site.feed.posts_limit, jekyll-feed's default
AUTHOR = "ZNing"  # _config.yml author
LANG = "zh-CN"
JEKYLL_VERSION = "4.3.1"

_RUBY_SPACE = " \t\n\v\f\r\0"
_WHITESPACE = re.compile(r"[ \t\r\n\f\v]+")  # Ruby's \s: ASCII only
_HTML_BLOCKS = re.compile(r"<script.*?</script>|<!--.*?-->|<style.*?</style>", re.S)
_HTML_TAGS = re.compile(r"<.*?>", re.S)
_REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:.+$", re.M)
_XML_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}


def feed(entries: list[Entry], base_url: str, path: str = "/feed.xml", category: str | None = None) -> str:
    """The feed at ``path`` of ``entries`` (newest first), links under ``base_url``."""
    title = MIRROR_TITLE + (f" | {category[:1].upper()}{category[1:].lower()}" if category else "")
    chosen = sorted(entries, key=_feed_order)[:FEED_LIMIT]
    newest = chosen[0].published if chosen and chosen[0].published else datetime(1970, 1, 1, tzinfo=UTC)
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>',
        f'<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="{LANG}">',
        f'<generator uri="https://jekyllrb.com/" version="{JEKYLL_VERSION}">Jekyll</generator>',
        f'<link href="{base_url}{path}" rel="self" type="application/atom+xml" />',
        f'<link href="{base_url}/" rel="alternate" type="text/html" hreflang="{LANG}" />',
        f"<updated>{_xmlschema(newest)}</updated>",
        f"<id>{xml_escape(base_url + path)}</id>",
        f'<title type="html">{xml_escape(title)}</title>',
        f"<author><name>{AUTHOR}</name></author>",
    ]
    parts += [entry_xml(entry, base_url) for entry in chosen]
    parts.append("</feed>")
    return "".join(parts)


def entry_xml(entry: Entry, base_url: str) -> str:
    title = xml_escape(normalize_whitespace(strip_html(entry.title)))
    url = base_url + entry.path
    post_id = base_url + entry.path.removesuffix(".html")
    published = _xmlschema(entry.published)
    categories = "".join(f'<category term="{xml_escape(c)}" />' for c in entry.post.category.split("/") if c)
    tags = "".join(f'<category term="{xml_escape(t)}" />' for t in (entry.post.tags if entry.post.has_front_matter
                                                                     else []))
    summary = excerpt_html(entry)
    summary_xml = (f'<summary type="html">{_cdata(normalize_whitespace(strip_html(summary)))}</summary>'
                   if summary else "")
    return (
        f'<entry><title type="html">{title}</title>'
        f'<link href="{url}" rel="alternate" type="text/html" title="{title}" />'
        f"<published>{published}</published><updated>{published}</updated>"
        f"<id>{xml_escape(post_id)}</id>"
        f'<content type="html" xml:base="{xml_escape(url)}">{_cdata(entry.body_html.strip(_RUBY_SPACE))}</content>'
        f"<author><name>{AUTHOR}</name></author>{categories}{tags}{summary_xml}</entry>"
    )


def excerpt_html(entry: Entry) -> str:
    """Jekyll's excerpt: the body up to the first blank line (and the
    reference definitions after it), rendered."""
    head, separator, tail = entry.markdown.partition("\n\n")
    if separator and tail:
        head += "\n\n" + "\n".join(_REFERENCE.findall(tail))
    return kramdown.render(head)


def strip_html(text: str) -> str:
    """Liquid's ``strip_html``."""
    return _HTML_TAGS.sub("", _HTML_BLOCKS.sub("", text or ""))


def normalize_whitespace(text: str) -> str:
    """Jekyll's ``normalize_whitespace``."""
    return _WHITESPACE.sub(" ", text).strip(_RUBY_SPACE)


def xml_escape(text: str) -> str:
    """Liquid's ``xml_escape`` (``CGI.escapeHTML``)."""
    return re.sub(r"[&<>\"']", lambda m: _XML_ESCAPES[m.group(0)], text or "")


def _feed_order(entry: Entry):
    """Newest first; posts of the same time in file-name order, as the real
    feed lists them (Liquid's ``sort: "date" | reverse`` on Jekyll's posts,
    which are in date-then-path order: Ruby's sort does not keep ties)."""
    stamp = entry.published.timestamp() if entry.published else float("-inf")
    return (-stamp, entry.post.name)


def _cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _xmlschema(moment: datetime | None) -> str:
    return (moment or datetime(1970, 1, 1, tzinfo=UTC)).isoformat()
