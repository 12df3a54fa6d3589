"""Load a JSONL dump (``finews export --format jsonl``) back into the store.

The file is read twice: once to check every line (so a bad file stores
nothing and is named by its first bad line), then batch by batch through
``PostStore.write_batch``, the crawl's own bulk path (sources, signatures,
near-duplicate flags, rejects). Posts are keyed by infoCode, so importing the
same dump twice stores nothing new. Bookkeeping the dump carries
(``first_seen_at``, ``version``, ``sources``, ``near_duplicates``) is kept.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterator

from finews.core.model import FIELDS, REQUIRED

_DATES = tuple(name for name, field in FIELDS.items() if field.type == "date")
_NEEDED = tuple(name for name in REQUIRED if FIELDS[name].crawled)  # the store adds the rest


class BadDump(ValueError):
    """The file is not a finews JSONL dump; the message names the line."""


def check_dump(path: Path) -> int:
    """The number of posts in the dump; raises ``BadDump`` at the first line
    that is not one."""
    count = 0
    for _ in _posts(path):
        count += 1
    return count


def import_dump(store, path: Path, batch: int = 500, progress: Callable[[int], None] | None = None) -> Counter:
    """Write the dump's posts, ``batch`` at a time; returns the store's counts
    (``inserted``, ``unchanged``, …, ``rejected/<reason>``)."""
    counts: Counter = Counter()
    docs: list[dict] = []
    for doc in _posts(path):
        docs.append(doc)
        if len(docs) >= batch:
            _write(store, docs, counts, progress)
            docs = []
    if docs:
        _write(store, docs, counts, progress)
    return +counts


def _write(store, docs: list[dict], counts: Counter, progress) -> None:
    written, refused = store.write_batch(docs, [])
    counts.update(written)
    for reject in refused:
        counts[f"rejected/{reject['reason']}"] += 1
    if progress:
        progress(len(docs))


def _posts(path: Path) -> Iterator[dict]:
    try:
        handle = open(path, encoding="utf-8")
    except OSError as error:
        raise BadDump(f"cannot read {path}: {error.strerror or error}") from None
    with handle:
        number = 0
        try:
            for number, line in enumerate(handle, 1):
                if line.strip():
                    yield _post(line, number)
        except UnicodeDecodeError:
            raise BadDump(f"{path} line {number + 1}: not UTF-8 text") from None
        except BadDump as error:
            raise BadDump(f"{path} {error}") from None


def _post(line: str, number: int) -> dict:
    try:
        doc = json.loads(line)
    except ValueError as error:
        raise BadDump(f"line {number}: not JSON ({error.msg} at column {error.colno})") from None
    if not isinstance(doc, dict):
        raise BadDump(f"line {number}: not a post (a JSON {type(doc).__name__}, not an object)")
    missing = [name for name in _NEEDED if name not in doc]
    if missing:
        raise BadDump(f"line {number}: not a finews post (no {', '.join(missing)})")
    for name in _DATES:
        if isinstance(doc.get(name), str):
            try:
                doc[name] = datetime.fromisoformat(doc[name].replace("Z", "+00:00"))
            except ValueError:
                raise BadDump(f"line {number}: {name} is not an ISO date: {doc[name][:40]!r}") from None
    doc.pop("_id", None)  # the store keys posts on info_code
    return doc
