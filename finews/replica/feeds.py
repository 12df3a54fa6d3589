"""The replica's list feeds and article text, derived from its post files.

The source's list APIs are served on the replica host at their own paths
(``/web/webapi?type=102|45``, ``/information/newmarket/web/webapi?marketType=37|38|39``),
newest first, ``count`` honored. Each value is derived from a post file so
that the original pipeline's file can be rebuilt from it exactly:

- rolling posts (``emnews``) are ``records``: ``id`` is the file's 18-digit
  code, ``infoCode`` is ``NW`` + id, ``digest`` is ``【title】`` + the post's
  ``> `` line, ``url_w`` the article link, ``showtime`` the file's date;
- media posts are ``nodeList`` items (``from`` is the tag without ``新闻``);
- a media post whose code (as a number) is even is also listed in the market
  feed ``37 + code % 3`` (about half of the media posts, spread over 37–39).

``GetNewsText.do?id=CODE`` answers with the article text exactly as the post
file holds it (before the article link): ``content`` is the rolling post's
text after its ``> `` line, ``text`` the media post's; an article with only
one of them gives the same text under both keys, except that ``text`` of a
rolling-only article is the replica's rendering of its whole body (what the
``newsshare`` spider reads). ``title``, ``showtime``, ``medianame`` and ``id``
are kept beside them.

Feed fault modes (``--faults feed_bad_json=0.1,…``): ``feed_bad_json`` (the
answer cut in half), ``feed_no_items`` (an error object without the items
key), ``feed_missing_fields`` (every third item loses a required field),
``feed_html_error`` (an HTML error page with status 200).
"""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs

from finews.core.dates import SITE_TZ
from finews.core.feeds import FEEDS, LIST_PATH, MARKET_PATH, MARKET_TYPES
from finews.core.infocode import normalize_info_code
from finews.core.slugs import ROLLING_NEWS_SLUG, media_from_tag
from finews.replica.postfile import PostFile

FEED_PATHS = (LIST_PATH, MARKET_PATH)
FEED_FAULTS = ("feed_bad_json", "feed_no_items", "feed_missing_fields", "feed_html_error")
MAX_COUNT = 1000
_TITLE_LINE = re.compile(r'^title: "(.*)"\r?$', re.M)
_CODE_DIGITS = re.compile(r"\d{18}")
_DATE_OFFSET = re.compile(r"\s*\+0800$")
JSON = "application/json; charset=utf-8"
HTML = "text/html; charset=utf-8"


def feed_name(path: str, query: dict[str, list[str]]) -> str | None:
    """Which feed a request asks for (None: not a feed this replica knows)."""
    if path == LIST_PATH:
        return {"102": "rolling", "45": "media"}.get(_first(query, "type"))
    if path == MARKET_PATH and _first(query, "marketType") in {str(t) for t in MARKET_TYPES}:
        return f"market{_first(query, 'marketType')}"
    return None


