"""The change log: one monotonic sequence over every write of a post.

A program that follows the archive (``finews follow``, ``/api/changes``)
cannot poll ``posts`` by a time field: a post written late (a spool replay, a
slow writer, a second crawler) would be missed, a revised one seen twice. So
every insert or revision of a post gets a *position*, and a follower reads
positions in order, each once.

Positions are handed out by one counter (``counters``, ``_id: "changes"``,
``$inc``), so two writers never share one; but a writer that took position 7
may finish after one that took 8. Each position therefore gets a marker in
``changes`` **before** the post is written (``state: "pending"``) and is
settled after it (``"done"`` with the version written, or ``"void"`` when
nothing was written: an insert another crawler won, a revision that lost its
race). A follower stops at the first position that is pending or has no
marker yet, so it never steps over a change that is still being written.

A writer killed between the two steps leaves pending markers (or a position
with no marker at all); ``resolve`` settles them from what the database holds
(the post at that version exists: done, once; else void). Every store runs it
when it starts and after a failed batch, so a follower waits at most until the
next crawl. Filling a missing marker with ``void`` is safe at any time: the
marker's ``_id`` is the position, so a writer that arrives late gets a
duplicate key and takes a new position instead.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, IndexModel, ReturnDocument, UpdateOne
from pymongo.collection import Collection
from pymongo.errors import BulkWriteError, DuplicateKeyError

from finews.storage.doctypes import Db, Doc
from finews.storage.process import alive

logger = logging.getLogger(__name__)

CHANGES = "changes"
COUNTERS = "counters"
SEQUENCE = "changes"  # the counter's _id
PENDING, DONE, VOID = "pending", "done", "void"
INSERT, REVISE = "insert", "revise"
DUPLICATE_KEY = 11000
STALE_SECONDS = 3600  # a pending marker from another host this old is abandoned
INDEXES = [
    IndexModel([("code", ASCENDING), ("version", ASCENDING)], name="code_version"),
    IndexModel([("state", ASCENDING)], name="state"),
]

Entry = tuple[str, int, str]  # (infoCode, version to be written, INSERT or REVISE)


def _now() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class ChangeLog:
    """Positions for one writer (``owner``) and reads for any follower."""

    def __init__(self, db: Db, owner: str | None = None) -> None:
        self.db = db
        self.changes: Collection[Doc] = db[CHANGES]
        self.counters: Collection[Doc] = db[COUNTERS]
        self.host, self.pid = socket.gethostname(), os.getpid()
        self.owner = owner or f"{self.host}:{self.pid}:{ObjectId()}"

    def ensure_indexes(self) -> None:
        self.changes.create_indexes(INDEXES)

    def last_position(self) -> int:
        """The newest position handed out (0 before the first write)."""
        counter = self.counters.find_one({"_id": SEQUENCE})
        return int(counter["seq"]) if counter else 0

    # -- writers --------------------------------------------------------------

    def _reserve(self, count: int) -> list[int]:
        while True:
            counter = self.counters.find_one_and_update(
                {"_id": SEQUENCE}, {"$inc": {"seq": count}}, return_document=ReturnDocument.AFTER)
            if counter is not None:
                break
            with contextlib.suppress(DuplicateKeyError):  # the first write ever; two writers may both try
                self.counters.update_one({"_id": SEQUENCE}, {"$setOnInsert": {"seq": 0}}, upsert=True)
        last = int(counter["seq"])
        return list(range(last - count + 1, last + 1))

    def open(self, entries: list[Entry]) -> list[int]:
        """Pending markers for writes about to happen; their positions, in
        the order of ``entries``."""
        if not entries:
            return []
        now, positions = _now(), [0] * len(entries)
        waiting = list(range(len(entries)))
        while waiting:
            seqs = self._reserve(len(waiting))
            rows: list[Doc] = [{"_id": seq, "code": entries[i][0], "version": entries[i][1], "op": entries[i][2],
                     "state": PENDING, "owner": self.owner, "host": self.host, "pid": self.pid, "at": now}
                    for seq, i in zip(seqs, waiting, strict=True)]
            taken = _insert_all(self.changes, rows)  # a position voided meanwhile: take another
            for seq, i in zip(seqs, waiting, strict=True):
                if seq not in taken:
                    positions[i] = seq
            waiting = [i for seq, i in zip(seqs, waiting, strict=True) if seq in taken]
        return positions

    def settle(self, done: dict[int, int], void: Iterable[int]) -> None:
        """Positions whose write happened (position → version written) and
        those whose write did not."""
        now = _now()
        ops = [UpdateOne({"_id": seq, "state": PENDING}, {"$set": {"state": DONE, "version": version, "at": now}})
               for seq, version in done.items()]
        ops += [UpdateOne({"_id": seq, "state": PENDING}, {"$set": {"state": VOID, "at": now}}) for seq in void]
        if ops:
            self.changes.bulk_write(ops, ordered=False)

    def record(self, entries: list[Entry], write: Callable[[], Any],
               written: Callable[[Any], dict[str, int]]) -> Any:
        """Open markers for ``entries``, call ``write``, then settle each:
        ``written(result)`` maps the codes written to their versions. If
        ``write`` raises, the markers stay pending for ``resolve``."""
        positions = self.open(entries)
        result = write()
        versions = written(result)
        done = {seq: versions[code] for seq, (code, _, _) in zip(positions, entries, strict=True) if code in versions}
        self.settle(done, [seq for seq in positions if seq not in done])
        return result

    def resolve(self, own_only: bool = False) -> int:
        """Settle pending markers whose writer stopped (all of this writer's
        with ``own_only``) and give a void marker to positions handed out but
        never marked. Returns how many positions it settled."""
        settled = 0
        now = _now()
        for marker in self.changes.find({"state": PENDING}).sort("_id", ASCENDING):
            if marker.get("owner") != self.owner and (own_only or not self._abandoned(marker, now)):
                continue
            state = self._outcome(marker)
            if state is None:
                continue  # another writer's marker for the same version is still open
            result = self.changes.update_one({"_id": marker["_id"], "state": PENDING},
                                             {"$set": {"state": state, "at": now}})
            settled += result.modified_count
        if not own_only:
            settled += self._fill_gaps()
        if settled:
            logger.info("Change log: settled %d positions left by stopped writers", settled)
        return settled

    def _outcome(self, marker: Doc) -> str | None:
        """Whether a pending marker's write happened: the post reached that
        version and no other marker stands for it. None while another
        writer's marker for the same version is still pending."""
        code, version = marker["code"], marker["version"]
        others = {m["state"] for m in self.changes.find(
            {"code": code, "version": version, "_id": {"$ne": marker["_id"]}}, {"state": 1})}
        if DONE in others:
            return VOID
        if PENDING in others:
            return None
        post = self.db["posts"].find_one({"_id": code}, {"version": 1})
        stored = int(post.get("version", 1)) if post else 0
        if stored > version:  # revised again since: did this version exist?
            return DONE if self.db["post_versions"].find_one({"info_code": code, "version": version}) else VOID
        return DONE if stored == version else VOID

    def _abandoned(self, marker: Doc, now: datetime) -> bool:
        if marker.get("host") == self.host:
            return not alive(marker.get("pid"))
        at = marker.get("at") or now
        at = at if at.tzinfo else at.replace(tzinfo=UTC)
        return (now - at).total_seconds() > STALE_SECONDS

    def _fill_gaps(self) -> int:
        """Void markers for positions handed out but never marked (a writer
        killed between taking them and marking them)."""
        last = self.last_position()
        floor = self.counters.find_one({"_id": SEQUENCE + ".floor"})
        start = int(floor["seq"]) if floor else 0
        marked = {doc["_id"] for doc in self.changes.find({"_id": {"$gt": start, "$lte": last}}, {"_id": 1})}
        missing = [seq for seq in range(start + 1, last + 1) if seq not in marked]
        now = _now()
        filled = len(missing) - len(_insert_all(self.changes, [{"_id": seq, "state": VOID, "at": now}
                                                                for seq in missing])) if missing else 0
        pending = self.changes.find_one({"state": PENDING}, sort=[("_id", ASCENDING)])
        settled_to = min(last, pending["_id"] - 1) if pending else last
        self.counters.update_one({"_id": SEQUENCE + ".floor"}, {"$max": {"seq": settled_to}}, upsert=True)
        return filled

    def backfill(self, chunk: int = 1000) -> int:
        """A position for every stored post that has none (posts written
        before the change log existed), at its current version."""
        given, last_id = 0, None
        posts = self.db["posts"]
        while True:
            query: Doc = {"_id": {"$gt": last_id}} if last_id is not None else {}
            batch = list(posts.find(query, {"version": 1}).sort("_id", ASCENDING).limit(chunk))
            if not batch:
                return given
            last_id = batch[-1]["_id"]
            marked = set(self.changes.distinct("code", {"code": {"$in": [p["_id"] for p in batch]}, "state": DONE}))
            entries: list[Entry] = [(p["_id"], int(p.get("version", 1)), INSERT) for p in batch
                                    if p["_id"] not in marked]
            if entries:
                positions = self.open(entries)
                self.settle({seq: entry[1] for seq, entry in zip(positions, entries, strict=True)}, [])
                given += len(entries)

    # -- followers ------------------------------------------------------------

    def read(self, after: int = 0, limit: int = 1000) -> tuple[list[Doc], int]:
        """Changes after position ``after``, in order, stopping before the
        first position still being written. Returns the changes and the
        position to ask after next time (past any void positions read)."""
        changes, position = [], after
        cursor = self.changes.find({"_id": {"$gt": after}}).sort("_id", ASCENDING).limit(limit)
        for marker in cursor:
            if marker["_id"] != position + 1 or marker.get("state") == PENDING:
                break
            position = marker["_id"]
            if marker.get("state") == DONE:
                changes.append({"position": position, "info_code": marker["code"], "version": marker["version"],
                                "op": marker["op"], "at": marker["at"]})
        return changes, position


def _insert_all(collection: Collection[Doc], rows: list[Doc]) -> set[Any]:
    """Insert rows, ordered=False; the ``_id`` values already taken."""
    try:
        collection.insert_many(rows, ordered=False)
    except BulkWriteError as error:
        errors = error.details.get("writeErrors", [])
        if any(e.get("code") != DUPLICATE_KEY for e in errors):
            raise
        return {rows[e["index"]]["_id"] for e in errors}
    return set()
