"""Near-duplicate detection: MinHash signatures (datasketch) with LSH bands
kept in MongoDB, so finding candidates is an indexed query and memory does
not grow with the database.

Two posts are near duplicates when the estimated Jaccard similarity of their
character 3-gram sets is at least ``THRESHOLD``. They are flagged (each lists
the other in ``near_duplicates``), never merged or dropped.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from functools import lru_cache

import numpy as np
from bson import Binary
from datasketch import MinHash, MinHashLSH
from pymongo import UpdateOne

from finews.db import NEAR_DUPLICATE_INDEX as INDEX
from finews.db import POSTS, insert_new

NUM_PERM = 128
THRESHOLD = 0.7
SHINGLE = 3
_SCHEME = "affine32"
_NOT_TEXT = re.compile(r"[\W_]+", re.UNICODE)


@lru_cache(maxsize=1)
def _layout() -> tuple[int, int, tuple]:
    """LSH bands and rows datasketch chooses for the threshold, and the
    permutations, computed once (they are the costly part of a MinHash)."""
    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM)
    return lsh.b, lsh.r, MinHash(num_perm=NUM_PERM, scheme=_SCHEME).permutations


def shingles(text: str) -> set[bytes]:
    """Character 3-grams of the text with punctuation and spaces removed
    (Chinese has no word boundaries to shingle on)."""
    letters = _NOT_TEXT.sub("", text or "")
    if len(letters) <= SHINGLE:
        return {letters.encode()} if letters else set()
    return {letters[i:i + SHINGLE].encode() for i in range(len(letters) - SHINGLE + 1)}


def signature(text: str) -> np.ndarray | None:
    grams = shingles(text)
    if not grams:
        return None
    _, _, permutations = _layout()
    # crc32: stable across processes (signatures are stored) and cheaper per
    # shingle than datasketch's default SHA-1.
    minhash = MinHash(num_perm=NUM_PERM, permutations=permutations, scheme=_SCHEME, hashfunc=zlib.crc32)
    minhash.update_batch(list(grams))
    return minhash.hashvalues


def band_keys(values: np.ndarray) -> list[str]:
    bands, rows, _ = _layout()
    return [f"{band}:{hashlib.blake2b(values[band * rows:(band + 1) * rows].tobytes(), digest_size=8).hexdigest()}"
            for band in range(bands)]


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Estimated Jaccard similarity of two signatures."""
    return float(np.count_nonzero(a == b)) / len(a)


def _values(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=np.uint32)


class NearDuplicateIndex:
    """Signatures in ``near_duplicate_index``; flags land on ``posts``."""

    def __init__(self, db, posts: str = POSTS):
        self.index = db[INDEX]  # its "lsh" index is made by finews.db.ensure_indexes
        self.posts = db[posts]

    def flag(self, inserted: list[dict], revised: list[dict] = ()) -> int:
        """Index the posts' signatures and flag every near-duplicate pair.

        ``inserted`` are posts new to the database, ``revised`` posts whose
        text changed (their old signature is replaced). One query finds the
        candidates of the whole batch. Returns the number of pairs flagged.
        """
        signed = {}
        for doc in [*inserted, *revised]:
            values = signature(doc.get("body_text", ""))
            if values is not None:
                signed[doc["info_code"]] = (values.astype(np.uint32), band_keys(values))
        if not signed:
            return 0
        all_keys = sorted({key for _, keys in signed.values() for key in keys})
        # Stored candidates first, then the batch itself (compared in memory).
        candidates = {c["_id"]: (_values(c["minhash"]), set(c["lsh"]))
                      for c in self.index.find({"lsh": {"$in": all_keys}, "_id": {"$nin": list(signed)}})}
        candidates.update({code: (values, set(keys)) for code, (values, keys) in signed.items()})
        replaced = [doc["info_code"] for doc in revised]
        if replaced:
            self.index.delete_many({"_id": {"$in": replaced}})
        rows = [{"_id": code, "lsh": keys, "minhash": Binary(values.tobytes())} for code, (values, keys) in signed.items()]
        insert_new(self.index, rows)  # a replayed or retried batch is already indexed
        pairs = set()
        for code, (values, keys) in signed.items():
            key_set = set(keys)
            for other, (other_values, other_keys) in candidates.items():
                if other != code and key_set & other_keys and similarity(values, other_values) >= THRESHOLD:
                    pairs.add(tuple(sorted((code, other))))
        if pairs:
            self.posts.bulk_write([
                UpdateOne({"_id": a}, {"$addToSet": {"near_duplicates": b}}) for x, y in pairs for a, b in ((x, y), (y, x))
            ], ordered=False)
        return len(pairs)
