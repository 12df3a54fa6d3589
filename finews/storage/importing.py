"""Load a JSONL dump (``finews export --format jsonl``) back into the store.

The file is read twice: once to check every line (so a bad file stores
nothing and is named by its first bad line), then batch by batch through
``PostStore.write_batch``, the crawl's own bulk path (sources, signatures,
near-duplicate flags, rejects). Posts are keyed by infoCode, so importing the
same dump twice stores nothing new. Bookkeeping the dump carries
(``first_seen_at``, ``version``, ``sources``, ``near_duplicates``) is kept.

A dump is finews' own format, so a line that ``finews export`` could not have
written is a bad file, not a post to repair: each line must be one post of
the model (``finews/core/model.py``), every field of its declared type and
rule, times in the stored range (``finews.core.dates.in_range``), no key that
MongoDB would read as an operator or a path (``$…``, ``a.b``, NUL) and no lone
surrogate (an export of stored posts never holds one: BSON text is UTF-8, and
replacing it would import a post that differs from the dump). Checked this way,
the write pass cannot fail for a value's sake; a post too large to store still
becomes a ``too_large`` reject, counted.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from finews.core.dates import EARLIEST, LATEST, in_range
from finews.core.model import FIELDS, REQUIRED
from finews.storage.doctypes import Doc

if TYPE_CHECKING:
    from finews.storage.store import PostStore

_NEEDED = tuple(name for name in REQUIRED if FIELDS[name].crawled)  # the store adds the rest
# MongoDB's largest document is 16 MiB of BSON, and JSON spends at most six
# bytes (``\u0000``) on one byte of it: no longer line can be a stored post.
MAX_LINE_BYTES = 6 * 16 * 1024 * 1024
_INT64 = (-(2 ** 63), 2 ** 63)
_SURROGATE = re.compile("[\ud800-\udfff]")


class BadDump(ValueError):
    """The file is not a finews JSONL dump; the message names the line."""


def check_dump(path: Path) -> int:
    """The number of posts in the dump; raises ``BadDump`` at the first line
    that is not one."""
    count = 0
    for _ in _posts(path):
        count += 1
    return count


def import_dump(store: PostStore, path: Path, batch: int = 500,
                progress: Callable[[int], None] | None = None) -> Counter[str]:
    """Write the dump's posts, ``batch`` at a time; returns the store's counts
    (``inserted``, ``unchanged``, …, ``rejected/<reason>``). Check the file
    with ``check_dump`` first: a bad line met here (the file changed since)
    raises ``BadDump`` after the batches before it were written."""
    counts: Counter[str] = Counter()
    docs: list[Doc] = []
    for doc in _posts(path):
        docs.append(doc)
        if len(docs) >= batch:
            _write(store, docs, counts, progress)
            docs = []
    if docs:
        _write(store, docs, counts, progress)
    return +counts


def _write(store: PostStore, docs: list[Doc], counts: Counter[str], progress: Callable[[int], None] | None) -> None:
    written, refused = store.write_batch(docs, [])
    counts.update(written)
    for reject in refused:
        counts[f"rejected/{reject['reason']}"] += 1
    if progress:
        progress(len(docs))


def _posts(path: Path) -> Iterator[Doc]:
    """The file's posts, line by line (``\\n``-separated bytes, each decoded
    on its own so that a bad byte is named by its own line)."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 (an open error is told apart from a read error; closed by the with below)
    except OSError as error:
        raise BadDump(f"cannot read {path}: {error.strerror or error}") from None
    with handle:
        number = 0
        while True:
            try:
                line = handle.readline(MAX_LINE_BYTES + 1)
            except OSError as error:
                raise BadDump(f"cannot read {path} after line {number}: {error.strerror or error}") from None
            if not line:
                return
            number += 1
            try:
                doc = _post(line, number)
            except BadDump as error:
                raise BadDump(f"{path} {error}") from None
            if doc is not None:
                yield doc


