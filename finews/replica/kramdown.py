"""Post bodies rendered the way the real site's kramdown (GFM input) did.

No Python port of kramdown exists, and CommonMark renderers differ from it
exactly where the spiders look: kramdown re-serializes raw HTML (each
top-level element on its own line, attributes re-quoted with bare ``&``
escaped, void elements as ``<br />``), wraps ``> digest`` in an indented
``<blockquote>``, and turns the empty link ``<>`` into the text ``&lt;&gt;``.
This renderer covers what Jekyll posts use (raw HTML blocks, paragraphs with
autolinks, links, emphasis and inline HTML, blockquotes) and is checked
against real Jekyll output for every corpus post (tests/test_replica_render.py).

An unclosed block element swallows the rest of the body as raw HTML, as it
does in kramdown (which auto-closes it at the end of the document).
"""

from __future__ import annotations

import re
from functools import lru_cache

_NAME = r"[A-Za-z_:][\w:.-]*"
_TAG = re.compile(
    rf"<({_NAME})((?:\s+{_NAME}(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s\"'>]+))?)*)\s*(/)?>", re.S)
_CLOSE = re.compile(rf"</({_NAME})\s*>", re.S)
_RAW_START = re.compile(rf"(?=<(?:{_NAME}|/|!--|\?))")
_COMMENT = re.compile(r"<!--(.*?)-->", re.S)
_INSTRUCTION = re.compile(r"<\?(.*?)\?>", re.S)
_ATTRIBUTE = re.compile(rf"\s*({_NAME})(?:\s*=\s*(?:\"(.*?)\"|'(.*?)'|([^\s\"'>]+)))?", re.S)
_ENTITY = r"&(?:#x[0-9a-fA-F]+|#\d+|[A-Za-z_:][\w:.-]*);"
_BARE_AMPERSAND = re.compile(rf"&(?!{_ENTITY[1:]})")

SPAN_ELEMENTS = frozenset(
    "a abbr acronym b big bdo br button cite code del dfn em i img input ins kbd label mark option q rb rbc "
    "rp rt rtc ruby samp select small span strike strong sub sup textarea tt u var".split())
_TRAILING = re.compile(r"[ \t]*\n?")
VOID_ELEMENTS = frozenset("area base br col command embed hr img input keygen link meta param source track wbr".split())
RAW_TEXT_ELEMENTS = frozenset({"script", "style"})
MAX_QUOTE_DEPTH = 100  # deeper `> > >…` stays text: a body must not exhaust the recursion limit

_BLANK = re.compile(r"[ \t]*$")
_BLANK_AT = re.compile(r"[ \t]*(?:\n|\Z)")
_QUOTE_LINE = re.compile(r" {0,3}>")
_HTML_START = re.compile(rf" {{0,3}}<({_NAME}|!--)")
_HTML_CLOSE_START = re.compile(rf" {{0,3}}</({_NAME})\s*>")
_HEADER = re.compile(r" {0,3}(#{1,6})(?:[ \t]+(.*?))?[ \t#]*$")
_RULE = re.compile(r" {0,3}([-*_])[ \t]*(?:\1[ \t]*){2,}$")
_AUTOLINK = re.compile(r"<((?:mailto|https?|ftps?):[^<>\s]+?|[-.\w]+@[-\w]+(?:\.[-\w]+)*\.[a-z]+)>")
_LINK = re.compile(r"\[([^\[\]]*)\]\(\s*<?([^\s()<>]*)>?(?:\s+\"([^\"]*)\")?\s*\)")
# Delimited runs never contain their delimiter: linear time on any input.
_STRONG = re.compile(r"\*\*(?=\S)([^*]+?)(?<=\S)\*\*|__(?=\S)([^_]+?)(?<=\S)__")
_EMPHASIS = re.compile(r"(?<![\w*])\*(?=\S)([^*]+?)(?<=\S)\*(?![\w*])|(?<![\w_])_(?=\S)([^_]+?)(?<=\S)_(?![\w_])")
_CODE = re.compile(r"(`++)([^`]+)\1(?!`)")
_BACKSLASH = re.compile(r"\\([\\.*_+\-`()\[\]{}#!:|\"'$=<>])")
_TYPOGRAPHY = [("---", "\u2014"), ("--", "\u2013"), ("...", "\u2026"), ("&lt;&lt;", "\u00ab"), ("&gt;&gt;", "\u00bb")]
_LIST_ITEM = re.compile(r" {0,3}([*+-]|\d+\.)[ \t]+(.*)$")


