"""MongoDB access: the connection, the collections' indexes, and the
embedded server used when ``MONGO_URI`` is unset.

The embedded server is SecantusDB run as a child process (``python -m
secantus``), never inside the crawler's interpreter. A server started by
``finews db serve`` on the same data folder is found through the state file it
leaves there and reused instead of starting a second one.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote, unquote_plus

import pymongo
from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.collection import Collection
from pymongo.errors import BulkWriteError, ConfigurationError, ConnectionFailure, OperationFailure, PyMongoError

from finews.storage import changes
from finews.storage.doctypes import Db, Doc
from finews.storage.process import alive
from finews.storage.schema import apply_validator

logger = logging.getLogger(__name__)

DEFAULT_DATABASE = "finews"
STATE_FILE = "finews-server.json"
POSTS, REJECTS, POST_VERSIONS = "posts", "rejects", "post_versions"
NEAR_DUPLICATE_INDEX = "near_duplicate_index"
CRAWL_RUNS = "crawl_runs"
RAW_ARTICLES = "raw_articles"
WRITE_JOURNAL = "write_journal"  # batches being written: posts to sign if the writer dies
DUPLICATE_KEY = 11000
# MongoDB's codes for refused credentials (AuthenticationFailed, UserNotFound)
# and for a command the connection is not allowed to run (Unauthorized).
AUTHENTICATION_FAILED, USER_NOT_FOUND, UNAUTHORIZED = 18, 11, 13
AUTH_FAILURES = {AUTHENTICATION_FAILED, USER_NOT_FOUND, UNAUTHORIZED}
# Server states that pass: not primary, shutting down, stepping down, network.
OUTAGE_CODES = {6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436}

INDEXES = {
    POSTS: [
        IndexModel([("info_code", ASCENDING)], unique=True, name="info_code_unique"),
        IndexModel([("published_at", DESCENDING)], name="published_at_desc"),
        # Newest first with a tie-break, as /api/posts pages through them (SecantusDB sorts
        # on an index only when it holds every sort key: 3.2 s -> 0.76 s at 20,000 posts).
        IndexModel([("published_at", DESCENDING), ("_id", DESCENDING)], name="published_at_id_desc"),
        IndexModel([("category", ASCENDING), ("published_at", DESCENDING)], name="category_published"),
        IndexModel([("media", ASCENDING), ("published_at", DESCENDING)], name="media_published"),
    ],
    REJECTS: [
        IndexModel([("url", ASCENDING), ("reason", ASCENDING)], unique=True, name="url_reason_unique"),
        IndexModel([("last_seen_at", DESCENDING)], name="last_seen_desc"),
    ],
    POST_VERSIONS: [
        IndexModel([("info_code", ASCENDING), ("version", ASCENDING)], unique=True, name="code_version_unique"),
    ],
    changes.CHANGES: changes.INDEXES,
}
# Indexes nothing reads any more, dropped from existing databases: ``lsh``
# (near-duplicate candidates now come from ``near_duplicate_buckets`` by
# ``_id``; its 14 multikey entries per post slowed every signature insert).
RETIRED_INDEXES = {NEAR_DUPLICATE_INDEX: ["lsh"]}

def _split_credentials(uri: str) -> tuple[str, str | None, str]:
    """``(scheme://, user:password, rest)`` of a URI as written. The
    credentials run to the last ``@`` before the options, so that a password
    with an unescaped ``@`` or ``/`` is all inside them (pymongo would read
    its tail as a host or a database name)."""
    scheme, separator, rest = uri.partition("://")
    if not separator:
        scheme, rest = "", uri
    else:
        scheme += separator
    at = rest.split("?", 1)[0].rfind("@")
    return (scheme, rest[:at], rest[at + 1:]) if at >= 0 else (scheme, None, rest)


def redact_uri(uri: str | None) -> str:
    """The URI with any user:password removed, safe to print or log."""
    scheme, credentials, rest = _split_credentials(uri or "")
    return uri or "" if credentials is None else f"{scheme}***@{rest}"


def redact(text: object, uri: str | None) -> str:
    """``text`` (an error, a log line) with the URI's password blanked out
    wherever it appears: the URI itself, and the password as written and
    percent-decoded (how pymongo and the server may echo it)."""
    message = str(text)
    if not uri:
        return message
    message = message.replace(uri, redact_uri(uri))
    _, credentials, _ = _split_credentials(uri)
    if credentials is None or ":" not in credentials:
        return message
    password = credentials.split(":", 1)[1]
    for secret in sorted({password, unquote(password), unquote_plus(password)} - {""}, key=len, reverse=True):
        message = message.replace(secret, "***")
    return message


def is_auth_failure(error: BaseException) -> bool:
    """Wrong, unknown or insufficient credentials: waiting will not help."""
    return isinstance(error, OperationFailure) and error.code in AUTH_FAILURES


def is_outage(error: BaseException) -> bool:
    """The database is away (or changing primary), not refusing this write:
    worth retrying later, spooling meanwhile. Anything else that fails a write
    is the document's fault (too large, invalid) or a refusal."""
    if isinstance(error, ConnectionFailure):
        return True
    if isinstance(error, BulkWriteError):
        return False
    if isinstance(error, OperationFailure):
        return error.code in OUTAGE_CODES or error.has_error_label("RetryableWriteError")
    return False


def connect(uri: str, **options: Any) -> pymongo.MongoClient[Doc]:
    options.setdefault("tz_aware", True)
    options.setdefault("serverSelectionTimeoutMS", 10_000)
    options.setdefault("appname", "finews")
    # After a "shutting down" or "not primary" error pymongo waits for the next
    # heartbeat before it selects the server again (10 s by default): with one
    # a second, a crawl writes again about a second after its database is back.
    options.setdefault("heartbeatFrequencyMS", 1000)
    return pymongo.MongoClient(uri, **options)


class InvalidURI(ValueError):
    """``MONGO_URI`` is not a MongoDB URI (a configuration error, not an
    outage: waiting will not help). The message is one line, password-free."""


def checked_connect(uri: str, **options: Any) -> pymongo.MongoClient[Doc]:
    """``connect``, refusing with ``InvalidURI`` a URI that is not one (a host
    name alone, a bad port) or has options pymongo does not know (a typo such
    as ``authSorce``, which pymongo would only warn about and ignore), or
    whose password holds an unescaped ``/`` (pymongo would take the rest for
    a host and a database, and print them)."""
    if not uri.startswith(("mongodb://", "mongodb+srv://")):
        raise InvalidURI(f"not a MongoDB URI: {redact_uri(uri)!r} (it must start with mongodb://)")
    _, credentials, _ = _split_credentials(uri)
    if credentials is not None and "/" in credentials:
        raise InvalidURI(f"not a valid MongoDB URI {redact_uri(uri)!r}: a '/' or '@' in the user or password "
                         "must be escaped (urllib.parse.quote_plus)")
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("error", category=UserWarning, module=r"pymongo\.")
            return connect(uri, **options)
    except (ValueError, ConfigurationError, UserWarning) as error:
        raise InvalidURI(f"not a valid MongoDB URI {redact_uri(uri)!r}: {redact(first_line(error), uri)}") from None


def first_line(error: object) -> str:
    """An error's first line, or its type when it has no text."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def ensure_indexes(db: Db) -> None:
    """Create the validator and indexes readers and writers rely on (idempotent)."""
    apply_validator(db, POSTS)
    for name, models in INDEXES.items():
        db[name].create_indexes(models)
    for name, retired in RETIRED_INDEXES.items():
        for index in set(retired) & set(db[name].index_information()):
            db[name].drop_index(index)
            logger.info("Dropped the %s index of %s (no longer read)", index, name)


@contextmanager
def database_uri(uri: str | None, storage_path: str | os.PathLike[str]) -> Iterator[str]:
    """``uri``, or for the duration an embedded server on ``storage_path``
    (one already serving that folder is used and left running)."""
    if uri:
        yield uri
        return
    with EmbeddedMongo(storage_path) as server:
        yield server.uri


def insert_new(collection: Collection[Doc], rows: list[Doc], refused: dict[int, str] | None = None) -> set[int]:
    """Insert rows, unordered; the positions of rows whose ``_id`` is already
    stored (another writer, or a retried batch, was first) come back instead
    of an error. With ``refused``, rows the server refuses for their own sake
    (too large, invalid) are put there (position: message) and the others
    still stored; otherwise any other write error is raised."""
    if not rows:
        return set()
    try:
        collection.insert_many(rows, ordered=False)
    except BulkWriteError as error:
        errors = error.details.get("writeErrors", [])
        others = [e for e in errors if e.get("code") != DUPLICATE_KEY]
        if refused is None:
            if others:
                raise
        else:
            for e in others:
                refused[e["index"]] = f"code {e.get('code')}: {str(e.get('errmsg', ''))[:300]}"
        return {e["index"] for e in errors if e.get("code") == DUPLICATE_KEY}
    return set()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


PR_SET_PDEATHSIG = 1


def _die_with_parent() -> Callable[[], None] | None:
    """For ``Popen(preexec_fn=…)``: the child gets SIGTERM (a clean shutdown)
    when this process dies, even by kill -9, so a server started by a crawl
    never outlives it as an orphan nobody stops. Linux only; elsewhere, and
    off the main thread (the signal follows the starting *thread*, and a pool
    thread may end before the process), nothing is set."""
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    parent = os.getpid()

    def tie() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the tie was made
            os._exit(1)

    return tie


# A standalone server keeps no oplog: nothing here reads one (no change
# streams, no transactions), and writing it was 40% of every insert's cost
# (1,400 small inserts: 68.6 ms with it, 38.2 ms without).
SERVER_ARGS = ("--standalone",)
# SecantusDB reads every stored document when it opens a data folder: about
# a minute for a million posts with their near-duplicate buckets (16 million
# documents). A start that slow is waited for, not killed.
STARTUP_TIMEOUT = 900.0


class EmbeddedMongo:
    """A SecantusDB server on loopback over a data folder, as a child process.

    The server lives as long as the process that started it (``stop``, its
    exit, or its death by kill -9); others on the same data folder reuse it
    meanwhile through the state file, and a later start after its death finds
    the state file's pid gone and starts a fresh one."""

    def __init__(self, storage_path: str | os.PathLike[str], port: int | None = None,
                 host: str = "127.0.0.1", extra_args: list[str] | None = None,
                 startup_timeout: float = STARTUP_TIMEOUT):
        self.storage_path = Path(storage_path)
        self.host = host
        self.port = port
        self.extra_args = list(extra_args or [])
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.reused = False

    @property
    def uri(self) -> str:
        return f"mongodb://{self.host}:{self.port}/"

    @property
    def state_file(self) -> Path:
        return self.storage_path / STATE_FILE

    def start(self) -> EmbeddedMongo:
        self.storage_path.mkdir(parents=True, exist_ok=True)
        running = self._running_server()
        if running:
            self.host, self.port, self.reused = running["host"], running["port"], True
            logger.info("Using the database server already running on %s (pid %s)", self.uri, running["pid"])
            return self
        self.port = self.port or free_port(self.host)
        log_path = self.storage_path / "server.log"
        command = [
            sys.executable, "-m", "secantus", "--host", self.host, "--port", str(self.port),
            "--storage-path", str(self.storage_path / "data"), *SERVER_ARGS, *self.extra_args,
        ]
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True,
                                            preexec_fn=_die_with_parent())  # noqa: PLW1509 (main thread only)
        self._wait_ready(log_path)
        self.state_file.write_text(json.dumps({"pid": self.process.pid, "host": self.host, "port": self.port}))
        logger.info("Started the embedded database on %s (data in %s)", self.uri, self.storage_path)
        return self

    def stop(self) -> None:
        if not self.process:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.state_file.unlink(missing_ok=True)
        self.process = None

    def kill(self) -> None:
        """Stop abruptly, as a crash would (for fault tests)."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.state_file.unlink(missing_ok=True)
        self.process = None

    def __enter__(self) -> EmbeddedMongo:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _running_server(self) -> Doc | None:
        try:
            state = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(state, dict) or not alive(state.get("pid")):
            return None
        try:
            with connect(f"mongodb://{state['host']}:{state['port']}/", serverSelectionTimeoutMS=2000) as client:
                client.admin.command("ping")
        except (PyMongoError, KeyError):
            return None
        return state

    def _wait_ready(self, log_path: Path) -> None:
        process = self.process
        if process is None:
            raise RuntimeError("the embedded database was not started")
        started = time.monotonic()
        deadline, next_note = started + self.startup_timeout, started + 15
        with connect(self.uri, serverSelectionTimeoutMS=500, connectTimeoutMS=500) as client:
            while time.monotonic() < deadline:
                if time.monotonic() > next_note:
                    logger.info("The embedded database is still opening %s (%.0f s; a large archive takes "
                                "about a minute per million posts)", self.storage_path, time.monotonic() - started)
                    next_note += 30
                if process.poll() is not None:
                    tail = log_path.read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"the embedded database exited at start:\n{tail}")
                try:
                    client.admin.command("ping")
                    return
                except PyMongoError:
                    time.sleep(0.2)
        self.kill()
        raise RuntimeError(f"the embedded database did not answer within {self.startup_timeout:.0f}s")
