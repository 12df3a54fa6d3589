"""Every environment variable finews documents, read and checked in one place.

``crawler/settings.py`` (so ``scrapy crawl``) and every ``finews`` command use
this module, so a mistyped value is refused the same way everywhere: one line,
``finews: NAME must be …, got '…'``, exit 2, before a database is started or a
folder created. A switch takes 1/0, true/false, yes/no, on/off; an empty
value counts as unset. ``MONGO_URI`` is only looked at here; whether it is a
MongoDB URI is for ``finews.storage.db.checked_connect`` (exit 1).

Plain Python: no Scrapy, Twisted or pymongo (``tests/test_layers.py``).
"""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from finews.core.exits import EXIT_USAGE
from finews.core.retry import DATABASE, HTTP, LEASE

_SWITCH = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}
_INTERVAL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$", re.I)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
# MongoDB refuses these in a database name (and names over 63 bytes).
_DATABASE_NAME_FORBIDDEN = set('/\\. "$\x00')


class BadValue(ValueError):
    """The value cannot be used; the message is what it must be (``must be …``)."""


def interval_seconds(text: str | int | float) -> float:
    """Seconds in ``"5m"``, ``"90s"``, ``"1h"``, ``"1d"`` or a bare number of seconds."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        seconds = float(text)
    else:
        match = _INTERVAL.match(str(text))
        if not match:
            raise BadValue("an interval such as 90s, 5m or 1h")
        seconds = float(match.group(1)) * _UNITS[(match.group(2) or "s").lower()]
    if seconds <= 0:
        raise BadValue("a positive interval")
    return seconds


def _switch(text: str) -> bool:
    try:
        return _SWITCH[text.strip().lower()]
    except KeyError:
        raise BadValue("1 or 0") from None


def _whole(low: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            number = int(text)
        except ValueError:
            raise BadValue("a whole number") from None
        if number < low:
            raise BadValue(f"at least {low}")
        return number
    return parse


def _number(low: float, positive: bool = False) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            number = float(text)
        except ValueError:
            raise BadValue("a number") from None
        if not math.isfinite(number):
            raise BadValue("a number")
        if positive and number <= 0:
            raise BadValue("greater than 0")
        if number < low:
            raise BadValue(f"at least {low:g}")
        return number
    return parse


def _text(text: str) -> str:
    return text


def _log_level(text: str) -> str:
    if text.strip().upper() not in LOG_LEVELS:
        raise BadValue("one of " + ", ".join(LOG_LEVELS))
    return text.strip().upper()


def _redis_url(text: str) -> str:
    if not text.strip().lower().startswith(REDIS_SCHEMES):
        raise BadValue("a redis://, rediss:// or unix:// URL")
    return text.strip()


def _database_name(text: str) -> str:
    if set(text) & _DATABASE_NAME_FORBIDDEN or len(text.encode("utf-8")) > 63:
        raise BadValue("a MongoDB database name (at most 63 bytes, none of / \\ . \" $ or a space)")
    return text


def _interval(text: str) -> float:
    return interval_seconds(text)


@dataclass(frozen=True)
class Variable:
    name: str
    parse: Callable[[str], object]
    default: object


# Every variable README.md and docs/operations.md ("Tuning") name, and the
# few more crawler/settings.py reads. The order is the order of the checks.
VARIABLES = {variable.name: variable for variable in (
    Variable("MONGO_URI", _text, None),
    Variable("MONGO_DATABASE", _database_name, "finews"),
    Variable("FINEWS_DATA_DIR", _text, "var"),
    Variable("FINEWS_DB_PATH", _text, None),
    Variable("FINEWS_CONFIG", _text, None),
    Variable("FINEWS_EVERY", _interval, None),
    Variable("FINEWS_LOG_LEVEL", _log_level, "INFO"),
    Variable("FINEWS_REDIS_URL", _redis_url, None),
    Variable("MONGO_BATCH_SIZE", _whole(1), 100),
    Variable("MONGO_RETRY_ATTEMPTS", _whole(1), DATABASE.attempts),
    Variable("MONGO_RETRY_MAX_WAIT", _number(0), DATABASE.max_wait),
    Variable("MONGO_TIMEOUT_MS", _whole(1), DATABASE.timeout_ms),
    Variable("MONGO_OUTAGE_COOLDOWN", _number(0), DATABASE.outage_cooldown),
    Variable("MONGO_MAX_PENDING_BATCHES", _whole(1), 4),
    Variable("MONGO_MAX_DOCUMENT_BYTES", _whole(1), 12 * 1024 * 1024),
    Variable("FINEWS_CONCURRENT_REQUESTS", _whole(1), 16),
    Variable("FINEWS_CONCURRENT_REQUESTS_PER_DOMAIN", _whole(1), 16),
    Variable("FINEWS_DOWNLOAD_DELAY", _number(0), 0.0),
    Variable("FINEWS_DOWNLOAD_TIMEOUT", _whole(1), 30),
    Variable("FINEWS_DOWNLOAD_MAXSIZE", _whole(0), 8 * 1024 * 1024),
    Variable("FINEWS_RETRY_TIMES", _whole(0), HTTP.times),
    Variable("FINEWS_RETRY_AFTER_MAX", _number(0), HTTP.retry_after_max),
    Variable("FINEWS_AUTOTHROTTLE", _switch, True),
    Variable("FINEWS_AUTOTHROTTLE_TARGET", _number(0, positive=True), 4.0),
    Variable("FINEWS_REMOTE_CONTROL", _switch, False),
    Variable("FINEWS_NEAR_DUPLICATES", _switch, True),
    Variable("FINEWS_SIGNING_PROCESS", _switch, True),
    Variable("FINEWS_LISTING_SWEEP_SECONDS", _number(0), 24 * 3600.0),
    Variable("FINEWS_LOCK_TTL", _number(0, positive=True), LEASE.ttl),
    Variable("FINEWS_REDIS_WORKER_TTL", _number(0, positive=True), 60.0),
    Variable("FINEWS_REDIS_POLL", _number(0, positive=True), 1.0),
    Variable("FINEWS_RESUMABLE", _switch, True),
)}


def _raw(name: str, environ: Mapping[str, str] | None) -> str | None:
    text = (os.environ if environ is None else environ).get(name)
    return text if text not in (None, "") else None


def value(name: str, environ: Mapping[str, str] | None = None) -> Any:
    """The variable's value, typed; its default when unset, and also when the
    value cannot be used (``problem`` names that, and the commands stop on it)."""
    variable = VARIABLES[name]
    text = _raw(name, environ)
    if text is None:
        return variable.default
    try:
        return variable.parse(text)
    except BadValue:
        return variable.default


def problems(environ: Mapping[str, str] | None = None) -> list[str]:
    """One line per variable whose value cannot be used, in ``VARIABLES`` order."""
    found = []
    for name, variable in VARIABLES.items():
        text = _raw(name, environ)
        if text is None:
            continue
        try:
            variable.parse(text)
        except BadValue as wanted:
            found.append(f"finews: {name} must be {wanted}, got {text!r}")
    return found


def problem(environ: Mapping[str, str] | None = None) -> str | None:
    """The first line of ``problems``, or None: the one line a command prints."""
    found = problems(environ)
    return found[0] if found else None


class SettingsLike(Protocol):
    """Scrapy's settings, or a plain dict of them."""

    def get(self, name: str, default: Any = None, /) -> Any: ...


@dataclass(frozen=True)
class DataPaths:
    """Where a crawl keeps its files."""

    data_dir: Path
    db: Path  # the embedded database
    spool: Path  # batches and run records the database did not take
    jobs: Path  # each job's JOBDIR and its lock


def data_paths(settings: SettingsLike) -> DataPaths:
    """The paths from a crawl's final settings (anything with ``get``: Scrapy's
    settings after ``-s`` and ``[settings]``, which win over the environment
    that ``crawler/settings.py`` read), resolved when the crawler is built, so
    that ``-s FINEWS_DATA_DIR=X`` moves the database with the spool and the
    JOBDIR. ``FINEWS_DB_PATH``, when set, wins over ``DATA_DIR/db``."""
    data_dir = Path(settings.get("FINEWS_DATA_DIR") or value("FINEWS_DATA_DIR", {}))
    db = settings.get("FINEWS_DB_PATH")
    return DataPaths(data_dir, Path(db) if db else data_dir / "db", data_dir / "spool", data_dir / "jobs")


def stop(line: str) -> None:
    """Print ``line`` and exit with the usage code (2)."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
    raise SystemExit(EXIT_USAGE)
