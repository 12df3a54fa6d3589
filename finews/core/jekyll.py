"""Stored posts as the mirror's own Jekyll post files.

A post whose article is raw HTML (media news) comes back byte for byte from
its stored source (``raw_articles``); markdown parts of rolling news (the
``> digest`` line) come back as the HTML they were rendered to. The replica's
synthesized posts are written with the same front matter and footer.

Every value comes from a source that may be hostile, and Jekyll would execute
what it is given: front matter is written only by ``front_matter`` (quoted so
that YAML reads back exactly the value), titles and tags are written as HTML
text (the site's layouts print them unescaped), Liquid in a body is written
so that Jekyll outputs it literally, an article link that is not http(s) is
left out (``<>``, as the original wrote a post without one), and an article
with active content (scripts, event handlers, ``javascript:`` links) is
written as its sanitized text. Ordinary posts come out byte for byte as the
original pipeline wrote them.
"""

from __future__ import annotations

import html
import re
from typing import Any
from urllib.parse import quote, urlsplit

from finews.core.dates import SITE_TZ
from finews.core.infocode import site_code
from finews.core.pages import MIRROR_HOST
from finews.core.slugs import ROLLING_NEWS_SLUG, TAG_SUFFIX

MIRROR = f"//{MIRROR_HOST}"  # back links: scheme-relative, as the original wrote them

# Liquid outputs this as "{": the one Liquid construct an exported body holds.
LIQUID_BRACE = '{{ "{" }}'
_LIQUID_START = re.compile(r"\{(?=[{%])")

# YAML (1.1, as PyYAML and Ruby's Psych read it) printable characters, minus
# the line breaks and the byte order mark, which must be escaped on one line.
_YAML_UNSAFE = re.compile(
    "[^\x20-\x7e\xa0-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]|[\\\\\"\u2028\u2029]")
_YAML_ESCAPES = {"\\": "\\\\", '"': '\\"', "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0"}
# Plain (unquoted) YAML is kept for values made of letters and digits that
# PyYAML and Psych both read as the same string, as the original wrote them.
_PLAIN_WORD = re.compile(r"(?:[A-Za-z0-9]|[^\x00-\x7f])+")
_NOT_A_STRING = re.compile(r"(?i:[0-9]+|0x[0-9a-f]+|0b[01]+|yes|no|y|n|on|off|true|false|null)")

_URL_SAFE = frozenset(" -_.()")
# Characters no HTML page or XML feed can carry (jekyll-feed would write an
# invalid feed.xml): shown as U+FFFD, as an HTML parser shows a NUL.
_NOT_IN_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_ENTITY_START = re.compile(r"&(?=[#A-Za-z0-9])")
_MARKDOWN_SPECIAL = re.compile(r"[\\`*_\[\]{}$]")

_ARTICLE_LINK = re.compile(r"https?://[^\s<>\"'`\\{}|^\x00-\x1f\x7f]+")

# Active content: what a browser would run or follow from an article written
# into a post as it came. Checked on the text with entities decoded and, for
# URL schemes, invisible characters removed (browsers ignore them there).
_ACTIVE_TAG = re.compile(
    r"<\s*/?\s*(?:script|style|iframe|frame|frameset|object|embed|applet|meta|base|link|form|input|button|"
    r"textarea|select|svg|math|template|noscript|xmp|plaintext|noembed|noframes|isindex|portal|audio|video|"
    r"source|track)\b", re.I)
_ACTIVE_ATTRIBUTE = re.compile(r"\bon[a-z]+\s*=|\b(?:srcdoc|formaction)\s*=|expression\s*\(|-moz-binding", re.I)
_ACTIVE_SCHEME = re.compile(r"(?<![a-z0-9+.-])(?:javascript|vbscript|livescript|data|file|blob|filesystem):", re.I)
_INVISIBLE = re.compile(r"[\x00-\x20\x7f-\x9f\u00ad\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff]+")


def post_path(post: dict[str, Any]) -> str:
    local = post["published_at"].astimezone(SITE_TZ)
    return f"_posts/{local:%Y-%m-%d}-{site_code(post['info_code'], post.get('kind'))}.md"


def post_file(post: dict[str, Any], raw_article: str | None) -> str:
    """A stored post as its post file (export)."""
    local = post["published_at"].astimezone(SITE_TZ)
    tags = post.get("tags") or [post.get("media", "") + TAG_SUFFIX]
    article = raw_article if raw_article is not None else post["body_html"]
    if has_active_content(article):
        article = post["body_html"]
    if has_active_content(article):  # a body stored unsanitized (by another writer): sanitized now
        from finews.core.clean import clean_article

        article = clean_article(article).body_html
    return write_post(post["title"], f"{local:%Y-%m-%d %H:%M:%S} +0800", post["category"], tags, article,
                      post["source_url"])


def write_post(title: str, date: str, category: str, tags: list[str], article: str, source_url: str) -> str:
    """The one writer of a post file's text (export, the feeds' original
    files, the replica's synthesized posts): front matter, the article, its
    link and the back links under the first tag, each made safe here."""
    return front_matter(title, date, category, tags) + body(article, source_url, tags[0], category)


