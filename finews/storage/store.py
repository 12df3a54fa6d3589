"""Store posts and rejects in MongoDB.

``PostStore`` is the storage logic, usable without Scrapy: bulk upserts keyed
on the infoCode (``_id``), revisions kept in ``post_versions``, transient
errors retried with tenacity. ``Spool`` keeps batches that cannot be written
in files and replays them later. The Scrapy pipeline (``pipelines/mongo.py``)
buffers items into batches and hands them to the store.

A document that cannot be stored (over the size limit, refused by the
validator) becomes a reject; it never makes its batch look like an outage.
Each batch keeps a source before its posts and a journal entry until they are
signed, so a writer killed mid-batch leaves nothing a later start cannot finish.
"""

from __future__ import annotations

import functools
import itertools
import logging
import os
import socket
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import ParamSpec, TypeVar, overload

import bson
import numpy as np
from bson import ObjectId, json_util
from bson.errors import BSONError
from pymongo import UpdateOne
from pymongo.errors import BulkWriteError, ConnectionFailure, PyMongoError
from pymongo.results import UpdateResult
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from finews.core.dates import in_range
from finews.core.model import current
from finews.core.normalize import KIND_RANK
from finews.core.reasons import Reason
from finews.core.retry import DATABASE
from finews.storage.changes import INSERT, REVISE, ChangeLog
from finews.storage.db import (
    CRAWL_RUNS,
    DUPLICATE_KEY,
    POST_VERSIONS,
    POSTS,
    RAW_ARTICLES,
    REJECTS,
    WRITE_JOURNAL,
    insert_new,
    is_auth_failure,
    is_outage,
)
from finews.storage.doctypes import Db, Doc
from finews.storage.neardup import NearDuplicateIndex
from finews.storage.process import alive
from finews.storage.sources import (  # feed sources (issue 10)
    PAYLOAD_FIELD,
    SOURCES_FIELD,
    kept_text,
    post_fields,
    prefer_stored,
    record,
    split_batch,
    unset_omitted,
)

P = ParamSpec("P")
T = TypeVar("T")
logger = logging.getLogger(__name__)

RAW_FIELD = "raw_article"  # travels with a post to the store, kept apart from it
# Fields a revision replaces; identity and bookkeeping fields are never $set.
_KEEP_ON_UPDATE = {"_id", "version", "first_seen_at"}
# MongoDB refuses documents over 16 MiB; a post must also leave room for its
# near-duplicate list and for the old text a revision copies.
MAX_DOCUMENT_BYTES = 12 * 1024 * 1024
MAX_REJECT_FIELD = 2000  # characters of a reject's text fields kept
JOURNAL_STALE_SECONDS = 3600  # a journal entry from another host this old is abandoned
STORED_OUTCOMES = ("inserted", "updated")
WRITTEN_OUTCOMES = ("inserted", "updated", "unchanged", "twin_kept", "revise_conflicts")


def utcnow() -> datetime:
    # Mongo stores milliseconds; trimming here keeps in-memory and stored equal.
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


_APART = (RAW_FIELD, PAYLOAD_FIELD, SOURCES_FIELD)  # travel with a post, stored elsewhere


def document_size(doc: Doc) -> int:
    """Bytes of the post as stored (its kept source and text answer travel
    with it but go to ``raw_articles``)."""
    return len(bson.encode({k: v for k, v in doc.items() if k not in _APART}))


def oversize_detail(doc: Doc, size: int, limit: int) -> str:
    return (f"post document {size} bytes over the {limit}-byte limit "
            f"(body_html {len(doc.get('body_html') or '')} characters, "
            f"body_text {len(doc.get('body_text') or '')} characters)")


def is_transient(exc: BaseException) -> bool:
    """Errors worth retrying: lost connections, elections, and upsert races."""
    if isinstance(exc, ConnectionFailure):
        return True
    if isinstance(exc, BulkWriteError):
        errors = exc.details.get("writeErrors", [])
        return bool(errors) and all(e.get("code") == DUPLICATE_KEY for e in errors)
    if isinstance(exc, PyMongoError):
        return exc.has_error_label("RetryableWriteError") or exc.has_error_label("TransientTransactionError")
    return False


