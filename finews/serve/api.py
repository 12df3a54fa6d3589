"""The JSON API of ``finews serve``: posts, categories, runs, rejects.

Every query parameter is parsed into a typed value before anything is asked
of the database: names outside each endpoint's list, a name given twice, a
value over its length cap, a date that is not ISO 8601 or a cursor that is not
one of ours answer 400 with one line, and the database never sees them. Values
reach MongoDB only as strings compared for equality, dates, or a ``$regex``
made of ``re.escape``'d text (so ``$where``, ``category[$ne]=x`` or a
catastrophic pattern are literal text or refused).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import UTC, datetime
from urllib.parse import parse_qsl

from finews.core.dates import EARLIEST, LATEST, SITE_TZ
from finews.core.infocode import normalize_info_code
from finews.storage.changes import ChangeLog
from finews.storage.db import CRAWL_RUNS, POSTS, REJECTS

MAX_VALUE = 200      # characters of any parameter value
MAX_TEXT = 100       # characters of a text search
MAX_FIELDS = 20      # parameters in one query string
DEFAULT_LIMIT, MAX_LIMIT = 50, 200
_CODE = re.compile(r"NW\d{18}")
_OBJECT_ID = re.compile(r"[0-9a-f]{24}")

# Fields of a post in a list; one post (/api/posts/<code>) adds its body.
LIST_FIELDS = ("info_code", "kind", "title", "published_at", "media", "category", "tags", "source_url", "url",
               "images", "version", "first_seen_at", "crawled_at", "updated_at", "near_duplicates", "time_source",
               "sources")
BODY_FIELDS = ("body_html", "body_text")
REJECT_FIELDS = ("url", "reason", "detail", "spider", "title", "raw_code", "count", "first_seen_at", "last_seen_at")
RUN_FIELDS = ("_id", "job", "spider", "arguments", "host", "outcome", "finish_reason", "started_at", "ended_at",
              "pages_attempted", "stored", "failures_by_reason", "failures_by_kind")


class BadRequest(ValueError):
    """A 400: the message is the one line returned."""


class NotFound(LookupError):
    """A 404."""


def parse_query(query: str, allowed: tuple[str, ...]) -> dict[str, str]:
    """``name -> value`` of a query string; BadRequest for anything else."""
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=False, max_num_fields=MAX_FIELDS,
                          errors="strict")
    except ValueError:
        raise BadRequest(f"too many or malformed query parameters (at most {MAX_FIELDS})") from None
    params: dict[str, str] = {}
    for name, value in pairs:
        if name not in allowed:
            raise BadRequest(f"unknown parameter {_shown(name)}; allowed: {', '.join(allowed)}")
        if name in params:
            raise BadRequest(f"parameter {name} given twice")
        if len(value) > MAX_VALUE:
            raise BadRequest(f"parameter {name} is longer than {MAX_VALUE} characters")
        if "\x00" in value:
            raise BadRequest(f"parameter {name} holds a NUL character")
        params[name] = value
    return params


def _shown(text: str) -> str:
    return json.dumps(text[:40] + ("…" if len(text) > 40 else ""), ensure_ascii=False)


def parse_time(name: str, text: str, end: bool = False) -> datetime:
    """An ISO 8601 date or time (site time, Asia/Shanghai, unless it has an
    offset), as UTC. A bare date as ``until`` means the end of that day."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadRequest(f"parameter {name} is not an ISO 8601 date or time: {_shown(text)}") from None
    if end and len(text) == 10:  # a bare date: the whole day
        moment = moment.replace(hour=23, minute=59, second=59, microsecond=999999)
    moment = moment.replace(tzinfo=SITE_TZ) if moment.tzinfo is None else moment
    moment = moment.astimezone(UTC)
    if not EARLIEST <= moment < LATEST:
        raise BadRequest(f"parameter {name} is outside [{EARLIEST:%Y-%m-%d}, {LATEST:%Y-%m-%d})")
    return moment


def parse_limit(params: dict, default: int = DEFAULT_LIMIT, most: int = MAX_LIMIT) -> int:
    text = params.get("limit")
    if text is None:
        return default
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= most:
        raise BadRequest(f"parameter limit must be a whole number from 1 to {most}")
    return int(text)


def encode_cursor(*values) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(text: str, arity: int = 2) -> list:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        values = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise BadRequest("parameter cursor is not a cursor this API gave") from None
    if not isinstance(values, list) or len(values) != arity or not all(isinstance(v, str) for v in values):
        raise BadRequest("parameter cursor is not a cursor this API gave")
    return values


def text_filter(text: str) -> dict:
    """Title or body holding ``text`` (any script; ASCII letters in any case)."""
    if len(text) > MAX_TEXT:
        raise BadRequest(f"parameter q is longer than {MAX_TEXT} characters")
    if not text.strip():
        raise BadRequest("parameter q is empty")
    pattern = re.escape(text.strip())
    return {"$or": [{"title": {"$regex": pattern, "$options": "i"}},
                    {"body_text": {"$regex": pattern, "$options": "i"}}]}


