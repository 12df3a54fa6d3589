"""The replica's content: post files laid out at the mirror's URLs.

Everything the real hosts showed is reproduced from the site contract
(``docs`` in ``shared/``); where the contract leaves the choice to the
replica (share-page markup, listing pagination) the choice is documented in
``docs/architecture.md``.
"""

from __future__ import annotations

import html
import json
import logging
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from functools import cached_property
from pathlib import Path
from urllib.parse import quote, unquote

from finews.core.dates import SITE_TZ, parse_published
from finews.core.infocode import is_rolling_news_code, normalize_info_code
from finews.core.jekyll import liquid_output
from finews.core.pages import MIRROR_URL
from finews.core.slugs import ROLLING_NEWS_SLUG, ROLLING_NEWS_TAG, TAG_SUFFIX, listing_path, media_from_tag
from finews.replica import kramdown
from finews.replica.postfile import PostFile, parse_post_file, read_post_source
from finews.replica.synth import PostSynthesizer

logger = logging.getLogger(__name__)

BUNDLED_CORPUS = Path(__file__).resolve().parent.parent / "corpus" / "finews"
MIRROR_TITLE = "金融消息"
SITE_URL = MIRROR_URL  # the real site's absolute links point here, never at the replica
LISTING_PAGE_SIZE = 500
FEED_SIZE = 20
HOME_SIZE = 100          # index.md: site.posts limit:100
CATEGORIES_PER_TAG = 20  # categories.md: tag[1] limit:20
EMNEWS_SIZE = 100        # emnews.md: tag[1] limit:100
NO_LISTING = {"sitenews"}  # categories the real site has no category page for
_LEADING_BLANK_LINES = re.compile(r"\A(?:[ \t]*\r?\n)+")
# Liquid's escape_once: what is not already an entity (hex ones are not to Liquid).
_ESCAPE_ONCE = re.compile(r"[\"><']|&(?!(?:[a-zA-Z]+|#\d+);)")
_ESCAPES = {"&": "&amp;", ">": "&gt;", "<": "&lt;", '"': "&quot;", "'": "&#39;"}
_PSYCH_TIME = re.compile(
    r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[Tt]|\s+)(\d{1,2}):(\d{2}):(\d{2})(?:\.\d*)?\s*(Z|[-+]\d{1,2}(?::?\d{2})?)?\s*$")


def jekyll_time(date_text: str) -> datetime | None:
    """The moment Jekyll gives a post's ``date:``, as Ruby's YAML reads it.

    With an offset the time keeps it (shown as written); without one YAML
    reads it as UTC and the site shows it in Asia/Shanghai, 8 hours later
    than written: the quirk every real page carries.
    """
    match = _PSYCH_TIME.match((date_text or "").strip())
    if not match:
        return None
    *parts, offset = match.groups()
    try:
        year, month, day, hour, minute, second = (int(p) for p in parts)
        moment = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        return None
    if not offset:
        return moment.astimezone(SITE_TZ)
    if offset == "Z":
        return moment
    sign = -1 if offset[0] == "-" else 1
    digits = offset[1:].replace(":", "")
    hours, minutes = (int(digits[:-2]), int(digits[-2:])) if len(digits) > 2 else (int(digits), 0)
    zone = timezone(sign * timedelta(hours=hours, minutes=minutes))
    return moment.replace(tzinfo=zone)


def category_titles(folder: Path | None = None) -> dict[str, str]:
    """Slug -> title of the category page files (``category/*.html``) of a
    corpus folder (default: the bundled corpus, the mirror's own pages)."""
    folder = Path(folder) if folder else BUNDLED_CORPUS
    titles = {}
    for page in sorted((folder / "category").glob("*.html")) if (folder / "category").is_dir() else []:
        titles[page.stem] = parse_post_file(page.read_text(encoding="utf-8"), page.name).title
    return titles


