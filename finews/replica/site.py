"""The replica's content: post files laid out at the mirror's URLs.

Everything the real hosts showed is reproduced from the site contract
(``docs`` in ``shared/``); where the contract leaves the choice to the
replica (share-page markup, listing pagination) the choice is documented in
``docs/architecture.md``.
"""

from __future__ import annotations

import html
import json
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from urllib.parse import quote, unquote

from markdown_it import MarkdownIt

from finews.dates import SITE_TZ, parse_published
from finews.infocode import is_rolling_news_code, normalize_info_code
from finews.postfile import PostFile, parse_post_file, read_post_file
from finews.replica.synth import PostSynthesizer
from finews.slugs import listing_path, media_from_tag

BUNDLED_CORPUS = Path(__file__).resolve().parent.parent / "corpus" / "finews"
MIRROR_TITLE = "金融消息"
LISTING_PAGE_SIZE = 500
FEED_SIZE = 20
HOME_PER_TAG = 5

# CommonMark with raw HTML passed through, as kramdown does for Jekyll.
_markdown = MarkdownIt("commonmark", {"html": True})


@dataclass
class Entry:
    """A post as the replica serves it."""

    post: PostFile

    @cached_property
    def published(self) -> datetime | None:
        return parse_published(self.post.date)

    @cached_property
    def local_date(self) -> tuple[str, str, str] | None:
        if self.published:
            local = self.published.astimezone(SITE_TZ)
            return f"{local:%Y}", f"{local:%m}", f"{local:%d}"
        return self.post.file_date

    @cached_property
    def path(self) -> str:
        """Jekyll's default permalink: /<category>/<YYYY>/<MM>/<DD>/<stem>.html."""
        category = quote(self.post.category or "posts")
        stem = quote(self.post.stem)
        if self.local_date:
            year, month, day = self.local_date
            return f"/{category}/{year}/{month}/{day}/{stem}.html"
        return f"/{category}/{stem}.html"

    @property
    def tag(self) -> str:
        return self.post.tags[0] if self.post.tags else ""

    @cached_property
    def body_html(self) -> str:
        """The whole post body rendered, link and back links included."""
        return _markdown.render(self.post.body)

    @cached_property
    def article_html(self) -> str:
        """The body without the trailing article link and back links: what
        the news-share host returns as the article text."""
        body = self.post.body
        if self.post.link or "<>" in body:
            cut = body.rfind(f"<{self.post.link}>")
            body = body[:cut] if cut >= 0 else body
        return _markdown.render(body).strip()

    @property
    def time_text(self) -> str:
        if not self.published:
            return ""
        return f"{self.published.astimezone(SITE_TZ):%Y-%m-%d %H:%M:%S}"


