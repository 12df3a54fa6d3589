"""MinHash signatures and LSH band keys of article text (datasketch).

Pure functions of the text: the same text gives the same signature in every
process and every run, because signatures and band keys are stored and
compared with ones computed years later.

Two texts are near duplicates when the estimated Jaccard similarity of their
character 3-gram sets is at least ``THRESHOLD``.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from functools import lru_cache
from typing import Any

import numpy as np
from datasketch import MinHash, MinHashLSH

NUM_PERM = 128
THRESHOLD = 0.7
SHINGLE = 3
_SCHEME = "affine32"
_NOT_TEXT = re.compile(r"[\W_]+", re.UNICODE)


@lru_cache(maxsize=1)
def _layout() -> tuple[int, int, tuple[Any, ...]]:
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
    """The text's MinHash values, or None for a text with no letters."""
    grams = shingles(text)
    if not grams:
        return None
    _, _, permutations = _layout()
    # crc32: stable across processes (signatures are stored) and cheaper per
    # shingle than datasketch's default SHA-1.
    minhash = MinHash(num_perm=NUM_PERM, permutations=permutations, scheme=_SCHEME, hashfunc=zlib.crc32)
    minhash.update_batch(list(grams))
    values: np.ndarray = minhash.hashvalues
    return values


def signatures(texts: list[str]) -> list[np.ndarray | None]:
    return [signature(text) for text in texts]


def band_keys(values: np.ndarray) -> list[str]:
    """The signature's LSH band keys, ``"<band>:<hex>"``: two texts whose
    signatures share one are candidates."""
    bands, rows, _ = _layout()
    return [f"{band}:{hashlib.blake2b(values[band * rows:(band + 1) * rows].tobytes(), digest_size=8).hexdigest()}"
            for band in range(bands)]


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Estimated Jaccard similarity of two signatures."""
    return float(np.count_nonzero(a == b)) / len(a)