def posts_query(params: dict) -> dict:
    """The MongoDB filter of ``/api/posts``'s parameters (already parsed)."""
    clauses = []
    for name in ("category", "media", "kind"):
        if name in params:
            clauses.append({name: params[name]})
    when = {}
    if "since" in params:
        when["$gte"] = parse_time("since", params["since"])
    if "until" in params:
        when["$lte"] = parse_time("until", params["until"], end=True)
    if when:
        clauses.append({"published_at": when})
    if "q" in params:
        clauses.append(text_filter(params["q"]))
    if "cursor" in params:
        stamp, code = decode_cursor(params["cursor"])
        if not _CODE.fullmatch(code):
            raise BadRequest("parameter cursor is not a cursor this API gave")
        moment = parse_time("cursor", stamp)
        clauses.append({"$or": [{"published_at": {"$lt": moment}}, {"published_at": moment, "_id": {"$lt": code}}]})
    return {"$and": clauses} if clauses else {}


POSTS_PARAMS = ("category", "media", "kind", "since", "until", "q", "limit", "cursor")


class Api:
    """Answers ``/api/...`` paths: ``(status, document)``."""

    def __init__(self, db, page_of=None):
        self.db = db
        self.page_of = page_of or (lambda post: None)  # the served page of a stored post

    def answer(self, path: str, query: str) -> tuple[int, dict]:
        try:
            return 200, self._route(path, query)
        except BadRequest as error:
            return 400, {"error": str(error)}
        except NotFound as error:
            return 404, {"error": str(error) or "not found"}

    def _route(self, path: str, query: str) -> dict:
        if path == "/api/posts":
            return self.posts(parse_query(query, POSTS_PARAMS))
        if path.startswith("/api/posts/"):
            parse_query(query, ())
            return self.post(path[len("/api/posts/"):])
        if path == "/api/categories":
            parse_query(query, ())
            return self.categories()
        if path == "/api/runs":
            return self.runs(parse_query(query, ("limit",)))
        if path == "/api/rejects":
            return self.rejects(parse_query(query, ("reason", "spider", "limit", "cursor")))
        if path == "/api/changes":
            return self.changes(parse_query(query, ("after", "limit")))
        if path == "/api/openapi.json":
            return openapi()
        raise NotFound(f"no such endpoint: {path[:80]}")

    def posts(self, params: dict) -> dict:
        limit = parse_limit(params)
        query = posts_query(params)
        projection = dict.fromkeys(LIST_FIELDS, 1)
        found = list(self.db[POSTS].find(query, projection).sort([("published_at", -1), ("_id", -1)])
                     .limit(limit + 1))
        more = len(found) > limit
        found = found[:limit]
        cursor = encode_cursor(_iso(found[-1]["published_at"]), found[-1]["_id"]) if more else None
        return {"posts": [self._post(doc, LIST_FIELDS) for doc in found], "next": cursor}

    def post(self, code: str) -> dict:
        from urllib.parse import unquote

        text = unquote(code)
        if len(text) > MAX_VALUE:
            raise BadRequest("not an infoCode")
        canonical = normalize_info_code(text)
        if not canonical:
            raise BadRequest(f"not an infoCode: {_shown(text)} (NW + 18 digits, or the 18-digit rolling id)")
        doc = self.db[POSTS].find_one({"_id": canonical}, dict.fromkeys(LIST_FIELDS + BODY_FIELDS, 1))
        if doc is None:
            raise NotFound(f"no post {canonical}")
        return self._post(doc, LIST_FIELDS + BODY_FIELDS)

    def _post(self, doc: dict, fields) -> dict:
        out = {name: _json(doc[name]) for name in fields if name in doc}
        out["page"] = self.page_of(doc)
        return out

    def categories(self) -> dict:
        pipeline = [{"$group": {"_id": "$category", "posts": {"$sum": 1}, "newest": {"$max": "$published_at"},
                                "media": {"$addToSet": "$media"}}}, {"$sort": {"_id": 1}}]
        rows = []
        for row in self.db[POSTS].aggregate(pipeline):
            rows.append({"category": row["_id"], "posts": row["posts"], "newest": _json(row.get("newest")),
                         "media": sorted(m for m in row.get("media") or [] if isinstance(m, str)),
                         "feed": f"/feed/{row['_id']}.xml"})
        return {"categories": rows}

    def runs(self, params: dict) -> dict:
        limit = parse_limit(params, 20, 100)
        docs = self.db[CRAWL_RUNS].find({}, dict.fromkeys(RUN_FIELDS, 1)).sort("started_at", -1).limit(limit)
        return {"runs": [run_summary(doc) for doc in docs]}

    def changes(self, params: dict) -> dict:
        """The change log after a position (``finews.storage.changes``):
        every insert and revision once, in order; ``next`` is the position to
        ask after next time (the same when nothing new is settled yet)."""
        text = params.get("after", "0")
        if not text.isascii() or not text.isdigit() or len(text) > 18:
            raise BadRequest("parameter after must be a position: 0 or a whole number the API gave")
        changes, position = ChangeLog(self.db).read(int(text), parse_limit(params, 200, 1000))
        return {"changes": [{**change, "at": _json(change["at"])} for change in changes], "next": position}

    def rejects(self, params: dict) -> dict:
        from bson import ObjectId

        limit = parse_limit(params)
        query = {name: params[name] for name in ("reason", "spider") if name in params}
        if "cursor" in params:
            (last,) = decode_cursor(params["cursor"], 1)
            if not _OBJECT_ID.fullmatch(last):
                raise BadRequest("parameter cursor is not a cursor this API gave")
            query["_id"] = {"$lt": ObjectId(last)}
        found = list(self.db[REJECTS].find(query).sort("_id", -1).limit(limit + 1))
        more = len(found) > limit
        found = found[:limit]
        return {"rejects": [{name: _json(doc[name]) for name in REJECT_FIELDS if name in doc} for doc in found],
                "next": encode_cursor(str(found[-1]["_id"])) if more else None}


