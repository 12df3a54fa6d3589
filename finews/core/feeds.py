"""The source's five JSON list feeds and the post files the original
pipeline wrote from them: plain functions of text.

The original pipeline polled a rolling-news feed (``records``), a media-news
feed (``nodeList``) and three market-news feeds (``record``), fetched each
listed article's text from ``GetNewsText.do`` and wrote one Jekyll post file
per feed item. ``parse_feed`` turns a feed answer into items (and a reason for
each item that cannot become a post); ``original_post`` rebuilds the file that
pipeline wrote from a kept item and the kept text payload, byte for byte.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any

from markdown_it import MarkdownIt

from finews.core.clean import clean_article
from finews.core.dates import OutOfRange, read_published
from finews.core.infocode import MEDIA, ROLLING, normalize_info_code
from finews.core.jekyll import has_active_content, write_post
from finews.core.pages import PageError, json_object
from finews.core.reasons import Reason
from finews.core.slugs import ROLLING_NEWS_SLUG, ROLLING_NEWS_TAG, TAG_SUFFIX, media_from_tag, media_slug

LIST_API = "http://183.136.162.242"
MARKET_API = "http://43.240.125.15:1818"
TEXT_SITE = "http://finews.zning.xyz"  # the share host: text answers and share pages
LIST_PATH = "/web/webapi"
MARKET_PATH = "/information/newmarket/web/webapi"
TEXT_PATH = "/NewsData/GetNewsText.do"
SHARE_LINK = TEXT_SITE + "/html_News/NewsShare.html?infoCode={}"
INDENT = "\u3000\u3000"  # two ideographic spaces, removed from article text by the original
DEFAULT_COUNT = 100
FEED_ITEMS = "feed_items"  # collection of kept feed items (docs/schema.md)
SOURCE_OF_SPIDER = {"category": "mirror", "newsshare": "share"}  # newslist: the feed's name
_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
_ROLLING_ID = re.compile(r"^\d{18}$")
# Text answers are any Markdown: CommonMark, not finews.replica.kramdown (a
# copy of real Jekyll's output quirks, for the replica, covering only what
# posts use). Both give the same cleaned body_html on every corpus post.
_markdown = MarkdownIt("commonmark", {"html": True})


@dataclass(frozen=True)
class Feed:
    """One list feed: where it is, where its items are, which fields it has."""

    name: str
    kind: str  # ROLLING or MEDIA: which text key and which file format
    api: str  # "list" or "market": which host serves it
    query: str
    items_key: str
    code_field: str
    media_field: str | None
    time_field: str
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()

    @property
    def path(self) -> str:
        return LIST_PATH if self.api == "list" else MARKET_PATH

    def url(self, base: str, count: int = DEFAULT_COUNT) -> str:
        return f"{base.rstrip('/')}{self.path}?{self.query.format(count=count)}"

    @property
    def text_key(self) -> str:
        return "content" if self.kind == ROLLING else "text"

    @property
    def fields(self) -> tuple[str, ...]:
        return self.required + self.optional


def _market(number: int) -> Feed:
    return Feed(f"market{number}", MEDIA, "market", f"marketType={number}&count={{count}}", "record",
                "infoCode", "medianame", "datetime", ("medianame", "infoCode", "title", "datetime"))


FEEDS: dict[str, Feed] = {feed.name: feed for feed in (
    Feed("rolling", ROLLING, "list", "type=102&count={count}&newsid=1", "records", "id", None, "showtime",
         ("title", "digest", "id", "infoCode", "url_w", "showtime")),
    Feed("media", MEDIA, "list", "type=45&count={count}&newsid=1", "nodeList", "infocode", "from", "showtime",
         ("from", "infocode", "title", "showtime"), ("simtitle", "simdigest")),
    _market(37), _market(38), _market(39),
)}
MARKET_TYPES = (37, 38, 39)


@dataclass
class FeedItem:
    """A feed item that can become a post; ``fields`` is what is kept of it."""

    feed: str
    info_code: str  # the stored key, NW + 18 digits
    site_code: str  # the code as the original's file name writes it
    text_id: str  # the code GetNewsText.do is asked for
    title: str
    time_text: str
    media: str
    fields: dict[str, str]

    @property
    def kind(self) -> str:
        return FEEDS[self.feed].kind


@dataclass
class ItemReject:
    index: int
    reason: str
    detail: str
    code: str = ""
    title: str = ""


@dataclass
class FeedPage:
    items: list[FeedItem] = field(default_factory=list)
    rejects: list[ItemReject] = field(default_factory=list)


def parse_feed(feed_name: str, text: str) -> FeedPage:
    """Items of one feed answer. A damaged answer raises ``PageError``
    (``bad_json``, ``feed_no_items``); a damaged item is an ``ItemReject`` and
    never spoils the others."""
    feed = FEEDS[feed_name]
    data = json_object(text)
    rows = data.get(feed.items_key)
    if not isinstance(rows, list):
        raise PageError(Reason.FEED_NO_ITEMS, f"no {feed.items_key!r} list in the answer")
    page = FeedPage()
    for index, row in enumerate(rows):
        try:
            page.items.append(parse_item(feed, row))
        except ItemError as error:
            page.rejects.append(ItemReject(index, error.reason, error.detail, *_what_is_known(feed, row)))
    return page


class ItemError(ValueError):
    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


def parse_item(feed: Feed, row: object) -> FeedItem:
    """One feed item, checked; ``ItemError`` says what is wrong with it."""
    if not isinstance(row, dict):
        raise ItemError(Reason.BAD_ITEM, f"{feed.items_key} entry is a {type(row).__name__}, not an object")
    missing = [name for name in feed.required if not isinstance(row.get(name), str)]
    if missing:
        raise ItemError(Reason.MISSING_FIELD, f"{feed.name} item without {', '.join(missing)}")
    kept = {name: row[name] for name in feed.fields if isinstance(row.get(name), str)}
    raw_code = kept[feed.code_field].strip()
    info_code = normalize_info_code(raw_code)
    if not info_code or (feed.kind == ROLLING and not _ROLLING_ID.match(raw_code)):
        raise ItemError(Reason.BAD_INFO_CODE, f"{feed.code_field}={raw_code[:60]!r} is not a code")
    text_id = kept["infoCode"].strip() if feed.kind == ROLLING else raw_code
    if not normalize_info_code(text_id):
        raise ItemError(Reason.BAD_INFO_CODE, f"infoCode={text_id[:60]!r} is not a code")
    title = " ".join(kept["title"].split())
    if not title:
        raise ItemError(Reason.MISSING_TITLE, f"{feed.name} item {raw_code} has an empty title")
    time_text = kept[feed.time_field].strip()
    if not _TIME.match(time_text):
        reason = Reason.MISSING_DATE if not time_text else Reason.BAD_DATE
        raise ItemError(reason, f"{feed.name} item {raw_code}: {feed.time_field}={time_text[:40]!r}")
    try:
        if read_published(time_text) is None:
            raise ItemError(Reason.BAD_DATE, f"{feed.name} item {raw_code}: {feed.time_field}={time_text!r}")
    except OutOfRange as error:
        raise ItemError(Reason.DATE_OUT_OF_RANGE, f"{feed.name} item {raw_code}: {error}") from None
    # every media feed names its media field, a required one
    media = (media_from_tag(ROLLING_NEWS_TAG) if feed.kind == ROLLING
             else kept.get(feed.media_field or "", "").strip())
    if not media:
        raise ItemError(Reason.MISSING_MEDIA, f"{feed.name} item {raw_code} names no media")
    return FeedItem(feed.name, info_code, raw_code, text_id, title, time_text, media, kept)


def _what_is_known(feed: Feed, row: object) -> tuple[str, str]:
    if not isinstance(row, dict):
        return "", ""
    code, title = row.get(feed.code_field), row.get("title")
    return (code[:100] if isinstance(code, str) else "", title[:200] if isinstance(title, str) else "")


def parse_text(text: str) -> dict[str, Any]:
    """The ``GetNewsText.do`` answer as a dict; ``PageError`` if it is not one."""
    return json_object(text)


def article_text(feed_name: str, payload: dict[str, Any]) -> str:
    """The article as the original wrote it: the feed's key, ``　　`` removed.
    ``PageError('empty_text')`` when there is none."""
    value = payload.get(FEEDS[feed_name].text_key)
    if not isinstance(value, str) or not value.strip():
        raise PageError(Reason.EMPTY_TEXT, f"no {FEEDS[feed_name].text_key!r} in the article text")
    return value.replace(INDENT, "")


def digest_line(digest: str) -> str:
    """The rolling item's digest after its last ``】`` (it starts ``【title】``)."""
    return digest.rsplit("】", 1)[-1]