@lru_cache(maxsize=16)
def _last(text: str, closer: str) -> int:
    return text.rfind(closer)


def _special(text: str, pos: int) -> re.Match | None:
    """A comment or processing instruction at ``pos``; one whose closer never
    comes is refused at once (``<!--`` repeated must not cost quadratic time)."""
    if text.startswith("<!--", pos):
        return _COMMENT.match(text, pos) if _last(text, "-->") >= pos + 4 else None
    if text.startswith("<?", pos):
        return _INSTRUCTION.match(text, pos) if _last(text, "?>") >= pos + 2 else None
    return None


def escape_text(text: str) -> str:
    """kramdown's ``escape_html(…, :text)``: bare ``<``, ``>``, ``&`` escaped, entities kept."""
    return _BARE_AMPERSAND.sub("&amp;", text).replace("<", "&lt;").replace(">", "&gt;")


def escape_attribute(text: str) -> str:
    return escape_text(text).replace('"', "&quot;")


def _attributes(source: str) -> str:
    attrs: dict[str, str] = {}
    for match in _ATTRIBUTE.finditer(source):
        name, double, single, bare = match.groups()
        value = next((v for v in (double, single, bare) if v is not None), "")
        attrs[name.lower()] = re.sub(r"\n+", " ", value)
    return "".join(f' {name}="{escape_attribute(value)}"' for name, value in attrs.items())


class _RawHtml:
    """kramdown's raw HTML parser: element structure kept, text escaped."""

    def __init__(self, text: str, pos: int):
        self.text = text
        self.pos = pos

    def element(self, match: re.Match) -> str:
        """Serialize the element whose start tag ``match`` is; ``pos`` moves past it.

        Iterative (an explicit stack of open elements), so no nesting depth a
        body can reach exhausts Python's recursion limit.
        """
        stack: list[tuple[str, str, list[str]]] = []
        leaf = self._open(match, stack)
        if leaf is not None:
            return leaf
        done = ""
        while stack:
            name, _, parts = stack[-1]
            found = _RAW_START.search(self.text, self.pos) if self.pos < len(self.text) else None
            if not found:  # kramdown auto-closes what is open at the end of the document
                parts.append(escape_text(self.text[self.pos:]))
                self.pos = len(self.text)
                done = self._close(stack)
                continue
            parts.append(escape_text(self.text[self.pos:found.start()]))
            self.pos = found.start()
            special = _special(self.text, self.pos)
            tag = None if special else _TAG.match(self.text, self.pos)
            close = None if special or tag else _CLOSE.match(self.text, self.pos)
            if special:
                parts.append(special.group(0))
                self.pos = special.end()
            elif tag:
                leaf = self._open(tag, stack)
                if leaf is not None:
                    parts.append(leaf)
            elif close and close.group(1).lower() == name:
                self.pos = close.end()
                done = self._close(stack)
            elif close:
                parts.append(escape_text(close.group(0)))
                self.pos = close.end()
            else:
                parts.append(escape_text(self.text[self.pos]))
                self.pos += 1
        return done

    def _open(self, match: re.Match, stack: list) -> str | None:
        """An element without content as its markup; else pushed on ``stack`` (None)."""
        lower = match.group(1).lower()
        self.pos = match.end()
        start = f"<{lower}{_attributes(match.group(2))}"
        if match.group(3) or lower in VOID_ELEMENTS:
            return start + " />"
        if lower in RAW_TEXT_ELEMENTS:
            close = re.compile(rf"</{lower}\s*>", re.I).search(self.text, self.pos)
            end = close.start() if close else len(self.text)
            body, self.pos = self.text[self.pos:end], (close.end() if close else len(self.text))
            return f"{start}>{body}</{lower}>"
        stack.append((lower, start, []))
        return None

    @staticmethod
    def _close(stack: list) -> str:
        """Pop the innermost element; its markup goes to its parent (and is returned)."""
        name, start, parts = stack.pop()
        inner = "".join(parts)
        html = f"{start}>{inner}</{name}>" if inner else f"{start}></{name}>"
        if stack:
            stack[-1][2].append(html)
        return html


