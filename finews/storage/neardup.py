"""Near-duplicate detection: MinHash signatures (``finews.core.minhash``)
with LSH bands kept in MongoDB, so memory does not grow with the database.

Each LSH band bucket is one document (``_id`` = band key) listing the codes
in it, so a batch's candidates come from exact ``_id`` lookups whose cost
does not grow with the number of stored posts (a ``$in`` over a multikey
index of every post's band keys did: the server re-checked each returned
document's keys against every queried key).

Near-duplicate posts are flagged (each lists the other in
``near_duplicates``), never merged or dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
from bson import Binary
from pymongo import UpdateOne
from pymongo.collection import Collection
from pymongo.errors import BulkWriteError

from finews.core.minhash import THRESHOLD, band_keys, signatures, similarity
from finews.storage.db import DUPLICATE_KEY, POSTS, insert_new
from finews.storage.db import NEAR_DUPLICATE_INDEX as INDEX
from finews.storage.doctypes import Db, Doc

logger = logging.getLogger(__name__)

BUCKETS = "near_duplicate_buckets"
# Written once every stored signature is in the buckets; band keys are
# "<band>:<hex>", so this _id never meets one.
BUILT = "~built"
_BUILD_CHUNK = 5_000
# Keys per `_id $in` query. SecantusDB re-checks each returned document
# against the whole `$in` list, so one query over k keys returning r
# documents costs r × k; slices keep that bounded (mongod does not care).
# Each slice is a round trip too: reading 1,400 buckets (a batch of 100
# near-duplicates) took 0.5 s in slices of 50 against 0.75 s in slices of 100
# (bench/scale_neardup.py, issue 23); 25 was no faster.
_LOOKUP_CHUNK = 50


def _values(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=np.uint32)


class NearDuplicateIndex:
    """Signatures in ``near_duplicate_index`` (by infoCode), band buckets in
    ``near_duplicate_buckets`` (by band key); flags land on ``posts``."""

    def __init__(self, db: Db, posts: str = POSTS,
                 sign: Callable[[list[str]], list[np.ndarray | None]] | None = None) -> None:
        self.index = db[INDEX]
        self.buckets = db[BUCKETS]
        self.posts = db[posts]
        # texts -> signatures: here by default; a ``SigningProcess`` signs them in another process
        self.sign = sign or signatures
        self._built = False

    def flag(self, inserted: list[Doc], revised: Sequence[Doc] = ()) -> int:
        """Index the posts' signatures and flag every near-duplicate pair.

        ``inserted`` are posts new to the database, ``revised`` posts whose
        text changed (their old signature is replaced). Per batch: the
        signatures are stored, then every band bucket of the batch is
        inserted; only the buckets that existed already (the server says
        which, as duplicate keys) can hold other posts, so only those are
        updated and read back, then the candidates' signatures. A new story
        costs one insert per collection and no read. Returns the number of
        pairs flagged.
        """
        signed = {}
        docs = [*inserted, *revised]
        for doc, values in zip(docs, self.sign([doc.get("body_text", "") for doc in docs]), strict=True):
            if values is not None:
                signed[doc["info_code"]] = (values.astype(np.uint32), band_keys(values))
        if not signed:
            return 0
        self.ensure_buckets()
        in_batch: dict[str, set[str]] = {}
        for code, (_, keys) in signed.items():
            for key in keys:
                in_batch.setdefault(key, set()).add(code)
        # Signatures before buckets, buckets before reading them: a writer
        # that finds a code in a bucket finds its signature, and of two
        # writers adding to one bucket at once the later reader sees both.
        self._replace(signed, [doc["info_code"] for doc in revised if doc["info_code"] in signed])
        existed = add_to_buckets(self.buckets, in_batch)
        members = {b["_id"]: b["codes"] for b in by_ids(self.buckets, sorted(existed))}
        # A code of this batch is compared with its new signature, never its stored one.
        stored = sorted({code for codes in members.values() for code in codes} - signed.keys())
        candidates = {c["_id"]: _values(c["minhash"]) for c in by_ids(self.index, stored, {"minhash": 1})}
        candidates.update({code: values for code, (values, _) in signed.items()})
        pairs = set()
        for code, (values, keys) in signed.items():
            others = {other for key in keys for other in (*members.get(key, ()), *in_batch[key])} - {code}
            for other in others:
                if other in candidates and similarity(values, candidates[other]) >= THRESHOLD:
                    pairs.add(tuple(sorted((code, other))))
        others_of: dict[str, set[str]] = {}
        for x, y in pairs:
            others_of.setdefault(x, set()).add(y)
            others_of.setdefault(y, set()).add(x)
        if others_of:  # one update per flagged post, however many pairs it is in
            self.posts.bulk_write([UpdateOne({"_id": code},
                                             {"$addToSet": {"near_duplicates": {"$each": sorted(others)}}})
                                   for code, others in others_of.items()], ordered=False)
        return len(pairs)

    def _replace(self, signed: dict[str, tuple[np.ndarray, list[str]]], revised: list[str]) -> None:
        """Store the batch's signatures; a revised post leaves the buckets of
        its old text first."""
        if revised:
            old = list(by_ids(self.index, revised, {"lsh": 1}))
            leaving: dict[str, list[str]] = {}
            for doc in old:
                for key in set(doc.get("lsh", ())) - set(signed[doc["_id"]][1]):
                    leaving.setdefault(key, []).append(doc["_id"])
            if leaving:
                self.buckets.bulk_write([UpdateOne({"_id": key}, {"$pull": {"codes": {"$in": codes}}})
                                         for key, codes in leaving.items()], ordered=False)
            self.index.delete_many({"_id": {"$in": revised}})
        rows = [{"_id": code, "lsh": keys, "minhash": Binary(values.tobytes())}
                for code, (values, keys) in signed.items()]
        insert_new(self.index, rows)  # a replayed or retried batch is already indexed

    def ensure_buckets(self) -> None:
        """Build the buckets from stored signatures once (databases written
        before buckets existed), then remember that they are complete."""
        if self._built or self.buckets.find_one({"_id": BUILT}, {"_id": 1}):
            self._built = True
            return
        count = build_buckets(self.index, self.buckets)
        if count:
            logger.info("Built near-duplicate buckets from %d stored signatures", count)
        self._built = True


def build_buckets(index: Collection[Doc], buckets: Collection[Doc], chunk: int = _BUILD_CHUNK,
                  progress: Callable[[int], object] | None = None) -> int:
    """Put every stored signature's code in its band buckets, ``chunk``
    signatures at a time; safe to run again or at once in two processes
    (``$addToSet``). Returns how many signatures were read."""
    done, last = 0, None
    while True:
        query: Doc = {"_id": {"$gt": last}} if last is not None else {}
        docs = list(index.find(query, {"lsh": 1}).sort("_id", 1).limit(chunk))
        if not docs:
            break
        additions: dict[str, set[str]] = {}
        for doc in docs:
            for key in doc.get("lsh", ()):
                additions.setdefault(key, set()).add(doc["_id"])
        add_to_buckets(buckets, additions)
        done, last = done + len(docs), docs[-1]["_id"]
        if progress:
            progress(done)
    buckets.update_one({"_id": BUILT}, {"$set": {"signatures": done}}, upsert=True)
    return done


def by_ids(collection: Collection[Doc], ids: Sequence[Any], projection: Doc | None = None) -> Iterator[Doc]:
    """The documents with these ``_id`` (exact-key lookups, in slices)."""
    for start in range(0, len(ids), _LOOKUP_CHUNK):
        yield from collection.find({"_id": {"$in": ids[start:start + _LOOKUP_CHUNK]}}, projection)


def add_to_buckets(buckets: Collection[Doc], additions: dict[str, set[str]],
                   existing: Iterable[str] = ()) -> set[str]:
    """Codes into their buckets: each bucket is inserted, and one that is
    there already (a duplicate key) gets ``$addToSet`` instead, as do the
    buckets the caller knows to exist (``existing``). Returns the keys of the
    buckets that were there before: only they can hold other codes."""
    known: set[str] = set(existing) & additions.keys()
    new = [key for key in additions if key not in known]
    if new:
        try:
            buckets.insert_many([{"_id": key, "codes": sorted(additions[key])} for key in new], ordered=False)
        except BulkWriteError as error:
            errors = error.details.get("writeErrors", [])
            if any(e.get("code") != DUPLICATE_KEY for e in errors):
                raise
            known.update(new[e["index"]] for e in errors)
    if known:
        # Without upsert: an upsert costs SecantusDB half as much again per
        # bucket (a near-duplicate batch updates ~1,400). A bucket removed
        # since (never by finews) is caught by the count and written again.
        def ops(upsert: bool) -> list[UpdateOne]:
            return [UpdateOne({"_id": key}, {"$addToSet": {"codes": {"$each": sorted(additions[key])}}},
                              upsert=upsert)
                    for key in sorted(known)]

        if buckets.bulk_write(ops(False), ordered=False).matched_count < len(known):
            buckets.bulk_write(ops(True), ordered=False)
    return known