def run_summary(doc: dict) -> dict:
    """A run as the API and the dashboard show it, with its pages per second."""
    out = {("id" if name == "_id" else name): _json(doc[name]) for name in RUN_FIELDS if name in doc}
    started, ended = doc.get("started_at"), doc.get("ended_at")
    rate = None
    if isinstance(started, datetime) and isinstance(ended, datetime) and doc.get("pages_attempted"):
        seconds = (ended - started).total_seconds()
        rate = round(doc["pages_attempted"] / seconds, 2) if seconds > 0 else None
    out["pages_per_second"] = rate
    return out


def _iso(moment: datetime) -> str:
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _json(value):
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def openapi() -> dict:
    """The OpenAPI 3.1 description served at ``/api/openapi.json``."""
    text = {"type": "string", "maxLength": MAX_VALUE}
    error = {"description": "a bad parameter: one line", "content": {"application/json": {"schema": {
        "type": "object", "properties": {"error": {"type": "string"}}}}}}

    def param(name, description, schema=None):
        return {"name": name, "in": "query", "required": False, "description": description, "schema": schema or text}

    limit = param("limit", f"items per page (1–{MAX_LIMIT}, default {DEFAULT_LIMIT})",
                  {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT})
    cursor = param("cursor", "the `next` value of the previous page (opaque)")
    post = {"type": "object", "properties": {name: {} for name in LIST_FIELDS + BODY_FIELDS + ("page",)}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "finews", "version": "1",
                 "description": "Read-only access to the stored posts (docs/schema.md), runs and rejects. "
                                "Unknown, repeated or over-long parameters answer 400."},
        "paths": {
            "/api/posts": {"get": {
                "summary": "posts, newest first (published_at, then infoCode), cursor-paginated",
                "parameters": [param("category", "category slug, e.g. hebeiribao"),
                               param("media", "media name, e.g. 河北日报"),
                               param("kind", "media or rolling"),
                               param("since", "ISO 8601 date or time (Asia/Shanghai unless it has an offset)"),
                               param("until", "ISO 8601 date (the whole day) or time"),
                               param("q", f"text in the title or body, any script (at most {MAX_TEXT} characters)",
                                     {"type": "string", "maxLength": MAX_TEXT}),
                               limit, cursor],
                "responses": {"200": {"description": "a page of posts; `next` is null on the last page",
                                      "content": {"application/json": {"schema": {"type": "object", "properties": {
                                          "posts": {"type": "array", "items": post},
                                          "next": {"type": ["string", "null"]}}}}}},
                              "400": error}}},
            "/api/posts/{code}": {"get": {
                "summary": "one post with its body",
                "parameters": [{"name": "code", "in": "path", "required": True,
                                "description": "NW + 18 digits, the 18-digit rolling id, any letter case",
                                "schema": {"type": "string"}}],
                "responses": {"200": {"description": "the post", "content": {"application/json": {"schema": post}}},
                              "400": error, "404": {"description": "no such post"}}}},
            "/api/categories": {"get": {"summary": "categories: posts, newest post, media, feed",
                                        "responses": {"200": {"description": "categories"}}}},
            "/api/runs": {"get": {"summary": "recent crawl runs, newest first, with pages per second",
                                  "parameters": [param("limit", "runs (1–100, default 20)",
                                                       {"type": "integer", "minimum": 1, "maximum": 100})],
                                  "responses": {"200": {"description": "runs"}, "400": error}}},
            "/api/changes": {"get": {
                "summary": "every insert and revision of a post after a position, in order, each once "
                           "(docs/schema.md, the change log)",
                "parameters": [param("after", "the last position handled (default 0: from the first)",
                                     {"type": "integer", "minimum": 0}),
                               param("limit", "changes read at most (1–1000, default 200)",
                                     {"type": "integer", "minimum": 1, "maximum": 1000})],
                "responses": {"200": {"description": "changes (position, info_code, version, op, at) and `next`, "
                                                     "the position to ask after next time"}, "400": error}}},
            "/api/rejects": {"get": {"summary": "rejected pages, newest first, cursor-paginated",
                                     "parameters": [param("reason", "a reason of docs/schema.md"),
                                                    param("spider", "category, newsshare or newslist"),
                                                    limit, cursor],
                                     "responses": {"200": {"description": "rejects"}, "400": error}}},
        },
    }