@dataclass
class Entry:
    """A post as the replica serves it."""

    post: PostFile

    @cached_property
    def published(self) -> datetime | None:
        """The moment the page shows (Jekyll's reading of ``date:``); a file
        without one is dated by its name, at local midnight."""
        moment = jekyll_time(self.post.date) if self.post.has_front_matter else None
        if moment is None and self.post.file_date:
            year, month, day = (int(p) for p in self.post.file_date)
            return datetime(year, month, day, tzinfo=SITE_TZ)
        return moment

    @cached_property
    def written(self) -> datetime | None:
        """The time written in the file, read as Shanghai time: what the
        news-share host (the original source) shows."""
        return parse_published(self.post.date)

    @cached_property
    def local_date(self) -> tuple[str, str, str] | None:
        if self.published:
            return f"{self.published:%Y}", f"{self.published:%m}", f"{self.published:%d}"
        return self.post.file_date

    @cached_property
    def path(self) -> str:
        """Jekyll's default permalink /:categories/:year/:month/:day/:title.html
        (categories lower-cased, as Jekyll's URL drop does)."""
        category = quote(self.post.category.lower()) if self.post.category else ""
        prefix = f"/{category}" if category else ""
        stem = quote(self.post.stem)
        if self.local_date:
            year, month, day = self.local_date
            return f"{prefix}/{year}/{month}/{day}/{stem}.html"
        return f"{prefix}/{stem}.html"

    @property
    def tag(self) -> str:
        return self.post.tags[0] if self.post.tags else ""

    @property
    def title(self) -> str:
        """Jekyll's title: the front matter's, or (no front matter) the
        stem's words capitalized, as ``Utils.titleize_slug`` makes it."""
        if self.post.has_front_matter:
            return self.post.title
        return " ".join(word.capitalize() for word in self.post.stem.split("-"))

    @property
    def markdown(self) -> str:
        """The text kramdown gets: Jekyll's front-matter match also eats the
        blank lines after it, and Liquid outputs the exporter's literal
        braces (``{{ "{" }}``) as ``{``. Other Liquid is left as text (real
        Jekyll would run it; the exporter never writes any)."""
        body = self.post.body
        if self.post.has_front_matter:
            body = _LEADING_BLANK_LINES.sub("", body)
        return liquid_output(body)

    @cached_property
    def body_html(self) -> str:
        """The whole post body as kramdown renders it, link and back links included."""
        return kramdown.render(self.markdown)

    @cached_property
    def article_html(self) -> str:
        """The body without the trailing article link and back links: what
        the news-share host returns as the article text (rendered as the
        post page renders it, so both spiders read the same article)."""
        body = self.markdown
        if self.post.link or "<>" in body:
            cut = body.rfind(f"<{self.post.link}>")
            body = body[:cut] if cut >= 0 else body
        return kramdown.render(body).strip()

    @property
    def time_text(self) -> str:
        """The written time (the share host's ``showtime``)."""
        if not self.written:
            return ""
        return f"{self.written.astimezone(SITE_TZ):%Y-%m-%d %H:%M:%S}"

    @property
    def shown_time(self) -> str:
        """The time line of the post page (Liquid's ``date`` of Jekyll's time)."""
        return f"{self.published:%Y-%m-%d %H:%M:%S}" if self.published else ""


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
        self._synthesizer: PostSynthesizer | None = None
        self._synthesized = 0
        self.add(posts)

    @classmethod
    def scaled(cls, count: int, folder: Path | None = None, **kwargs) -> ReplicaSite:
        """A site of ``count`` synthesized posts (no corpus posts of its own)."""
        corpus = cls.from_folder(folder)
        site = cls([], corpus.category_titles, **kwargs)
        site.synthesize(count, [e.post for e in corpus.entries])
        return site

    @classmethod
    def from_folder(cls, folder: Path | None = None, **kwargs) -> ReplicaSite:
        """Build from a corpus folder (``posts/`` and ``category/`` inside) or a
        folder of post files."""
        folder = Path(folder) if folder else BUNDLED_CORPUS
        posts_dir = folder / "posts" if (folder / "posts").is_dir() else folder
        posts = [read_post_source(path) for path in sorted(posts_dir.glob("*.md"))]
        return cls([post for post in posts if post is not None], category_titles(folder), **kwargs)

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
            self.entries.sort(key=_jekyll_order, reverse=True)
            for slug in {e.post.category for e in new}:
                self.by_category[slug].sort(key=_jekyll_order, reverse=True)
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

    # -- pages of the mirror (the real site's layouts and pages) -------------

    def home(self) -> str:
        """index.md: a link to /categories/ and the 100 newest posts."""
        items = "".join(f"    \n    {_li(e)}" for e in self.entries[:HOME_SIZE])
        content = ('<h2 id="分类"><a href="../categories/" title="转到分类页面">分类</a></h2>\n\n'
                   '<h2 id="最近100条新消息">最近100条新消息</h2>\n<ul>\n' + items + "    \n</ul>\n")
        return _page("首页", "/", content)

    def tags(self) -> dict[str, list[Entry]]:
        """Jekyll's ``site.tags``: tags in order of first use, oldest post
        first; each tag's posts newest first."""
        tags: dict[str, list[Entry]] = {}
        for entry in reversed(self.entries):
            for tag in entry.post.tags if entry.post.has_front_matter else []:
                tags.setdefault(tag, []).append(entry)
        return {tag: entries[::-1] for tag, entries in tags.items()}

    def categories_page(self) -> str:
        """categories.md: one section per tag with its 20 newest posts."""
        sections = []
        for tag, entries in self.tags().items():
            items = "".join(f"    \n      {_li(e)}" for e in entries[:CATEGORIES_PER_TAG])
            sections.append(f'<h2 id="{_text(tag)}">{_text(tag)}</h2>\n<ul>\n{items}    \n  </ul>\n<hr />\n')
        return _page("分类", "/categories/", "\n" + "\n".join(sections) + "\n")

    def rolling_news(self) -> str:
        """emnews.md: the 100 newest rolling news."""
        entries = self.tags().get(ROLLING_NEWS_TAG)
        listing = ""
        if entries:
            items = "".join(f"  \n    {_li(e)}" for e in entries[:EMNEWS_SIZE])
            listing = f'<h2 id="{ROLLING_NEWS_TAG}">{ROLLING_NEWS_TAG}</h2>\n<ul>\n{items}  \n</ul>\n'
        content = ("\n" + listing + '\n<p><a href="../achieves/emnews/">'
                   "此页仅展示最近100条滚动新闻，如需访问全量新闻请点击此处</a></p>\n")
        return _page("东财滚动新闻", f"/{ROLLING_NEWS_SLUG}/", content)

    def has_listing(self, slug: str) -> bool:
        """A category page exists for each category page file, and (as the
        site's scripts made one for each new medium) for each media category."""
        if slug in self.category_titles:
            return True
        if slug in NO_LISTING or slug == ROLLING_NEWS_SLUG:
            return False
        return any(e.tag.endswith(TAG_SUFFIX) for e in self.by_category.get(slug, [])[:1])

    def listing(self, slug: str, page: int = 1) -> str | None:
        """_layouts/category.html: every post of the category, newest first.

        Past ``page_size`` posts (scale mode only) the list is cut into pages
        linked by ``a.next``: the one element the real layout does not have.
        """
        if not self.has_listing(slug):
            return None
        entries = self.by_category.get(slug) or []
        start = (page - 1) * self.page_size
        chunk = entries[start:start + self.page_size]
        if page > 1 and not chunk:
            return None
        heading = f'<h2 id="{_text(entries[0].tag)}">{_text(entries[0].tag)}</h2>\n' if entries else ""
        items = "".join(f"  \n    {_li(e)}" for e in chunk)
        more = ""
        if start + self.page_size < len(entries):
            more = f'<a class="next" href="{listing_path(slug)}?page={page + 1}">下一页</a>\n'
        content = f"\n{heading}\n<ul>\n{items}  \n</ul>\n{more}" if heading else f"\n<ul>\n{items}  \n</ul>\n{more}"
        title = self.category_titles.get(slug) or (entries[0].tag if entries else slug)
        return _page(title, listing_path(slug), content)

    def post_page(self, entry: Entry) -> str:
        """_layouts/post.html around the kramdown-rendered body."""
        # ``{% if page.tags %}`` is true for Jekyll's empty tag list too.
        tags = "\n  <small>tags: <em>" + "</em> - <em>".join(map(_text, entry.post.tags)) + "</em></small>\n"
        content = (
            f"<small>[GMT+8, Asia/Shanghai, CST] {entry.shown_time} &nbsp; </small>\n"
            f"<h1>{_text(entry.title)}</h1>\n\n"
            f"{entry.body_html}\n\n{tags}\n"
        )
        return _page(entry.title, entry.path, content, published=entry.published)

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
                f'<title type="html">{_e(_text(entry.title))}</title>'
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