class ReplicaSite:
    """Post entries indexed by every URL the two hosts answer."""

    def __init__(self, posts: list[PostFile], category_titles: dict[str, str] | None = None,
                 page_size: int = LISTING_PAGE_SIZE):
        self.page_size = page_size
        self.category_titles = dict(category_titles or {})
        self._lock = threading.Lock()
        self.entries: list[Entry] = []
        self.by_path: dict[str, Entry] = {}
        self.by_category: dict[str, list[Entry]] = {}
        self.by_code: dict[str, Entry] = {}
        self._synthesizer = None
        self._synthesized = 0
        self.add(posts)

    @classmethod
    def scaled(cls, count: int, folder: Path | None = None, **kwargs) -> "ReplicaSite":
        """A site of ``count`` synthesized posts (no corpus posts of its own)."""
        corpus = cls.from_folder(folder)
        site = cls([], corpus.category_titles, **kwargs)
        site.synthesize(count, [e.post for e in corpus.entries])
        return site

    @classmethod
    def from_folder(cls, folder: Path | None = None, **kwargs) -> "ReplicaSite":
        """Build from a corpus folder (``posts/`` and ``category/`` inside) or a
        folder of post files."""
        folder = Path(folder) if folder else BUNDLED_CORPUS
        posts_dir = folder / "posts" if (folder / "posts").is_dir() else folder
        titles = {}
        for page in sorted((folder / "category").glob("*.html")) if (folder / "category").is_dir() else []:
            meta = parse_post_file(page.read_text(encoding="utf-8"), page.name)
            titles[page.stem] = meta.title
        posts = [read_post_file(path) for path in sorted(posts_dir.glob("*.md"))]
        return cls(posts, titles, **kwargs)

    def synthesize(self, count: int, corpus: list[PostFile] | None = None) -> list[Entry]:
        """Add ``count`` synthesized posts, continuing the sequence (scale mode)."""
        with self._lock:
            if self._synthesizer is None:
                self._synthesizer = PostSynthesizer(corpus or [e.post for e in self.entries], total_hint=max(count, 1))
            start, self._synthesized = self._synthesized, self._synthesized + count
        return self.add(self._synthesizer.batch(start, count))

    def add(self, posts: list[PostFile]) -> list[Entry]:
        """Add posts while serving (listings stay newest first); a post at an
        existing URL replaces the one there, as an edited file would."""
        new = [Entry(post) for post in posts]
        with self._lock:
            for entry in new:
                old = self.by_path.get(unquote(entry.path))
                if old is not None:
                    self.entries.remove(old)
                    self.by_category[old.post.category].remove(old)
                self.entries.append(entry)
                self.by_path[unquote(entry.path)] = entry
                self.by_category.setdefault(entry.post.category, []).append(entry)
                if entry.post.raw_code:
                    self.by_code[entry.post.raw_code] = entry
            self.entries.sort(key=_newest_first)
            for slug in {e.post.category for e in new}:
                self.by_category[slug].sort(key=_newest_first)
        return new

    def share_entry(self, code: str) -> Entry | None:
        """The post behind a share-page code: the exact code, else its twin."""
        code = (code or "").strip()
        if code in self.by_code:
            return self.by_code[code]
        canonical = normalize_info_code(code)
        if not canonical:
            return None
        return self.by_code.get(canonical) or self.by_code.get(canonical[2:])

    def post_at(self, path: str) -> Entry | None:
        return self.by_path.get(unquote(path))

    def share_codes(self) -> list[str]:
        return sorted(self.by_code)

    # -- pages of the mirror -------------------------------------------------

    def home(self) -> str:
        sections, seen = [], {}
        for entry in self.entries:
            seen.setdefault(entry.tag, []).append(entry)
        for tag, entries in seen.items():
            items = "".join(_li(e) for e in entries[:HOME_PER_TAG])
            sections.append(f'<h2 id="{_e(tag)}">{_e(tag)}</h2>\n<ul>\n{items}</ul>\n')
        return _page(MIRROR_TITLE, "".join(sections))

    def listing(self, slug: str, page: int = 1) -> str | None:
        entries = self.by_category.get(slug)
        if entries is None and slug not in self.category_titles:
            return None
        entries = entries or []
        tag = entries[0].tag if entries else self._tag_for(slug)
        start = (page - 1) * self.page_size
        chunk = entries[start:start + self.page_size]
        if page > 1 and not chunk:
            return None
        items = "".join(_li(e) for e in chunk)
        more = ""
        if start + self.page_size < len(entries):
            more = f'<a class="next" href="{listing_path(slug)}?page={page + 1}">下一页</a>\n'
        body = f'<h2 id="{_e(tag)}">{_e(tag)}</h2>\n<ul>\n{items}</ul>\n{more}'
        return _page(tag, body)

    def _tag_for(self, slug: str) -> str:
        title = self.category_titles.get(slug, slug)
        return title if title.endswith("新闻") else f"{title}新闻"

    def post_page(self, entry: Entry) -> str:
        tags = "".join(f"<em>{_e(t)}</em>" for t in entry.post.tags)
        body = (
            f"<small>(GMT+8, Asia/Shanghai, CST) {entry.time_text}</small>\n"
            f"<h1>{_e(entry.post.title)}</h1>\n"
            f"{entry.body_html}\n"
            f"<small>tags: {tags}</small>\n"
        )
        return _page(entry.post.title, body)

    def feed(self, base_url: str) -> str:
        updated = self.entries[0].published if self.entries and self.entries[0].published else None
        parts = [
            '<?xml version="1.0" encoding="utf-8"?>',
            '<feed xmlns="http://www.w3.org/2005/Atom">',
            f"<title>{MIRROR_TITLE}</title>",
            f'<link href="{base_url}/feed.xml" rel="self" type="application/atom+xml" />',
            f"<updated>{_rfc3339(updated)}</updated>",
            f"<id>{base_url}/feed.xml</id>",
        ]
        for entry in self.entries[:FEED_SIZE]:
            parts.append(
                "<entry>"
                f'<title type="html">{_e(entry.post.title)}</title>'
                f'<link href="{base_url}{entry.path}" rel="alternate" type="text/html" />'
                f"<published>{_rfc3339(entry.published)}</published>"
                f"<updated>{_rfc3339(entry.published)}</updated>"
                f"<id>{base_url}{entry.path}</id>"
                f'<content type="html">{_e(entry.body_html)}</content>'
                f'<category term="{_e(entry.post.category)}" />'
                "</entry>"
            )
        parts.append("</feed>")
        return "\n".join(parts)

    # -- the news-share host -------------------------------------------------

    def share_page(self, code: str) -> str | None:
        entry = self.share_entry(code)
        if not entry:
            return None
        quoted = json.dumps(code)
        return (
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
            f"<title>{_e(entry.post.title)}</title>"
            "<script>fetch('/NewsData/GetNewsText.do?id=' + encodeURIComponent("
            f"{quoted})).then(r => r.json()).then(d => {{"
            "document.getElementById('content').innerHTML = d.text || d.content;});</script>"
            "</head><body><div class=\"newsshare\"><div id=\"content\"></div></div></body></html>"
        )

    def share_json(self, code: str) -> str | None:
        entry = self.share_entry(code)
        if not entry:
            return None
        body_key = "content" if is_rolling_news_code(entry.post.raw_code or "") else "text"
        data = {
            "id": entry.post.raw_code,
            "title": entry.post.title,
            "showtime": entry.time_text,
            "medianame": media_from_tag(entry.tag),
            body_key: entry.article_html,
        }
        return json.dumps(data, ensure_ascii=False)