def article_markdown(item: FeedItem, payload: dict[str, Any]) -> str:
    """The post body before its links: what the mirror renders as the article."""
    article = article_text(item.feed, payload)
    if item.kind == ROLLING:
        return f"> {digest_line(item.fields['digest'])}\n\n{article}"
    return article


def article_html(item: FeedItem, payload: dict[str, Any]) -> str:
    """The article rendered as the mirror renders a post body (raw HTML passes)."""
    html: str = _markdown.render(article_markdown(item, payload))
    return html


def source_link(item: FeedItem) -> str:
    """The article link the original wrote under the post."""
    return item.fields["url_w"] if item.kind == ROLLING else SHARE_LINK.format(item.site_code)


def category(item: FeedItem) -> str:
    return ROLLING_NEWS_SLUG if item.kind == ROLLING else media_slug(item.media)


def original_post(feed_name: str, fields: dict[str, str], payload: dict[str, Any]) -> tuple[str, str]:
    """``(file name, file text)`` exactly as the original pipeline wrote them
    for this feed item and this ``GetNewsText.do`` answer, in the format of
    the item's date (``FORMATS``).

    The kept item is checked again (``ItemError``, a ``ValueError``, if it
    cannot be one): the file name and date come from its checked code and
    time. Front matter, footer and Liquid are written by ``finews.core.jekyll``
    (values quoted only where they need it, an article link that is not
    http(s) left out); an article with active content is written sanitized.
    ``NotOriginal`` (a ``ValueError``) when no format is known for the date.
    """
    original = Original.of_item(item_from_kept(feed_name, fields))
    return original.file(payload)


