"""Jekyll post files (``_posts/<date>-<code>.md``), the source of the mirror.

The replica site is built from these files and tests compare crawled posts
with them, so reading one is a plain function of its text. Only the replica
reads post files (the crawler reads pages; export writes with
``finews.core.jekyll``), so this lives with it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from finews.core.infocode import info_code_from_url

logger = logging.getLogger(__name__)

_FRONT_MATTER = re.compile(r"\A---\r?\n(.*?)\r?\n---\r?\n?", re.S)
_LINK_LINE = re.compile(r"^<([^<>\s]*)>\s*$", re.M)
_FILE_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})-(.+)$")


@dataclass(frozen=True)
class PostFile:
    """One post file, split into what the site renders from it."""

    name: str
    title: str
    date: str
    category: str
    tags: list[str] = field(default_factory=list)
    body: str = ""
    link: str = ""
    raw: str = ""
    has_front_matter: bool = True

    @property
    def stem(self) -> str:
        """Jekyll's slug: the file name without extension and date prefix."""
        base = self.name.rsplit(".", 1)[0]
        match = _FILE_DATE.match(base)
        return match.group(4) if match else base

    @property
    def file_date(self) -> tuple[str, str, str] | None:
        match = _FILE_DATE.match(self.name)
        return (match.group(1), match.group(2), match.group(3)) if match else None

    @property
    def raw_code(self) -> str | None:
        """The code the article link names, as written there."""
        return info_code_from_url(self.link)


def parse_post_file(text: str, name: str = "") -> PostFile:
    """Split a post file into front matter fields, body and article link.

    Raises ``ValueError`` when there is no front matter at all.
    """
    match = _FRONT_MATTER.match(text)
    if not match:
        raise ValueError(f"{name or 'post'}: no front matter")
    try:
        meta = yaml.load(match.group(1), Loader=yaml.BaseLoader) or {}
    except yaml.YAMLError as error:
        problem = getattr(error, "problem", None) or error
        raise ValueError(f"{name or 'post'}: front matter is not YAML ({problem})") from error
    if not isinstance(meta, dict):
        raise ValueError(f"{name or 'post'}: front matter is not a mapping")
    body = text[match.end():]
    links = _LINK_LINE.findall(body)
    tags = meta.get("tags") or []
    categories = meta.get("categories") or ""
    return PostFile(
        name=name,
        title=str(meta.get("title") or "").strip(),
        date=str(meta.get("date") or "").strip(),
        # A list is what the exporter writes for a category that is not one
        # plain word; Jekyll joins a post's categories with "/" in its URL.
        category=("/".join(str(c) for c in categories) if isinstance(categories, list) else str(categories)).strip(),
        tags=tags.split() if isinstance(tags, str) else [str(t) for t in tags],
        body=body,
        link=links[-1] if links else "",
        raw=text,
    )


def read_post_file(path: Path) -> PostFile:
    # newline="" keeps CRLF bodies as they are in the source repository.
    with open(path, encoding="utf-8", newline="") as handle:
        return parse_post_file(handle.read(), name=path.name)


def read_post_source(path: Path) -> PostFile | None:
    """A post file as Jekyll publishes it, or None (with a logged warning)
    for one Jekyll would not publish or could not read.

    A file that does not start with ``---`` (no front matter, a blank line
    before it, an empty file) is published by Jekyll with its whole text as
    body and its stem as title, if its name carries a date. Files that are
    not UTF-8 text, or whose front matter is not a YAML mapping, are left out.
    """
    try:
        data = path.read_bytes()
    except OSError as error:
        logger.warning("post file %s left out: cannot be read (%s)", path.name, error.strerror or error)
        return None
    if b"\x00" in data:
        logger.warning("post file %s left out: binary content (NUL bytes)", path.name)
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        logger.warning("post file %s left out: not UTF-8 (byte %d)", path.name, error.start)
        return None
    return post_source(text, path.name)


def post_source(text: str, name: str) -> PostFile | None:
    """``read_post_source`` of a file's text (``finews serve`` reads the
    exporter's files from memory): the post as Jekyll publishes it, or None."""
    text = text.removeprefix("\ufeff")
    if not _FRONT_MATTER.match(text):
        post = PostFile(name=name, title="", date="", category="", body=text, raw=text,
                        has_front_matter=False)
        if not post.file_date:
            logger.warning("post file %s left out: no front matter and no date in its name", name)
            return None
        logger.warning("post file %s has no front matter: served as Jekyll does, titled %r", name, post.stem)
        return post
    try:
        post = parse_post_file(text, name=name)
    except ValueError as error:
        logger.warning("post file %s left out: %s", name, error)
        return None
    if not post.file_date:
        logger.warning("post file %s left out: no date in its name (Jekyll does not publish it)", name)
        return None
    return post