def _post(line: bytes, number: int) -> Doc | None:
    """The post on this line, checked against the model; None for a blank line."""
    if len(line) > MAX_LINE_BYTES:
        raise BadDump(f"line {number}: longer than {MAX_LINE_BYTES // 2 ** 20} MiB, more than any post can be")
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as error:
        bad = line[error.start]
        raise BadDump(f"line {number}: not UTF-8 text (byte {bad:#04x} at byte {error.start + 1})") from None
    if not text.strip():
        return None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as error:
        raise BadDump(f"line {number}: not JSON ({error.msg} at column {error.colno})") from None
    except ValueError as error:  # e.g. an integer of more digits than Python converts
        raise BadDump(f"line {number}: not JSON ({str(error)[:100]})") from None
    except RecursionError:
        raise BadDump(f"line {number}: not a post (JSON nested too deeply to read)") from None
    if not isinstance(doc, dict):
        raise BadDump(f"line {number}: not a post ({_kind(doc)}, not a JSON object)")
    problem = _refused_text(doc)
    if problem:
        raise BadDump(f"line {number}: {problem}")
    unknown = sorted(name for name in doc if name not in FIELDS)
    if unknown:
        raise BadDump(f"line {number}: not a finews post (field {unknown[0]!r} is not in the post model)")
    missing = [name for name in _NEEDED if name not in doc]
    if missing:
        raise BadDump(f"line {number}: not a finews post (no {', '.join(missing)})")
    for name, value in doc.items():
        try:
            doc[name] = _checked(name, value)
        except ValueError as error:
            raise BadDump(f"line {number}: {name} {error}") from None
    doc.pop("_id", None)  # the store keys posts on info_code
    return doc


def _refused_text(doc: Doc) -> str | None:
    """What is wrong with the keys or strings anywhere in ``doc`` (walked
    without recursion, whatever its depth), or None."""
    stack: list[tuple[str, object]] = [("", doc)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                path = f"{where}.{key}" if where else key
                if key.startswith("$") or "." in key or "\0" in key:
                    return (f"key {_shown(path)} refused (MongoDB reads a key starting with $ or holding . "
                            f"as an operator or a path; NUL ends a key)")
                if _SURROGATE.search(key):
                    return f"key {_shown(path)} holds a lone surrogate, not text"
                stack.append((path, item))
        elif isinstance(value, list):
            stack.extend((f"{where}[{i}]", item) for i, item in enumerate(value))
        elif isinstance(value, str):
            found = _SURROGATE.search(value)
            if found:
                return f"{where} holds a lone surrogate (\\u{ord(found.group()):04x}), not text"
    return None


def _checked(name: str, value: object) -> object:
    """``value`` as the store writes field ``name``; ``ValueError`` saying what
    is wrong when the model's type or rule refuses it."""
    field = FIELDS[name]
    if field.type == "date":
        return _date(value)
    if field.type == "string":
        if not isinstance(value, str):
            raise ValueError(f"is {_kind(value)}, not a string")
        _rule(field.rule, value)
    elif field.type == "int":
        if type(value) is not int:
            raise ValueError(f"is {_kind(value)}, not an integer")
        if not _INT64[0] <= value < _INT64[1]:
            raise ValueError("is over 8 bytes, more than MongoDB stores")
        _rule(field.rule, value)
    elif field.type == "[string]":
        if not isinstance(value, list):
            raise ValueError(f"is {_kind(value)}, not a list of strings")
        for index, item in enumerate(value):
            if not isinstance(item, str):
                raise ValueError(f"item {index + 1} is {_kind(item)}, not a string")
    return value


def _date(value: object) -> datetime:
    """An ISO time as ``finews export`` writes it (a time without an offset
    is UTC, as MongoDB stores it), in the stored range."""
    if not isinstance(value, str):
        raise ValueError(f"is {_kind(value)}, not an ISO time")
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"is not an ISO time: {_shown(value)}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if not in_range(when):
        raise ValueError(f"{_shown(value)} is outside the stored range "
                         f"[{EARLIEST:%Y-%m-%d}, {LATEST:%Y-%m-%d}) UTC")
    return when.astimezone(UTC)


def _rule(rule: Doc, value: Any) -> None:
    """The model's ``$jsonSchema`` constraints on one value (those it uses)."""
    if "enum" in rule and value not in rule["enum"]:
        raise ValueError(f"{_shown(value)} is not one of {', '.join(rule['enum'])}")
    if "pattern" in rule and not re.fullmatch(rule["pattern"], value):  # anchored: no trailing newline either
        raise ValueError(f"{_shown(value)} does not match {rule['pattern']}")
    if "minLength" in rule and len(value) < rule["minLength"]:
        raise ValueError("is empty" if not value else f"is shorter than {rule['minLength']} characters")
    if "maxLength" in rule and len(value) > rule["maxLength"]:
        raise ValueError(f"is longer than {rule['maxLength']} characters")
    if "minimum" in rule and value < rule["minimum"]:
        raise ValueError(f"{value} is below {rule['minimum']}")


def _kind(value: object) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null",
            int: "an integer", float: "a number"}.get(type(value), type(value).__name__)


def _shown(value: object) -> str:
    """A value short enough for a one-line message, its odd characters escaped."""
    text = value if isinstance(value, str) else str(value)
    return ascii(text[:40]) if len(text) > 40 or not text.isprintable() else repr(text)
