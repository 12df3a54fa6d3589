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

import re
from dataclasses import dataclass, field

from markdown_it import MarkdownIt

from finews.core.clean import clean_article
from finews.core.dates import OutOfRange, read_published
from finews.core.infocode import MEDIA, ROLLING, normalize_info_code
from finews.core.jekyll import body, front_matter, has_active_content
from finews.core.pages import PageError, json_object
from finews.core.reasons import Reason
from finews.core.slugs import ROLLING_NEWS_SLUG, ROLLING_NEWS_TAG, TAG_SUFFIX, media_from_tag, media_slug

LIST_API = "http://183.136.162.242"
MARKET_API = "http://43.240.125.15:1818"
TEXT_SITE = "http://finews.zning.xyz"
LIST_PATH = "/web/webapi"
MARKET_PATH = "/information/newmarket/web/webapi"
TEXT_PATH = "/NewsData/GetNewsText.do"
SHARE_LINK = "http://finews.zning.xyz/html_News/NewsShare.html?infoCode={}"
INDENT = "\u3000\u3000"  # two ideographic spaces, removed from article text by the original
DEFAULT_COUNT = 100
FEED_ITEMS = "feed_items"  # collection of kept feed items (docs/schema.md)
SOURCE_OF_SPIDER = {"category": "mirror", "newsshare": "share"}  # newslist: the feed's name
_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
_ROLLING_ID = re.compile(r"^\d{18}$")
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


def parse_item(feed: Feed, row) -> FeedItem:
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
    media = media_from_tag(ROLLING_NEWS_TAG) if feed.kind == ROLLING else kept[feed.media_field].strip()
    if not media:
        raise ItemError(Reason.MISSING_MEDIA, f"{feed.name} item {raw_code} names no media")
    return FeedItem(feed.name, info_code, raw_code, text_id, title, time_text, media, kept)


def _what_is_known(feed: Feed, row) -> tuple[str, str]:
    if not isinstance(row, dict):
        return "", ""
    code, title = row.get(feed.code_field), row.get("title")
    return (code[:100] if isinstance(code, str) else "", title[:200] if isinstance(title, str) else "")


def parse_text(text: str) -> dict:
    """The ``GetNewsText.do`` answer as a dict; ``PageError`` if it is not one."""
    return json_object(text)


def article_text(feed_name: str, payload: dict) -> str:
    """The article as the original wrote it: the feed's key, ``　　`` removed.
    ``PageError('empty_text')`` when there is none."""
    value = payload.get(FEEDS[feed_name].text_key)
    if not isinstance(value, str) or not value.strip():
        raise PageError(Reason.EMPTY_TEXT, f"no {FEEDS[feed_name].text_key!r} in the article text")
    return value.replace(INDENT, "")


def digest_line(digest: str) -> str:
    """The rolling item's digest after its last ``】`` (it starts ``【title】``)."""
    return digest.rsplit("】", 1)[-1]


def article_markdown(item: FeedItem, payload: dict) -> str:
    """The post body before its links: what the mirror renders as the article."""
    article = article_text(item.feed, payload)
    if item.kind == ROLLING:
        return f"> {digest_line(item.fields['digest'])}\n\n{article}"
    return article


def article_html(item: FeedItem, payload: dict) -> str:
    """The article rendered as the mirror renders a post body (raw HTML passes)."""
    return _markdown.render(article_markdown(item, payload))


def source_link(item: FeedItem) -> str:
    """The article link the original wrote under the post."""
    return item.fields["url_w"] if item.kind == ROLLING else SHARE_LINK.format(item.site_code)


def category(item: FeedItem) -> str:
    return ROLLING_NEWS_SLUG if item.kind == ROLLING else media_slug(item.media)


def original_post(feed_name: str, fields: dict[str, str], payload: dict) -> tuple[str, str]:
    """``(file name, file text)`` exactly as the original pipeline wrote them
    for this feed item and this ``GetNewsText.do`` answer.

    The kept item is checked again (``ItemError``, a ``ValueError``, if it
    cannot be one): the file name and date come from its checked code and
    time. Front matter, footer and Liquid are written by ``finews.core.jekyll``
    (values quoted only where they need it, an article link that is not
    http(s) left out); an article with active content is written sanitized.
    """
    feed = FEEDS[feed_name]
    item = parse_item(feed, fields)
    article = article_text(feed_name, payload)
    if feed.kind == ROLLING:
        media, link = media_from_tag(ROLLING_NEWS_TAG), fields["url_w"]
        article = f"> {digest_line(fields['digest'])}\n\n{article}"
    else:
        media, link = fields[feed.media_field], SHARE_LINK.format(item.site_code)
    if has_active_content(article):
        article = clean_article(_markdown.render(article)).body_html
    slug, tag = category(item), media + TAG_SUFFIX
    text = front_matter(fields["title"], f"{item.time_text} +0800", slug, [tag]) + body(article, link, tag, slug)
    return f"{item.time_text[:10]}-{item.site_code}.md", text


def item_from_kept(feed_name: str, fields: dict[str, str]) -> FeedItem:
    """A kept item read back (export)."""
    return parse_item(FEEDS[feed_name], fields)
