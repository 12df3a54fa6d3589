"""Jekyll post files (``_posts/<date>-<code>.md``), the source of the mirror.

The replica site is built from these files and tests compare crawled posts
with them, so reading one is a plain function of its text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from finews.infocode import info_code_from_url

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

    @property
    def stem(self) -> str:
        """Jekyll's slug: the file name without extension and date prefix."""
        base = self.name.rsplit(".", 1)[0]
        match = _FILE_DATE.match(base)
        return match.group(4) if match else base

    @property
    def file_date(self) -> tuple[str, str, str] | None:
        match = _FILE_DATE.match(self.name)
        return match.group(1, 2, 3) if match else None

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
    return PostFile(
        name=name,
        title=str(meta.get("title") or "").strip(),
        date=str(meta.get("date") or "").strip(),
        category=str(meta.get("categories") or "").strip(),
        tags=tags.split() if isinstance(tags, str) else [str(t) for t in tags],
        body=body,
        link=links[-1] if links else "",
        raw=text,
    )


def read_post_file(path: Path) -> PostFile:
    # newline="" keeps CRLF bodies as they are in the source repository.
    with open(path, encoding="utf-8", newline="") as handle:
        return parse_post_file(handle.read(), name=path.name)