def _jekyll_order(entry: Entry):
    """Jekyll sorts posts by date, then by path (lists show them reversed)."""
    stamp = entry.published.timestamp() if entry.published else float("-inf")
    return (stamp, entry.post.name)


def _e(text: str) -> str:
    return html.escape(text or "", quote=True)


def _text(text: str) -> str:
    """A title or tag as HTML text. The site's layouts print them unescaped,
    so on the real site a title from a hostile source would be live markup;
    the replica escapes them as Liquid's ``escape_once`` does (the same page
    for ordinary titles and for the exporter's, which are HTML text already)."""
    return _ESCAPE_ONCE.sub(lambda m: _ESCAPES[m.group(0)[0]], text or "")


def _li(entry: Entry) -> str:
    """A list item as Liquid writes it, the title escaped (``_text``)."""
    return f'<li><a href="{entry.path}">{_text(entry.title)}</a></li>\n'


def _rfc3339(moment: datetime | None) -> str:
    moment = moment or datetime(1970, 1, 1, tzinfo=UTC)
    return moment.astimezone(SITE_TZ).isoformat()


def _page(title: str, path: str, content: str, published: datetime | None = None) -> str:
    """_layouts/default.html (with jekyll-seo-tag's head): absolute links
    point at the real site, as Jekyll's ``absolute_url`` makes them."""
    url = SITE_URL + path
    title = _text(title)
    article = (f'<meta property="og:type" content="article" />\n'
               f'<meta property="article:published_time" content="{published.isoformat()}" />\n'
               if published else '<meta property="og:type" content="website" />\n')
    return (
        '<!DOCTYPE html>\n<html lang="zh-CN">\n  <head>\n    <meta charset="utf-8">\n'
        '    <meta http-equiv="X-UA-Compatible" content="IE=edge">\n'
        '    <meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '    <meta content="ZNing" name="author" />\n    <meta property="og:type" content="website" />\n'
        f'    <meta property="og:title" content="{title}">\n'
        f'    <meta property="og:description" content="{title}">\n'
        f'    <meta property="og:image" content="{SITE_URL}/assets/img/xiaoxi.png">\n'
        f'    <meta property="og:url" content="{url}">\n'
        '    <meta name="theme-color" content="#1976D2">\n'
        '    <link rel="shortcut icon" href="https://withounder.com/images/favicon.ico">\n'
        f'    <link rel="alternate" type="application/atom+xml" title="{MIRROR_TITLE}" href="{SITE_URL}/feed.xml">\n\n'
        "<!-- Begin Jekyll SEO tag v2.8.0 -->\n"
        f"<title>{title} | {MIRROR_TITLE}</title>\n"
        '<meta name="generator" content="Jekyll v4.3.1" />\n'
        f'<meta property="og:title" content="{title}" />\n'
        '<meta name="author" content="ZNing" />\n<meta property="og:locale" content="zh_CN" />\n'
        f'<link rel="canonical" href="{url}" />\n<meta property="og:url" content="{url}" />\n'
        f'<meta property="og:site_name" content="{MIRROR_TITLE}" />\n{article}'
        '<meta name="twitter:card" content="summary" />\n'
        f'<meta property="twitter:title" content="{title}" />\n'
        "<!-- End Jekyll SEO tag -->\n\n"
        '    <link rel="stylesheet" href="/assets/css/style.css?v=">\n'
        '    <script type="text/JavaScript">\n      function AutoRefresh( t ) {\n'
        '       setTimeout("location.reload(true);", t);\n      }\n    </script>\n  </head>\n'
        '  <body onload="JavaScript:AutoRefresh(60000);">\n    <div class="wrapper">\n      <header>\n'
        f'        <h1><a href="{SITE_URL}/">{MIRROR_TITLE}</a></h1>\n\n        \n\n        <p></p>\n\n'
        "      </header>\n      <section>\n\n      "
        f"{content}"
        "\n\n      </section>\n      <footer>\n"
        "        <p><small>【免责声明】<br />投资有风险，入市需谨慎。本页面所载内容通过各方消息源渠道聚合，"
        "不构成任何投资建议，且不构成网站管理员任何投资观点。</small></p>\n"
        '        <p>&copy; 2020 - <script type="text/javascript">document.write((new Date()).getFullYear());'
        "</script> 金融消息聚合简站. </p>\n      </footer>\n    </div>\n"
        '    <script src="/assets/js/scale.fix.js"></script>\n  </body>\n</html>\n'
    )


__all__ = ["BUNDLED_CORPUS", "Entry", "ReplicaSite", "category_titles", "jekyll_time"]