class PostStore:
    """Writes normalized posts and rejects; counts what each write did."""

    def __init__(self, db: Db, retry_attempts: int = DATABASE.attempts, retry_max_wait: float = DATABASE.max_wait,
                 near_duplicates: bool = True,
                 max_document_bytes: int = MAX_DOCUMENT_BYTES,
                 sign: Callable[[list[str]], list[np.ndarray | None]] | None = None):
        self.db = db
        self.posts, self.rejects, self.versions = db[POSTS], db[REJECTS], db[POST_VERSIONS]
        self.journal = db[WRITE_JOURNAL]
        self._retrying = Retrying(
            retry=retry_if_exception(is_transient),
            stop=stop_after_attempt(retry_attempts),
            wait=wait_exponential(multiplier=DATABASE.first_wait, max=retry_max_wait),
            before_sleep=self._log_retry,
            reraise=True,
        )
        self.single_attempt = False  # probing a database marked down: fail fast
        self.refused: list[Doc] = []  # rejects made from posts the server refused, per batch
        self.retries = 0
        # ``sign``: texts -> signatures, e.g. a ``SigningProcess``; default, in this process.
        self.near_duplicates = NearDuplicateIndex(db, sign=sign) if near_duplicates else None
        self.max_document_bytes = max_document_bytes
        self.host, self.pid = socket.gethostname(), os.getpid()
        # Codes this store inserted in a batch that failed afterwards (a later
        # write of the batch hit an outage): when the batch is written again,
        # they count as inserted, not as unchanged re-fetches.
        self.unfinished: set[str] = set()
        self.owner = f"{self.host}:{self.pid}:{ObjectId()}"
        # Every insert and revision gets a position followers read in order.
        self.changes = ChangeLog(db, owner=self.owner)

    def _log_retry(self, state: RetryCallState) -> None:
        self.retries += 1
        error = state.outcome.exception() if state.outcome else None
        logger.warning("Database write failed (%s), retry %d", error, state.attempt_number)

    def _call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        if self.single_attempt:
            return fn(*args, **kwargs)
        return self._retrying(fn, *args, **kwargs)

    def write_batch(self, posts: list[Doc], rejects: list[Doc]) -> tuple[Counter[str], list[Doc]]:
        """Write a batch of posts and rejects; returns the posts' counts and
        the rejects made here from posts the database cannot take.

        Posts over ``max_document_bytes`` become ``too_large`` rejects before
        any write, posts with a time outside the stored range
        ``date_out_of_range`` ones. A write the server refuses for a
        document's sake is retried post by post, and the posts it still
        refuses become ``write_refused`` rejects; a post whose write raises
        anything else (text that is not valid Unicode, a bug) becomes an
        ``item_error`` reject. Only an outage (or a refusal of the crawl
        itself) is raised: one post never costs its batch.
        """
        fits, refused = [], []
        self.refused = []
        for doc in posts:
            try:
                problem = self._unfit(doc)
            except Exception as error:  # whatever it is, it is this post's
                problem = Reason.ITEM_ERROR, brief_error(error)
            if problem:
                refused.append(_store_reject(doc, *problem))
            else:
                fits.append(doc)
        try:
            counts = self.write_posts(fits)
        except Exception as error:  # an outage is raised again below
            if _outage(error):
                raise
            logger.warning("Writing a batch of %d posts failed (%s); writing them one by one", len(fits),
                           brief_error(error))
            self.refused, counts = [], Counter()
            for doc in fits:
                try:
                    counts.update(self.write_posts([doc]))
                except Exception as one:  # an outage is raised again
                    if _outage(one):
                        raise
                    reason = Reason.WRITE_REFUSED if isinstance(one, (PyMongoError, BSONError)) else Reason.ITEM_ERROR
                    refused.append(_store_reject(doc, reason, brief_error(one)))
            counts.update(self.repair(own_only=True))
        refused += self.refused
        for reject in refused:
            logger.warning("Rejected %s: %s", reject["url"], reject["detail"])
        self.write_rejects([*rejects, *refused])
        return counts, refused

    def _unfit(self, doc: Doc) -> tuple[str, str] | None:
        """Why a post cannot be stored before any write, if it cannot."""
        size = document_size(doc)
        if size > self.max_document_bytes:
            return Reason.TOO_LARGE, oversize_detail(doc, size, self.max_document_bytes)
        published = doc.get("published_at")
        if isinstance(published, datetime) and published.tzinfo is None:
            published = published.replace(tzinfo=UTC)  # as MongoDB and a spooled batch read back
        if isinstance(published, datetime) and not in_range(published):
            return Reason.DATE_OUT_OF_RANGE, f"published_at {published.isoformat()} is outside the stored range"
        return None

    def write_posts(self, docs: list[Doc]) -> Counter[str]:
        """Store a batch as the pipeline builds it (``finews.storage.sources``):
        better-sourced stored values win (``prefer_stored``), posts are
        written at the current ``schema_version``, then what the posts did not
        carry is recorded: sources, feed items, text answers, page words."""
        posts, listings, extras = split_batch(docs)
        if posts:
            self._call(prefer_stored, self.db, posts)
        posts = [current(post_fields(doc)) for doc in posts]
        counts = self._write_posts(posts, extras)
        left = [extra | {"code": code} for code, extra in extras.items() if extra]
        if listings or left:
            counts.update(self._call(record, self.db, left, listings, self._revise))
        self.unfinished.difference_update(doc["info_code"] for doc in posts)  # the whole batch is written
        return +counts

    def _write_posts(self, docs: list[Doc], extras: dict[str, Doc]) -> Counter[str]:
        """Store posts by infoCode. New posts are inserted, unchanged ones
        only get ``crawled_at``, changed ones become a new version.

        ``extras`` (by code: the sources that saw the post, its text answer)
        are written here where it costs no extra write: a new post is
        inserted with its sources, a text answer goes with the kept source.
        What is written is removed from ``extras``; the caller records the rest.
        """
        counts: Counter[str] = Counter()
        if not docs:
            return counts
        now = utcnow()
        batch: dict[str, Doc] = {}
        raw: dict[str, str] = {}
        for doc in docs:
            code = doc["info_code"]
            if code not in batch or _rank(doc) >= _rank(batch[code]):
                batch[code] = {k: v for k, v in doc.items() if k not in _APART}
                raw[code] = doc.get(RAW_FIELD) or ""
        existing = {
            old["_id"]: old
            for old in self._call(
                lambda: list(self.posts.find({"_id": {"$in": list(batch)}}, {"content_hash": 1, "kind": 1}))
            )
        }
        fresh, touched, changed, resumed = [], [], [], []
        for code, doc in batch.items():
            old = existing.get(code)
            if old is None:
                fresh.append(doc)
            elif code in self.unfinished and old.get("content_hash") == doc["content_hash"]:
                resumed.append(doc)
            elif old.get("content_hash") == doc["content_hash"] or _rank(old) > _rank(doc):
                counts["unchanged" if old.get("content_hash") == doc["content_hash"] else "twin_kept"] += 1
                touched.append(code)
            else:
                changed.append(doc)
        # Source first, then posts, then signatures; the journal entry stays
        # until the last step, so a writer killed between them is finished
        # by ``repair`` on the next start.
        # Without flagging there is nothing to sign, so no journal entry.
        writing = [doc["info_code"] for doc in [*fresh, *changed, *resumed]]
        entry = self._call(self._begin, writing, now) if writing and self.near_duplicates else None
        kept = {code: (raw.get(code) or "", extras.get(code, {}).get(PAYLOAD_FIELD)) for code in writing}
        kept = {code: texts for code, texts in kept.items() if any(texts)}
        if kept:
            counts.update(self._call(self._keep_raw, kept, {doc["info_code"] for doc in fresh}, now))
            for code in kept:
                extras.get(code, {}).pop(PAYLOAD_FIELD, None)
        seen_by = {code: sorted(extra[SOURCES_FIELD]) for code, extra in extras.items() if extra.get(SOURCES_FIELD)}
        inserted, raced = self._call(self._insert, fresh, now, seen_by)
        self.unfinished.update(doc["info_code"] for doc in inserted)
        inserted += resumed
        for doc in inserted:
            extras.get(doc["info_code"], {}).pop(SOURCES_FIELD, None)
        counts["inserted"] += len(inserted)
        changed += raced  # stored by another crawler meanwhile: compare like any re-fetch
        if touched:
            self._call(self.posts.update_many, {"_id": {"$in": touched}}, {"$set": {"crawled_at": now}})
        revised = []
        for doc in changed:
            outcome = self._call(self._revise, doc, now)
            counts[outcome] += 1
            if outcome == "updated":
                revised.append(doc)
            elif outcome == "inserted":
                inserted.append(doc)
        if self.near_duplicates:
            counts["near_duplicate_pairs"] += self._call(self.near_duplicates.flag, inserted, revised)
        if entry is not None:
            self._call(self.journal.delete_one, {"_id": entry})
        return +counts  # drop zero counts

    def _begin(self, codes: list[str], now: datetime) -> ObjectId:
        entry = ObjectId()
        self.journal.insert_one({"_id": entry, "owner": self.owner, "host": self.host, "pid": self.pid,
                                 "codes": codes, "started_at": now})
        return entry

    def repair(self, own_only: bool = False) -> Counter[str]:
        """Sign the posts of batches whose writer stopped before it finished
        (killed, or a write refused mid-batch): journal entries of this store,
        of dead processes on this host, or older than an hour from elsewhere.
        Signing again is idempotent, so a batch finished twice is harmless."""
        counts: Counter[str] = Counter()
        now = utcnow()
        entries = self._call(lambda: list(self.journal.find({"owner": self.owner} if own_only else {})))
        for entry in entries:
            if not own_only and not self._abandoned(entry, now):
                continue
            docs = self._call(self._batch_posts, entry.get("codes", []))
            if docs and self.near_duplicates:
                counts["near_duplicate_pairs"] += self._call(self.near_duplicates.flag, [], docs)
            counts["repaired"] += len(docs)
            self._call(self.journal.delete_one, {"_id": entry["_id"]})
        if counts["repaired"] and not own_only:
            logger.warning("Finished %d posts of batches left unsigned by a stopped writer", counts["repaired"])
        counts["changes_settled"] += self._call(self.changes.resolve, own_only)
        return +counts

    def _batch_posts(self, codes: list[str]) -> list[Doc]:
        return list(self.posts.find({"_id": {"$in": codes}}, {"info_code": 1, "body_text": 1}))

    def _abandoned(self, entry: Doc, now: datetime) -> bool:
        if entry.get("owner") == self.owner:
            return True
        if entry.get("host") == self.host:
            return not alive(entry.get("pid"))
        started = entry.get("started_at") or now
        started = started if started.tzinfo else started.replace(tzinfo=UTC)
        return (now - started).total_seconds() > JOURNAL_STALE_SECONDS

    def write_run(self, record: Doc) -> None:
        """A run record kept in the spool while the database was away."""
        fields = {k: v for k, v in record.items() if k != "_id"}
        self._call(self.db[CRAWL_RUNS].update_one, {"_id": record["_id"]}, {"$set": fields}, upsert=True)

    def _keep_raw(self, articles: dict[str, tuple[str, str | None]], new: set[str], now: datetime) -> Counter[str]:
        """The article source of each stored post (and a feed post's text
        answer), compressed, for export and for reprocessing after the
        cleaner improves. New posts' sources are inserted in one bulk write;
        one already there (a replayed batch) or of a revised post is updated.
        A text over ``MAX_KEPT_BYTES`` compressed is left out and flagged."""
        counts: Counter[str] = Counter()
        docs: dict[str, Doc] = {}
        for code, (text, payload) in articles.items():
            fields: Doc = {}
            for name, value in (("raw", text), ("payload", payload)):
                if value:
                    fields |= kept_text(code, name, value, counts)
            if "raw" in fields or "raw_omitted" in fields:
                fields |= {"encoding": "zlib+utf-8", "stored_at": now}
            if "payload" in fields or "payload_omitted" in fields:
                fields["payload_at"] = now
            docs[code] = fields
        rows: list[Doc] = [{"_id": code, **fields} for code, fields in docs.items() if code in new]
        there = [rows[i]["_id"] for i in insert_new(self.db[RAW_ARTICLES], rows)] if rows else []
        updates = [code for code in docs if code not in new] + there
        if updates:
            self.db[RAW_ARTICLES].bulk_write([
                UpdateOne({"_id": code}, {"$set": docs[code]} | unset_omitted(docs[code]), upsert=True)
                for code in updates], ordered=False)
        return counts

    def _insert(self, docs: list[Doc], now: datetime,
                seen_by: dict[str, list[str]] | None = None) -> tuple[list[Doc], list[Doc]]:
        """Insert new posts (with the sources that saw them); a duplicate key
        means another crawler stored the post first (or a retried batch
        already did), which is not an error. A post the server refuses (too
        large, invalid) goes to ``refused``."""
        seen_by = seen_by or {}
        # A post loaded from a dump (``finews import``) keeps its own bookkeeping.
        rows = [{"version": 1, "first_seen_at": now, "crawled_at": now, **doc, "_id": doc["info_code"]}
                | ({"sources": seen_by[doc["info_code"]]} if doc["info_code"] in seen_by else {}) for doc in docs]
        refused: dict[int, str] = {}
        lost = self.changes.record(
            [(row["_id"], row["version"], INSERT) for row in rows],
            lambda: insert_new(self.posts, rows, refused),
            lambda lost: {row["_id"]: row["version"] for i, row in enumerate(rows)
                          if i not in lost and i not in refused})
        self.refused += [_store_reject(docs[i], Reason.WRITE_REFUSED, message) for i, message in refused.items()]
        return ([d for i, d in enumerate(docs) if i not in lost and i not in refused],
                [d for i, d in enumerate(docs) if i in lost])

    def _revise(self, doc: Doc, now: datetime, attempts: int = DATABASE.revise_attempts) -> str:
        """Replace a changed post atomically, keeping the old text as a version.

        The update only applies if the stored hash and version are still the
        ones read, so two crawlers revising at once lose no revision.
        """
        code = doc["info_code"]
        fields = {k: v for k, v in doc.items() if k not in _KEEP_ON_UPDATE}
        for _ in range(attempts):
            old = self.posts.find_one({"_id": code},
                                      {"content_hash": 1, "version": 1, "title": 1, "body_html": 1, "kind": 1})
            if old is None:
                if self._insert([doc], now)[0]:
                    return "inserted"
                continue
            if old.get("content_hash") == doc["content_hash"]:
                return "unchanged"
            if _rank(old) > _rank(doc):
                return "twin_kept"
            version = old.get("version", 1)
            self.versions.update_one(
                {"info_code": code, "version": version},
                {"$setOnInsert": {"content_hash": old.get("content_hash"), "title": old.get("title"),
                                  "body_html": old.get("body_html"), "replaced_at": now}},
                upsert=True,
            )
            current = {"_id": code, "content_hash": old.get("content_hash"), "version": version}
            change = {"$set": {**fields, "updated_at": now, "crawled_at": now}, "$inc": {"version": 1}}
            result = self.changes.record(
                [(code, version + 1, REVISE)],
                functools.partial(self.posts.update_one, current, change),
                _modified({code: version + 1}))
            if result.modified_count:
                return "updated"
        logger.warning("Post %s kept changing under concurrent writers; this fetch is not kept", code)
        return "revise_conflicts"

    def write_rejects(self, rejects: list[Doc]) -> int:
        """Keep each rejected page once per (url, reason), counting sightings."""
        if not rejects:
            return 0
        now = utcnow()
        rejects = [{key: _text(value) for key, value in r.items()} for r in rejects]
        ops = [
            UpdateOne(
                {"url": r["url"], "reason": r["reason"]},
                {"$set": {k: _short(v) for k, v in r.items() if k not in ("url", "reason")} | {"last_seen_at": now},
                 "$setOnInsert": {"first_seen_at": now}, "$inc": {"count": 1}},
                upsert=True,
            )
            for r in rejects
        ]
        self._call(self.rejects.bulk_write, ops, ordered=False)
        return len(ops)


