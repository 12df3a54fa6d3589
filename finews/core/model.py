"""The stored post: every field of a ``posts`` document, declared once.

Each ``Field`` line gives the name, the BSON type, whether readers may rely on
it (required), who writes it and what it means. From this list come the
stored fields of ``PostItem`` (crawler/items.py), the write projection of the
store (``written``), the ``$jsonSchema`` validator (finews/storage/schema.py), the
upgrade of older posts (``finews migrate``) and the field table of
docs/schema.md (``python -m finews.cli.docs --markdown fields``; a test compares them).

Adding an optional field: one ``Field`` line here (``crawled=True`` when the
spider finds it: the item then carries it and ``normalize_post`` passes it on
as found), its parser, then ``python -m finews.cli.docs --write-docs``. A new
*required* field also needs ``since`` = a new ``SCHEMA_VERSION`` and a
``default`` for older posts: the validator is ``moderate`` (older posts keep
accepting updates) and ``finews migrate`` fills the default in.

Domain code: no Scrapy, no pymongo.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from finews.core.infocode import MEDIA, ROLLING

SCHEMA_VERSION = 2  # 1: the posts stored before schema_version existed (they have none)
CODE_PATTERN = "^NW[0-9]{18}$"
# Where a stored post's time (and title) came from, worst to best.
TIME_SOURCES = ("page", "share", "feed")

# type label (docs) -> BSON type(s) (validator)
BSON_TYPES: dict[str, str | list[str]] = {
    "string": "string", "date": "date", "int": ["int", "long"], "[string]": "array"}


@dataclass(frozen=True)
class Field:
    name: str
    type: str  # a key of BSON_TYPES
    required: bool  # readers may rely on it; the validator refuses a post without it
    crawled: bool  # found by a spider and normalized (an item field, written by the pipeline); else kept by the store
    meaning: str
    rule: dict[str, Any] = field(default_factory=dict)  # more $jsonSchema constraints (pattern, enum, minimum, …)
    since: int = 1  # the schema version that added it
    default: Any = None  # what ``finews migrate`` gives older posts (required fields added after version 1)

    def bson_schema(self) -> dict[str, Any]:
        if "enum" in self.rule:
            return dict(self.rule)
        schema: dict[str, Any] = {"bsonType": BSON_TYPES[self.type]}
        if self.type == "[string]":
            schema["items"] = {"bsonType": "string"}
        return schema | self.rule


REQ, OPT = True, False  # required, optional
CRAWLED, KEPT = True, False  # from the page (item field), by the store

POST_FIELDS: tuple[Field, ...] = (
    Field("_id", "string", REQ, KEPT, "the normalized infoCode, same as `info_code`", {"pattern": CODE_PATTERN}),
    Field("info_code", "string", REQ, CRAWLED,
          "`NW` + 18 digits. A rolling-news id (`202204212352227421`) and its `NW` twin are one article and one "
          "document. Unique index.", {"pattern": CODE_PATTERN}),
    Field("kind", "string", REQ, CRAWLED,
          "`media` (found under an `NW…` code) or `rolling` (东财滚动新闻, bare 18-digit id). "
          "When both twins are crawled the `media` one is kept.", {"enum": [MEDIA, ROLLING]}),
    Field("title", "string", REQ, CRAWLED, "title, whitespace collapsed", {"minLength": 1}),
    Field("published_at", "date", REQ, CRAWLED,
          "publication time (the site writes Asia/Shanghai local time; stored UTC)"),
    Field("media", "string", REQ, CRAWLED, "media name, e.g. `河北日报`; rolling news: `东财滚动`"),
    Field("category", "string", REQ, CRAWLED, "the site's category slug, e.g. `hebeiribao`, `emnews`"),
    Field("tags", "[string]", REQ, CRAWLED, "the site's tags, e.g. `[\"河北日报新闻\"]`"),
    Field("body_html", "string", REQ, CRAWLED,
          "the article HTML, sanitized: eastmoney widgets removed (chart blocks, hidden paragraphs, quote "
          "placeholders), stock/board links reduced to their words, no script/style/event handler/non-http URL"),
    Field("body_text", "string", REQ, CRAWLED,
          "the article's paragraphs (block elements and line breaks), one per line, joined by `\\n`"),
    Field("url", "string", REQ, CRAWLED,
          "the page the stored version was fetched from: the mirror's post page (`category`), the share page "
          "(`newsshare`) or the `GetNewsText.do` answer (`newslist`); a changed fetch that makes a new version "
          "replaces it"),
    Field("source_url", "string", REQ, CRAWLED,
          "the link to the original article (share page or eastmoney page; for a rolling feed item its `url_w`); "
          "empty when the page gives none (`<>`)"),
    Field("images", "[string]", REQ, CRAWLED, "absolute URLs of the pictures kept in `body_html`"),
    Field("content_hash", "string", REQ, CRAWLED,
          "SHA-256 of title, publication time and `body_html`; decides whether a re-fetch changed the post",
          {"minLength": 64, "maxLength": 64}),
    Field("version", "int", REQ, KEPT, "1 when first stored, +1 per change", {"minimum": 1}),
    Field("first_seen_at", "date", REQ, KEPT, "when the post was first stored"),
    Field("crawled_at", "date", REQ, KEPT, "when it was last fetched (an unchanged re-fetch writes only this)"),
    Field("updated_at", "date", OPT, KEPT, "when its content last changed (absent until it changes)"),
    Field("near_duplicates", "[string]", OPT, KEPT,
          "infoCodes of other posts telling the same story (estimated Jaccard similarity of character 3-grams of "
          "`body_text` ≥ 0.7); absent when there are none. Flags only: both posts stay stored."),
    Field("time_source", "string", OPT, CRAWLED,
          "where `title` and `published_at` came from: `page` (the mirror's post page), `share` (the share JSON) or "
          "`feed` (a list feed item, the source of truth). A value is only replaced by one from an equal or better "
          "source (see \"Where sources disagree\"). Absent on posts stored before it existed: read as `page`.",
          {"enum": list(TIME_SOURCES)}),
    Field("sources", "[string]", OPT, KEPT,
          "every source that has seen the post: `mirror` (category spider), `share` (newsshare), or a feed name "
          "(`rolling`, `media`, `market37`, `market38`, `market39`). Absent on older posts."),
    Field("schema_version", "int", REQ, KEPT,
          f"the version of this table the post was last written under ({SCHEMA_VERSION} now); older posts have none "
          "until `finews migrate` upgrades them", {"minimum": 1}, since=2, default=2),
)

FIELDS = {f.name: f for f in POST_FIELDS}
REQUIRED = tuple(f.name for f in POST_FIELDS if f.required)
OPTIONAL = tuple(f.name for f in POST_FIELDS if not f.required)
# Found by a spider, normalized, carried by the item and written by the pipeline.
CRAWLED_FIELDS = tuple(f.name for f in POST_FIELDS if f.crawled)


def written(values: Mapping[str, Any]) -> dict[str, Any]:
    """The crawled fields of a normalized post as the store writes them; an
    optional field without a value is left out (the validator refuses null)."""
    doc: dict[str, Any] = {}
    for name in CRAWLED_FIELDS:
        value = values.get(name)
        if value is not None or FIELDS[name].required:
            doc[name] = value
    return doc


def current(doc: dict[str, Any]) -> dict[str, Any]:
    """A post about to be written, at the current schema version (a post
    spooled by an older finews gets the defaults of the fields added since)."""
    for step in range(doc.get("schema_version") or 1, SCHEMA_VERSION):
        for name, value in upgrade(step + 1).items():
            doc.setdefault(name, value)
    doc["schema_version"] = SCHEMA_VERSION
    return doc


def upgrade(version: int) -> dict[str, Any]:
    """The values a post of ``version - 1`` gets on its way to ``version``."""
    return {f.name: f.default for f in POST_FIELDS if f.since == version and f.default is not None}


def validator() -> dict[str, Any]:
    """The ``$jsonSchema`` validator of ``posts``."""
    return {"$jsonSchema": {
        "bsonType": "object",
        "required": sorted(f.name for f in POST_FIELDS if f.required),
        "properties": {f.name: f.bson_schema() for f in POST_FIELDS},
    }}


def markdown_table() -> str:
    """The field table of ``posts`` in docs/schema.md."""
    rows = ["| field | type | required | meaning |", "|---|---|---|---|"]
    for f in POST_FIELDS:
        since = f" (since schema version {f.since})" if f.since > 1 else ""
        meaning = f.meaning.replace("|", "\\|")
        rows.append(f"| `{f.name}` | {f.type} | {'yes' if f.required else 'no'}{since} | {meaning} |")
    return "\n".join(rows) + "\n"