def _typography(text: str) -> str:
    """kramdown's typographic symbols and smart quotes in markdown text
    (written as characters, as Jekyll's kramdown outputs them)."""
    for plain, symbol in _TYPOGRAPHY:
        text = text.replace(plain, symbol)
    text = re.sub(r'(?<![\w\])])"(?=\S)', "\u201c", text)
    text = text.replace('"', "\u201d")
    text = re.sub(r"(?<=\w)'", "\u2019", text)
    text = re.sub(r"'(?=\S)", "\u2018", text)
    return text.replace("'", "\u2019")


def render_span(text: str) -> str:
    """Inline markdown: code, autolinks, links, inline HTML, emphasis, text."""
    out, pos = [], 0
    pieces = re.compile(r"`+|<|\[|\\")
    plain_start = 0

    def flush(end: int) -> None:
        if end > plain_start:
            out.append(_plain(text[plain_start:end]))

    while True:
        found = pieces.search(text, pos)
        if not found:
            break
        start = found.start()
        match = None
        html = None
        if text[start] == "`":
            match = _CODE.match(text, start)
            html = match and f"<code>{escape_text(match.group(2).strip())}</code>"
        elif text[start] == "\\":
            match = _BACKSLASH.match(text, start)
            html = match and escape_text(match.group(1))
        elif text[start] == "[":
            match = _LINK.match(text, start)
            if match:
                title = f' title="{escape_attribute(match.group(3))}"' if match.group(3) else ""
                html = f'<a href="{escape_attribute(match.group(2))}"{title}>{render_span(match.group(1))}</a>'
        else:
            match = _AUTOLINK.match(text, start)
            if match:
                target = match.group(1)
                href = target if ":" in target.split("@")[0] else f"mailto:{target}"
                html = f'<a href="{escape_attribute(href)}">{escape_text(target)}</a>'
            else:
                tag = _TAG.match(text, start) or _CLOSE.match(text, start) or _special(text, start)
                if tag:
                    match = tag
                    html = _inline_tag(tag)
        if match and html is not None:
            flush(start)
            out.append(html)
            pos = plain_start = match.end()
        else:
            pos = found.end() if text[start] == "`" else start + 1
    flush(len(text))
    return "".join(out)


def _inline_tag(match: re.Match) -> str:
    source = match.group(0)
    if source.startswith("<!--"):
        return source
    if source.startswith("</"):
        return f"</{match.group(1).lower()}>"
    name = match.group(1).lower()
    end = " />" if match.group(3) or name in VOID_ELEMENTS else ">"
    return f"<{name}{_attributes(match.group(2))}{end}"


def _plain(text: str) -> str:
    text = _STRONG.sub(lambda m: f"\0strong\0{m.group(1) or m.group(2)}\0/strong\0", text)
    text = _EMPHASIS.sub(lambda m: f"\0em\0{m.group(1) or m.group(2)}\0/em\0", text)
    text = _typography(escape_text(text))
    return re.sub(r"\0(/?\w+)\0", r"<\1>", text)


def _paragraph(lines: list[str], indent: int) -> str:
    text = "\n".join(line.strip() if i == 0 else line.rstrip() for i, line in enumerate(lines)).strip()
    return " " * indent + f"<p>{render_span(text)}</p>\n"