def brief_error(error: BaseException) -> str:
    """An error in one line of reasonable length (a refused write's message
    can hold the whole document)."""
    if isinstance(error, BulkWriteError):
        errors = error.details.get("writeErrors", [])
        text = "; ".join(f"code {e.get('code')}: {str(e.get('errmsg', ''))[:200]}" for e in errors[:3])
        return _text(" ".join(f"BulkWriteError: {text}".split()))
    return _text(" ".join(f"{type(error).__name__}: {str(error)[:300]}".split()))


def _outage(error: BaseException) -> bool:
    """Whether a write failed for the database's sake, not a post's."""
    return isinstance(error, (PyMongoError, BSONError)) and (is_outage(error) or is_auth_failure(error))


@overload
def _text(value: str) -> str: ...
@overload
def _text(value: T) -> T: ...
def _text(value: object) -> object:
    """A string any document can hold: lone surrogates (not Unicode, refused
    by BSON) written as ``\\udXXX``; anything else as it is."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


@overload
def _short(value: str) -> str: ...
@overload
def _short(value: T) -> T: ...
def _short(value: object) -> object:
    """A reject's text cut to a size any reject document can hold."""
    return value[:MAX_REJECT_FIELD] if isinstance(value, str) else value


def _modified(versions: dict[str, int]) -> Callable[[UpdateResult], dict[str, int]]:
    """For ``ChangeLog.record``: the versions a revision wrote, if it applied."""
    return lambda result: versions if result.modified_count else {}