def body(article: str, source_url: str, tag: str, category: str) -> str:
    """Article, article link and back links, with Liquid written literally."""
    return liquid_literal(_NOT_IN_XML.sub("\ufffd", f"{article}\n\n" + footer(source_url, tag, category)))


def front_matter(title: str, date: str, category: str, tags: list[str]) -> str:
    """The one writer of post front matter.

    YAML reads back exactly: the title as HTML text (``html_text``), the date,
    ``[category]`` (``url_segment``: Jekyll builds the post's URL from it) and
    the tags as HTML text. Values that are plain words are
    written as the original did (``categories: hebeiribao``, ``tags: A B``);
    any other is a double-quoted scalar, and a category or tags that are not
    plain words are written as a list (Jekyll splits a string at spaces).
    """
    tags = [html_text(tag) for tag in tags]
    category = url_segment(category)
    categories = category if _is_plain(category) else f"[{yaml_string(category)}]"
    if all(_is_plain(tag) for tag in tags):
        tag_text = " ".join(tags)
    else:
        tag_text = "[" + ", ".join(yaml_string(tag) for tag in tags) + "]"
    if not _is_plain_date(date):
        date = yaml_string(date)
    return (f"---\nlayout: post\ntitle: {yaml_string(html_text(title))}\ndate: {date}\n"
            f"categories: {categories}\ntags: {tag_text}\n---\n")


def footer(source_url: str, tag: str, category: str) -> str:
    """The article link (http or https only, else ``<>``), then the links
    back to the listing and the home page."""
    back = (f"{MIRROR}/{ROLLING_NEWS_SLUG}/" if category == ROLLING_NEWS_SLUG
            else f"{MIRROR}/category/{quote(category)}.html")
    return f"<{article_link(source_url)}>\n\n[返回{markdown_text(tag)}]({back})｜[返回首页]({MIRROR}/)"


def url_segment(category: str) -> str:
    """The category as Jekyll can put it in a URL: letters, digits, spaces
    and ``-_.()`` as they are, any other character percent-encoded (a
    ``:``, ``/``, ``?`` or ``#`` from a hostile source would break the site's
    build or its links; ``unquote`` gives the stored value back)."""
    return "".join(char if char.isalnum() or char in _URL_SAFE else quote(char, safe="") for char in category)


def yaml_string(value: str) -> str:
    """A double-quoted YAML scalar that PyYAML and Psych read back as ``value``."""
    return '"' + _YAML_UNSAFE.sub(_yaml_escape, value) + '"'


def _yaml_escape(match: re.Match[str]) -> str:
    char = match.group(0)
    if char in _YAML_ESCAPES:
        return _YAML_ESCAPES[char]
    code = ord(char)
    return f"\\x{code:02X}" if code <= 0xFF else f"\\u{code:04X}"


def _is_plain(value: str) -> bool:
    return bool(_PLAIN_WORD.fullmatch(value)) and not _NOT_A_STRING.fullmatch(value) and all(
        char.isalpha() for char in value if not char.isascii())


def _is_plain_date(value: str) -> bool:
    return bool(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0800", value))


def html_text(text: str) -> str:
    """``text`` as HTML that shows it as text: ``<``, ``>``, ``"`` and an
    ``&`` that would start a character reference escaped (the site's layouts
    print titles and tags as they are; a plain ``&`` stays as the original
    wrote it). Characters no page or feed can carry become U+FFFD."""
    text = _ENTITY_START.sub("&amp;", _NOT_IN_XML.sub("\ufffd", text))
    return text.replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def markdown_text(text: str) -> str:
    """``text`` inside a markdown link text: one line, shown as text (no
    markup, link syntax, attribute lists or Liquid of its own)."""
    text = html_text(" ".join(text.split()))
    return _MARKDOWN_SPECIAL.sub(lambda m: f"&#{ord(m.group(0))};", text)


def article_link(url: str | None) -> str:
    """The article link if it is an http(s) URL that stays one autolink, else ''."""
    url = url or ""
    if not _ARTICLE_LINK.fullmatch(url):
        return ""
    return url if urlsplit(url).netloc else ""


def liquid_literal(text: str) -> str:
    """``text`` that Liquid outputs unchanged: each ``{`` that would open a
    Liquid tag or output is written as ``{{ "{" }}``. Text without ``{{`` or
    ``{%`` is returned as it is (Jekyll does not run Liquid on it)."""
    return _LIQUID_START.sub(lambda _: LIQUID_BRACE, text)


def liquid_output(text: str) -> str:
    """What Liquid makes of ``liquid_literal``'s text: the text again."""
    return text.replace(LIQUID_BRACE, "{")


def has_active_content(article: str) -> bool:
    """Whether an article (HTML or markdown) holds something a browser would
    run or follow besides http(s) links: scripts and other active elements,
    event handlers, ``javascript:``/``data:`` URLs (entities and invisible
    characters included). Such an article is published sanitized."""
    text = html.unescape(article)
    if _ACTIVE_TAG.search(text) or _ACTIVE_ATTRIBUTE.search(text):
        return True
    return bool(_ACTIVE_SCHEME.search(_INVISIBLE.sub("", text)))