def render(source: str, indent: int = 0) -> str:
    """A post body (the text after the front matter) as kramdown renders it."""
    text = source.replace("\r\n", "\n").replace("\r", "\n")
    out: list[str] = []
    header_ids: dict[str, int] = {}
    pos, end = 0, len(text)
    while pos < end:
        blank = _BLANK_AT.match(text, pos)
        if blank:
            if not out or out[-1] != "\n":
                out.append("\n")
            pos = blank.end()
            continue
        start = _HTML_START.match(text, pos)  # several elements may share a line: never slice it
        if start and (start.group(1) == "!--" or start.group(1).lower() not in SPAN_ELEMENTS):
            at = text.index("<", pos)
            comment = _special(text, at)
            tag = _TAG.match(text, at)
            if comment:
                out.append(" " * indent + comment.group(0) + "\n")
                pos = comment.end()
            elif tag:
                raw = _RawHtml(text, at)
                out.append(" " * indent + raw.element(tag) + "\n")
                pos = raw.pos
                name = tag.group(1).lower()
                if tag.group(3) or name in VOID_ELEMENTS or name in RAW_TEXT_ELEMENTS:
                    continue  # kramdown leaves the rest of the line, which then reads as a blank line
            else:
                pos = _add_paragraph(text, pos, out, indent)
                continue
            trailing = _TRAILING.match(text, pos)
            assert trailing is not None  # the pattern matches the empty string
            pos = trailing.end()
            continue
        line_end = text.find("\n", pos)
        line_end = end if line_end < 0 else line_end
        line = text[pos:line_end]
        if _QUOTE_LINE.match(line) and indent < MAX_QUOTE_DEPTH * 2:
            quoted = []
            while pos < end:
                line_end = text.find("\n", pos)
                line_end = end if line_end < 0 else line_end
                line = text[pos:line_end]
                if _BLANK.match(line):
                    break
                quote = _QUOTE_LINE.match(line)
                quoted.append(re.sub(r"^ ?", "", line[quote.end():]) if quote else line)
                pos = line_end + 1
            inner = render("\n".join(quoted), indent + 2)
            out.append(" " * indent + "<blockquote>\n" + inner + " " * indent + "</blockquote>\n")
            continue
        header = _HEADER.match(line)
        if header:
            level, content = len(header.group(1)), render_span(header.group(2) or "")
            out.append(" " * indent + f'<h{level} id="{_header_id(content, header_ids)}">{content}</h{level}>\n')
            pos = line_end + 1
            continue
        item = _LIST_ITEM.match(line)
        if item:
            kind = "ol" if item.group(1)[0].isdigit() else "ul"
            items: list[list[str]] = []
            while pos < end:
                line_end = text.find("\n", pos)
                line_end = end if line_end < 0 else line_end
                line = text[pos:line_end]
                if _BLANK.match(line):
                    break
                item = _LIST_ITEM.match(line)
                if item:
                    items.append([item.group(2)])
                else:
                    items[-1].append(line.strip())
                pos = line_end + 1
            lis = "".join(" " * (indent + 2) + f"<li>{render_span(chr(10).join(i).strip())}</li>\n" for i in items)
            out.append(" " * indent + f"<{kind}>\n{lis}" + " " * indent + f"</{kind}>\n")
            continue
        if _RULE.match(line):
            out.append(" " * indent + "<hr />\n")
            pos = line_end + 1
            continue
        pos = _add_paragraph(text, pos, out, indent)
    while len(out) > 1 and out[-1] == "\n":
        out.pop()
    return "".join(out) or "\n"


def _header_id(html: str, seen: dict[str, int]) -> str:
    """kramdown GFM's automatic header id: lower case, word characters and dashes."""
    text = re.sub(r"<[^>]*>", "", html).lower()
    base = re.sub(r"[ \t]", "-", re.sub(r"[^\w\- \t]", "", text))
    count = seen.get(base, -1) + 1
    seen[base] = count
    return f"{base}-{count}" if count else base


def _add_paragraph(text: str, pos: int, out: list[str], indent: int) -> int:
    """Lines up to a blank line or the start of another block (GFM's paragraph end)."""
    lines: list[str] = []
    end = len(text)
    while pos < end:
        line_end = text.find("\n", pos)
        line_end = end if line_end < 0 else line_end
        line = text[pos:line_end]
        if _BLANK.match(line):
            break
        if lines:
            start = _HTML_START.match(line)
            if (_QUOTE_LINE.match(line) or _HEADER.match(line) or _LIST_ITEM.match(line)
                    or (start and (start.group(1) == "!--" or start.group(1).lower() not in SPAN_ELEMENTS))
                    or _HTML_CLOSE_START.match(line)):
                break
        lines.append(line)
        pos = line_end + 1
    out.append(_paragraph(lines, indent))
    return min(pos, end)


__all__ = ["escape_attribute", "escape_text", "render", "render_span"]