def _store_reject(doc: Doc, reason: str, detail: str) -> Doc:
    return {"url": _text(doc.get("url") or ""), "reason": reason, "detail": _text(detail[:MAX_REJECT_FIELD]),
            "spider": None, "title": _text((doc.get("title") or "")[:MAX_REJECT_FIELD]),
            "raw_code": _text(doc.get("info_code") or "")}


def read_raw(doc: Doc | None) -> str | None:
    return zlib.decompress(doc["raw"]).decode("utf-8") if doc and doc.get("raw") else None


def _rank(doc: Doc) -> int:
    return KIND_RANK.get(doc.get("kind") or "", 0)


class Spool:
    """Files of batches the database would not take.

    Each line is one ``{"posts": [...], "rejects": [...]}`` batch, or one
    ``{"run": {...}}`` run record, in MongoDB extended JSON; writes are
    upserts, so replaying twice changes nothing. A line that cannot be
    replayed for its own sake is moved to ``quarantine/`` with the reason and
    replay goes on with the next one.

    A batch is written whole under a name replay does not take
    (``spool-<time>-<pid>-<n>.writing-<pid>``), synced, and only then renamed
    to ``….jsonl``: a replay running meanwhile (``finews replay``, another
    crawl's start) never reads a file still being written. A write that
    fails (a full disk) leaves nothing behind and raises ``OSError``.
    """

    _numbers = itertools.count()  # names stay unique within a nanosecond

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.quarantine = self.folder / "quarantine"

    def append(self, posts: list[Doc], rejects: list[Doc]) -> Path:
        return self._append({"posts": posts, "rejects": rejects})

    def append_run(self, record: Doc) -> Path:
        return self._append({"run": record})

    def _append(self, entry: Doc) -> Path:
        try:
            line = (json_util.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8")
        except UnicodeEncodeError:  # text that is not Unicode (a lone surrogate) is kept \u-escaped
            line = (json_util.dumps(entry, ensure_ascii=True) + "\n").encode("ascii")
        stem = f"spool-{time.time_ns()}-{os.getpid()}-{next(self._numbers)}"
        return self._publish(stem, [line])

    def _publish(self, stem: str, lines: Iterable[bytes]) -> Path:
        """Write ``lines`` to ``STEM.jsonl`` all at once, as far as a replay
        can see: a temporary name, synced, then renamed."""
        self.folder.mkdir(parents=True, exist_ok=True)
        writing = self.folder / f"{stem}.writing-{os.getpid()}"
        path = self.folder / f"{stem}.jsonl"
        try:
            with open(writing, "xb") as handle:
                for line in lines:
                    handle.write(line)
                handle.flush()
                os.fsync(handle.fileno())
            os.rename(writing, path)
        except BaseException:
            writing.unlink(missing_ok=True)  # nothing torn is left to replay
            raise
        _sync_folder(self.folder)
        return path

    def replay(self, store: PostStore) -> Counter[str]:
        """Write every spooled batch, deleting each file once it is stored.

        A file is claimed by renaming it, so exactly one process replays it;
        if the database fails again, the lines not yet written go back to the
        spool under the file's own name, and a file left half-replayed (or
        half-written) by a process that died is taken over. A line that is
        cut off or not UTF-8 is quarantined like any bad batch. Batches left
        unsigned by a killed writer are finished first (``PostStore.repair``).
        """
        counts: Counter[str] = Counter(store.repair())
        for path in self._claimable():
            stem = path.name.split(".")[0]
            claimed = self.folder / f"{stem}.replaying-{os.getpid()}"
            try:
                path.rename(claimed)
            except FileNotFoundError:
                continue  # another process took it
            with open(claimed, "rb") as handle:
                for number, raw in enumerate(handle, 1):
                    if not raw.strip():
                        continue
                    try:
                        self._replay_line(store, _batch(raw), counts)
                    except (PyMongoError, BSONError) as error:
                        if not _outage(error):
                            self._quarantine(claimed, number, raw, brief_error(error), counts)
                            continue
                        self._publish(stem, itertools.chain([raw if raw.endswith(b"\n") else raw + b"\n"], handle))
                        claimed.unlink()
                        raise
                    except Exception as error:  # a damaged line or a bug: this batch only
                        self._quarantine(claimed, number, raw, brief_error(error), counts)
            claimed.unlink()  # not synced: a file back after a crash is replayed again, which changes nothing
        return +counts

    @staticmethod
    def _replay_line(store: PostStore, batch: Doc, counts: Counter[str]) -> None:
        if "run" in batch:
            store.write_run(batch["run"])
            counts["runs"] += 1
            return
        posts, rejects = batch.get("posts", []), batch.get("rejects", [])
        for number, doc in enumerate(posts, 1):  # a damaged line, not a post the store can reject
            if not isinstance(doc, dict) or "info_code" not in doc:
                raise KeyError(f"info_code: entry {number} of the batch is not a post")
        written, refused = store.write_batch(posts, rejects)
        counts.update(written)
        counts["rejects"] += len(rejects) + len(refused)
        for reject in refused:
            counts[f"rejected/{reject['reason']}"] += 1

    def _quarantine(self, source: Path, number: int, raw: bytes, reason: str, counts: Counter[str]) -> None:
        self.quarantine.mkdir(parents=True, exist_ok=True)
        path = self.quarantine / f"{source.name.split('.')[0]}.jsonl"
        line = raw.decode("utf-8", "backslashreplace").rstrip("\n")
        with open(path, "a", encoding="ascii") as handle:
            handle.write(json_util.dumps({"reason": reason[:MAX_REJECT_FIELD], "quarantined_at": utcnow(),
                                          "source": source.name, "line": number, "batch": line},
                                         ensure_ascii=True) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        counts["quarantined"] += 1
        logger.error("Spooled batch %s:%d quarantined to %s (%s); replay goes on", source.name, number, path,
                     reason[:300])

    def _claimable(self) -> list[Path]:
        """Spooled files, and those a dead process left mid-replay or
        mid-write, oldest first (names start with the time of the write)."""
        if not self.folder.is_dir():
            return []
        paths = list(self.folder.glob("spool-*.jsonl"))
        for pattern in ("spool-*.replaying-*", "spool-*.writing-*"):
            for path in self.folder.glob(pattern):
                pid = path.name.rsplit("-", 1)[-1]
                if pid.isdigit() and not alive(int(pid)):
                    paths.append(path)
        return sorted(paths, key=lambda path: path.name)


def _batch(raw: bytes) -> Doc:
    """One spooled line read back; ``ValueError`` saying what is wrong with it."""
    try:
        batch = json_util.loads(raw.decode("utf-8"))
    except ValueError as error:  # not UTF-8, not JSON
        if not raw.endswith(b"\n"):
            raise ValueError(f"line cut off after {len(raw)} bytes, a write that did not finish "
                             f"({brief_error(error)})") from None
        raise
    if not isinstance(batch, dict):
        raise ValueError(f"not a batch but {type(batch).__name__}")
    return batch


def _sync_folder(folder: Path) -> None:
    """Make a rename or removal in ``folder`` survive a crash of the machine."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError as error:
        logger.warning("Could not sync folder %s (%s)", folder, error)
    finally:
        os.close(descriptor)