def _newest_first(entry: Entry):
    stamp = entry.published.timestamp() if entry.published else float("-inf")
    return (-stamp, entry.post.name)


def _e(text: str) -> str:
    return html.escape(text or "", quote=True)


def _li(entry: Entry) -> str:
    return f'<li><a href="{entry.path}">{_e(entry.post.title)}</a></li>\n'


def _rfc3339(moment: datetime | None) -> str:
    moment = moment or datetime(1970, 1, 1, tzinfo=timezone.utc)
    return moment.astimezone(SITE_TZ).isoformat()


def _page(title: str, content: str) -> str:
    return (
        "<!DOCTYPE html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\">"
        f"<title>{_e(title)} | {MIRROR_TITLE}</title>"
        f'<meta property="og:title" content="{_e(title)}">'
        "<script>function AutoRefresh(t){setTimeout(function(){location.reload(true);},t);}</script>"
        "</head>\n<body onload=\"JavaScript:AutoRefresh(60000);\">"
        f'<div class="wrapper"><header><h1><a href="/">{MIRROR_TITLE}</a></h1></header>\n'
        f"<section>\n{content}</section>\n"
        "<footer><p><small>Hosted on GitHub Pages &mdash; Theme by orderedlist</small></p></footer>"
        "</div></body></html>\n"
    )


__all__ = ["BUNDLED_CORPUS", "Entry", "ReplicaSite"]