def feed_answer(site, path: str, query: str | dict, fault: str | None = None) -> tuple[str | None, str]:
    """``(body, content type)`` of a feed request; body None for an unknown feed."""
    query = parse_qs(query) if isinstance(query, str) else query
    name = feed_name(path, query)
    if name is None:
        return None, JSON
    if fault == "feed_html_error":
        return ("<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>"
                "<body><h1>502 Bad Gateway</h1><hr><center>nginx</center></body></html>\n"), HTML
    if fault == "feed_no_items":
        return json.dumps({"rc": 0, "message": "系统繁忙"}, ensure_ascii=False), JSON
    asked = _first(query, "count")
    count = min(int(asked), MAX_COUNT) if asked.isdigit() else 20
    rows = feed_rows(site, name, count)
    if fault == "feed_missing_fields":
        required = FEEDS[name].required
        for index, row in enumerate(rows[::3]):
            row.pop(required[index % len(required)], None)
    body = json.dumps({FEEDS[name].items_key: rows}, ensure_ascii=False)
    if fault == "feed_bad_json":
        body = body[: len(body) // 2]
    return body, JSON


def feed_rows(site, name: str, count: int) -> list[dict]:
    """The newest ``count`` items of a feed, by the time the source gives
    (the file's). The site lists entries newest first by the time its pages
    show, which is never earlier than the file's, so the walk stops at the
    first entry shown earlier than the oldest of ``count`` items found."""
    rows, time_field, floor = [], FEEDS[name].time_field, None
    for entry in list(site.entries):
        shown = getattr(entry, "published", None)
        if floor is not None and shown is not None and f"{shown.astimezone(SITE_TZ):%Y-%m-%d %H:%M:%S}" < floor:
            break
        row = entry_row(entry.post, name)
        if row is None:
            continue
        rows.append(row)
        if floor is None and len(rows) == count:
            floor = min(r[time_field] for r in rows)
    rows.sort(key=lambda row: row[time_field], reverse=True)
    return rows[:count]


def entry_row(post: PostFile, name: str) -> dict | None:
    """The feed item a post file was written from (None: not in this feed)."""
    rolling = post.category == ROLLING_NEWS_SLUG
    digits = _digits(post)
    if digits is None or not post.tags:
        return None
    showtime = _DATE_OFFSET.sub("", post.date)
    title = raw_title(post)
    if name == "rolling":
        if not rolling:
            return None
        digest, article = split_rolling(post)
        if digest is None:  # the 2021-12 format: the file holds the digest alone
            digest = article.strip("\r\n")
        return {"title": title, "digest": f"【{title}】{digest}", "id": digits, "infoCode": "NW" + digits,
                "url_w": post.link, "showtime": showtime}
    if rolling:
        return None
    media = media_from_tag(post.tags[0])
    if name == "media":
        return {"from": media, "infocode": "NW" + digits, "title": title, "showtime": showtime,
                "simtitle": title, "simdigest": ""}
    number = int(digits)
    if number % 2 or f"market{37 + number % 3}" != name:
        return None
    return {"medianame": media, "infoCode": "NW" + digits, "title": title, "datetime": showtime}


def text_json(site, code: str) -> str | None:
    """``GetNewsText.do``: the replica's share JSON with the articles as their
    post files hold them (see the module docstring)."""
    answer = site.share_json(code)
    canonical = normalize_info_code(code)
    if answer is None or canonical is None:
        return answer
    rolling = site.by_code.get(canonical[2:])
    media = site.by_code.get(canonical)
    rolling = rolling if rolling and rolling.post.category == ROLLING_NEWS_SLUG else None
    media = media if media and media.post.category != ROLLING_NEWS_SLUG else None
    if not (rolling or media):
        return answer
    data = json.loads(answer)
    rendered = data.pop("text", None) or data.pop("content", None)
    data["text"] = article_of(media.post) if media else rendered
    data["content"] = split_rolling(rolling.post)[1] if rolling else data["text"]
    return json.dumps(data, ensure_ascii=False)


def raw_title(post: PostFile) -> str:
    """The title as written between the quotes of the file (no YAML unescaping)."""
    match = _TITLE_LINE.search(post.raw.split("\n---", 1)[0]) if post.raw else None
    return match.group(1) if match else post.title


def article_of(post: PostFile) -> str:
    """The body before the article link and back links."""
    body = post.body
    cut = body.rfind(f"\n\n<{post.link}>")
    return body[:cut] if cut >= 0 else body


def split_rolling(post: PostFile) -> tuple[str | None, str]:
    """``(digest line or None, article text)`` of a rolling post."""
    article = article_of(post)
    if article.startswith("> "):
        line, _, rest = article[2:].partition("\n")
        return line, rest[1:] if rest.startswith("\n") else rest
    return None, article


def _digits(post: PostFile) -> str | None:
    match = _CODE_DIGITS.search(post.stem) or _CODE_DIGITS.search(post.raw_code or "")
    return match.group(0) if match else None


def _first(query: dict[str, list[str]], key: str) -> str:
    return (query.get(key) or [""])[0]