# The formats the original pipeline wrote, by kind and by the first source
# time (Asia/Shanghai, as the feed writes it) each was used for; the corpus
# is the evidence. Rolling news of its first day before 12:58:23 went through
# five development versions within hours (dates with and without ``+0800``,
# relative, ``finews.zning.me`` or two-line back links, a trailing newline),
# so no single format is known for it. From then until the end of 2021 a
# rolling post was its digest alone after a blank line; later ones start with
# ``> digest`` and hold the article text. Media and market news were only
# ever written in one format.
DIGEST_ONLY, DIGEST_AND_TEXT, MEDIA_TEXT = "digest-only", "digest+text", "media-text"
FORMATS: tuple[tuple[str, str, str | None], ...] = (
    (ROLLING, "", None),
    (ROLLING, "2021-12-08 12:58:23", DIGEST_ONLY),
    (ROLLING, "2022-01-01 00:00:00", DIGEST_AND_TEXT),
    (MEDIA, "", MEDIA_TEXT),
)


def file_format(kind: str, time_text: str) -> str | None:
    """The format the original used for a post of this kind and source time."""
    chosen = None
    for format_kind, since, name in FORMATS:
        if format_kind == kind and time_text >= since:
            chosen = name
    return chosen


class NotOriginal(ValueError):
    """The original's bytes cannot be written; ``reason`` says why."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass
class Original:
    """What the original pipeline wrote one file from, merged from the kept
    sources (a feed item, the text answer, the mirror's page), each field
    from the best source that has it (``SOURCE_RULE``)."""

    kind: str
    site_code: str
    title: str | None = None
    time_text: str | None = None
    media: str | None = None
    digest: str | None = None  # rolling news: the feed digest after its "】"
    link: str | None = None

    @classmethod
    def of_item(cls, item: FeedItem) -> Original:
        return cls(item.kind, item.site_code, item.fields["title"], item.time_text, item.media,
                   digest_line(item.fields["digest"]) if item.kind == ROLLING else None, source_link(item))

    def fill(self, other: Original) -> Original:
        """Fields this one lacks, from a worse source."""
        for name in ("title", "time_text", "media", "digest", "link"):
            if getattr(self, name) is None and getattr(other, name) is not None:
                setattr(self, name, getattr(other, name))
        return self

    def file(self, payload: dict[str, Any] | None) -> tuple[str, str]:
        """``(file name, text)`` as the original wrote them; ``NotOriginal``."""
        if not self.time_text or not _TIME.match(self.time_text):
            raise NotOriginal("no_source_time")
        form = file_format(self.kind, self.time_text)
        if form is None:
            raise NotOriginal("format_unknown", f"{self.kind} news of {self.time_text}")
        if self.title is None or self.media is None or self.link is None:
            raise NotOriginal("no_title_or_link")
        if form == DIGEST_ONLY:
            if self.digest is None:
                raise NotOriginal("no_digest")
            article = f"\n{self.digest}"
        elif payload is None:
            raise NotOriginal("no_text_answer")
        else:
            try:
                article = article_text(ROLLING_FEED if self.kind == ROLLING else MEDIA_FEED, payload)
            except PageError:
                raise NotOriginal("no_text_answer", f"the answer has no {self.kind} article") from None
            if form == DIGEST_AND_TEXT:
                if self.digest is None:
                    raise NotOriginal("no_digest")
                article = f"> {self.digest}\n\n{article}"
        if has_active_content(article):
            article = clean_article(_markdown.render(article)).body_html
        slug = ROLLING_NEWS_SLUG if self.kind == ROLLING else media_slug(self.media)
        tag = self.media + TAG_SUFFIX
        text = write_post(self.title, f"{self.time_text} +0800", slug, [tag], article, self.link)
        return f"{self.time_text[:10]}-{self.site_code}.md", text


ROLLING_FEED, MEDIA_FEED = "rolling", "media"


def original_of_answer(kind: str, site_code: str, payload: dict[str, Any]) -> Original:
    """What a ``GetNewsText.do`` answer says besides the article (the share
    host adds ``title``, ``showtime`` and ``medianame``): a media post's
    title, time, media and share link; a rolling post's title and time."""
    def text(key: str) -> str | None:
        value = payload.get(key)
        return value if isinstance(value, str) and value.strip() else None
    showtime = text("showtime")
    original = Original(kind, site_code, text("title"), showtime.strip() if showtime else None)
    if kind == MEDIA:
        original.media, original.link = text("medianame"), SHARE_LINK.format(site_code)
    else:
        original.media = media_from_tag(ROLLING_NEWS_TAG)
    return original


_BLOCKQUOTE = re.compile(r"\A<blockquote>\n  <p>([^<>]*)</p>\n</blockquote>(?:\n|\Z)")
_ONE_PARAGRAPH = re.compile(r"\A<p>([^<>]*)</p>\Z")
# Text kramdown may have changed (markup, smart quotes, typographic dashes,
# entities): a digest read back from a page holding any of it is not trusted.
_MARKDOWN_ACTIVE = re.compile(r"[\\`*_\[\]<>&\"'{}|#~$]|--|\.\.\.|\A[ \t]|[ \t]\Z")


def page_digest(raw_article: str) -> str | None:
    """The rolling digest as the mirror's page shows it: the ``> digest``
    line rendered as a blockquote, or (the 2021-12 format) the page's one
    paragraph. None when the page has neither, or when its text may not be
    what the original wrote (markdown kramdown would have changed)."""
    match = _BLOCKQUOTE.match(raw_article or "") or _ONE_PARAGRAPH.match((raw_article or "").strip("\n"))
    if not match:
        return None
    text = html.unescape(match.group(1))
    if "\n" in text or _MARKDOWN_ACTIVE.search(text):
        return None
    return text


def item_from_kept(feed_name: str, fields: dict[str, str]) -> FeedItem:
    """A kept item read back (export)."""
    return parse_item(FEEDS[feed_name], fields)
