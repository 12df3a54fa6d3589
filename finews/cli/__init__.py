"""The ``finews`` command line."""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import sys
import threading
from contextlib import contextmanager
from datetime import UTC
from pathlib import Path

from pymongo.errors import ConnectionFailure, OperationFailure, PyMongoError

from finews.core import environment
from finews.core.exits import EXIT_USAGE
from finews.storage.db import (
    STATE_FILE,
    UNAUTHORIZED,
    EmbeddedMongo,
    InvalidURI,
    checked_connect,
    database_uri,
    first_line,
    is_auth_failure,
    redact,
    redact_uri,
)

logger = logging.getLogger("finews")

# A fixed port keeps page URLs, and so reject records, the same across demos.
DEMO_PORT = 8740
EXIT_DATABASE = 1  # the database is unreachable, the URI malformed, or the credentials refused
EXIT_BAD_FILE = 2  # `finews import`: the file is missing, unreadable or not a finews JSONL dump
EXIT_PORT_IN_USE = 2  # `finews replica`, `finews db serve`, `finews serve`: --port is taken; pick another


class DatabaseUnusable(Exception):
    """The command cannot use the database; the message is the one line to print."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="finews", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    data_dir = argparse.ArgumentParser(add_help=False)
    data_dir.add_argument("--data-dir",
                          help="folder of the embedded database and run state (default: $FINEWS_DATA_DIR or ./var; "
                               "the database in $FINEWS_DB_PATH if set, else DATA_DIR/db)")
    existing = argparse.ArgumentParser(add_help=False)
    existing.add_argument("--create", action="store_true",
                          help="start an empty embedded database if there is none yet (default: refuse)")
    selection = argparse.ArgumentParser(add_help=False)
    selection.add_argument("--since", type=_date, help="only posts published on or after this date (e.g. 2022-03-01)")
    selection.add_argument("--category", help="only this category slug")

    demo = commands.add_parser("demo", parents=[data_dir],
                               help="crawl the bundled replica into the embedded database and report")
    demo.add_argument("--posts", type=Path, help="serve these post files instead of the bundled corpus")
    demo.add_argument("--port", type=int, default=DEMO_PORT,
                      help=f"replica port; a busy port falls back to a free one (default: {DEMO_PORT})")
    demo.add_argument("--log-level", default="WARNING")
    demo.set_defaults(handler=cmd_demo)

    replica = commands.add_parser("replica", help="serve the replica site on loopback until stopped")
    replica.add_argument("--host", default="127.0.0.1")
    replica.add_argument("--port", type=int, default=8000)
    replica.add_argument("--posts", type=Path, help="corpus or post folder (default: bundled corpus)")
    replica.add_argument("--scale", type=int, default=0,
                         help="serve N posts synthesized from the corpus instead of the corpus itself")
    replica.add_argument("--grow", type=float, default=0,
                         help="add synthesized posts at this many per second while serving")
    replica.add_argument("--faults", default="",
                         help="fault modes and rates, e.g. status500=0.1,status429=0.05,timeout=0.05,"
                              "truncate=0.02,gbk=0.05,garbage=0.02,redirect_offsite=0.01,slow=0.05")
    replica.add_argument("--seed", type=int, default=0, help="seed for --faults (same seed, same faults)")
    replica.add_argument("--hang-seconds", type=float, default=60.0, help="how long a 'timeout' fault hangs")
    replica.add_argument("--slow-seconds", type=float, default=1.5, help="how late a 'slow' fault answers")
    replica.set_defaults(handler=cmd_replica)

    db = commands.add_parser("db", help="the embedded database")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    serve = db_commands.add_parser("serve", parents=[data_dir],
                                   help="run the embedded database for other programs to read")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=27017)
    serve.set_defaults(handler=cmd_db_serve)

    run = commands.add_parser("run", help="run every configured job once, or again every INTERVAL")
    run.add_argument("--config", type=Path, default=os.environ.get("FINEWS_CONFIG") or None,
                     help="finews.toml (default: $FINEWS_CONFIG; without one, the category spider on the real site)")
    run.add_argument("--every", nargs="?", const="config", metavar="INTERVAL",
                     help="keep running, one run every INTERVAL (e.g. 5m); without a value, the config's [run] every")
    run.add_argument("--log-level", help="default: [settings] LOG_LEVEL, $FINEWS_LOG_LEVEL or INFO")
    run.set_defaults(handler=cmd_run)

    stats = commands.add_parser("stats", parents=[data_dir, existing],
                                help="posts per category and day, and the last runs")
    stats.add_argument("--days", type=int, default=14, help="how many days of posts to count (0: all)")
    stats.add_argument("--runs", type=int, default=10, help="how many recent runs to show")
    stats.set_defaults(handler=cmd_stats)

    export = commands.add_parser("export", parents=[selection, data_dir, existing], help="write stored posts to a file")
    export.add_argument("out", help="jsonl: output file or - ; jekyll: output folder (gets _posts/)")
    export.add_argument("--format", choices=["jsonl", "jekyll"], default="jsonl")
    export.set_defaults(handler=cmd_export)

    load = commands.add_parser("import", parents=[data_dir],
                               help="load a JSONL dump (finews export --format jsonl) into the database")
    load.add_argument("file", type=Path, help="the .jsonl file")
    load.add_argument("--batch", type=int, default=500, help="posts per bulk write (default: 500)")
    load.add_argument("--no-near-duplicates", action="store_true",
                      help="do not sign and flag near duplicates while importing")
    load.set_defaults(handler=cmd_import)

    redo = commands.add_parser("reprocess", parents=[selection, data_dir, existing],
                               help="clean stored posts again from their kept source (no crawl)")
    redo.set_defaults(handler=cmd_reprocess)

    replay = commands.add_parser("replay", parents=[data_dir, existing],
                                 help="write batches spooled while the database was down")
    replay.set_defaults(handler=cmd_replay)

    migrate = commands.add_parser("migrate", parents=[data_dir, existing],
                                  help="bring stored posts to the current schema version (finews/core/model.py)")
    migrate.set_defaults(handler=cmd_migrate)

    follow = commands.add_parser("follow", parents=[data_dir, existing],
                                 help="print every change to stored posts, in order, each once (docs/schema.md)")
    follow.add_argument("--after", type=int, default=0, metavar="POSITION",
                        help="start after this position (the last one you handled; default: from the first)")
    follow.add_argument("--format", choices=["jsonl", "text"], default="jsonl")
    follow.add_argument("--once", action="store_true", help="stop when every change written so far is printed")
    follow.add_argument("--poll", type=float, default=1.0, metavar="SECONDS", help="wait between reads (default: 1)")
    follow.set_defaults(handler=cmd_follow)

    web = commands.add_parser("serve", parents=[data_dir, existing],
                              help="serve the site, Atom feeds, a JSON API and a run dashboard from the database")
    web.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, loopback only)")
    web.add_argument("--port", type=int, default=8000, help="port (default: 8000; in use: exit 2)")
    web.set_defaults(handler=cmd_serve)

    args = parser.parse_args(argv)
    problem = environment.problem()
    if problem:  # before anything starts: no database, no folder
        print(problem, file=sys.stderr, flush=True)
        return EXIT_USAGE
    if getattr(args, "posts", None) and not args.posts.exists():  # else an empty replica, and a demo of nothing
        print(f"finews {args.command}: no post files at {args.posts}", file=sys.stderr, flush=True)
        return EXIT_USAGE
    if hasattr(args, "data_dir"):
        args.db_path = _db_path(args.data_dir)
        args.data_dir = args.data_dir or environment.value("FINEWS_DATA_DIR")
    if args.command not in ("demo", "run"):  # crawls configure logging through Scrapy's settings
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    try:
        return args.handler(args) or 0
    except DatabaseUnusable as error:
        print(f"finews {args.command}: {error}", file=sys.stderr, flush=True)
        return EXIT_DATABASE


def _db_path(data_dir: str | None) -> Path:
    """The embedded database folder: DATA_DIR/db for an explicit --data-dir,
    else ``FINEWS_DB_PATH``, else ``$FINEWS_DATA_DIR/db`` (as a crawl finds it)."""
    if data_dir:
        return Path(data_dir) / "db"
    return Path(environment.value("FINEWS_DB_PATH") or Path(environment.value("FINEWS_DATA_DIR")) / "db")


def _port_in_use(host: str, port: int) -> str | None:
    """The one line to print when ``host:port`` cannot be listened on, else None."""
    import socket

    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as error:
        return _listen_error(host, port, error)
    return None


def _listen_error(host: str, port: int, error: OSError) -> str:
    import errno

    if error.errno == errno.EADDRINUSE:
        return f"finews: port {port} is in use (pick another with --port)"
    return f"finews: cannot listen on {host}:{port}: {error.strerror or error}"


def cmd_replica(args) -> int:
    from finews.replica.faults import FaultPlan
    from finews.replica.server import ReplicaServer
    from finews.replica.site import ReplicaSite

    try:
        faults = FaultPlan.parse(args.faults, seed=args.seed, hang_seconds=args.hang_seconds,
                                 slow_seconds=args.slow_seconds)
    except ValueError as error:
        print(f"finews replica: {error}", file=sys.stderr)
        return 2
    busy = _port_in_use(args.host, args.port)
    if busy:
        print(busy, file=sys.stderr, flush=True)
        return EXIT_PORT_IN_USE
    site = ReplicaSite.scaled(args.scale, args.posts) if args.scale else ReplicaSite.from_folder(args.posts)
    try:
        server = ReplicaServer(site, args.host, args.port, faults=faults)
    except OSError as error:
        print(_listen_error(args.host, args.port, error), file=sys.stderr, flush=True)
        return EXIT_PORT_IN_USE
    if args.grow:
        server.grow(args.grow)
    print(f"Serving {len(site.entries)} posts at {server.url}"
          f"{' with faults ' + args.faults if faults else ''} (Ctrl-C to stop)", flush=True)
    _serve_until_stopped(server)
    return 0


def _serve_until_stopped(server) -> None:
    """Serve until Ctrl-C or SIGTERM (both end the command with exit 0)."""
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def cmd_serve(args) -> int:
    from finews.serve.app import ServeServer

    busy = _port_in_use(args.host, args.port)
    if busy:
        print(busy, file=sys.stderr, flush=True)
        return EXIT_PORT_IN_USE
    with _opened_database(args) as db:
        db.list_collection_names()  # the database answers and may be read, or one line and exit 1
        try:
            server = ServeServer(db, args.host, args.port, spool_folder=Path(args.data_dir) / "spool")
        except OSError as error:
            print(_listen_error(args.host, args.port, error), file=sys.stderr, flush=True)
            return EXIT_PORT_IN_USE
        print(f"Serving {db.posts.estimated_document_count()} posts at {server.url} "
              f"(site, /feed.xml, /api/posts, /dashboard/; Ctrl-C to stop)", flush=True)
        _serve_until_stopped(server)
    return 0


def cmd_db_serve(args) -> int:
    server = EmbeddedMongo(args.db_path, port=args.port, host=args.host)
    busy = _port_in_use(args.host, args.port)
    if busy and not server.state_file.exists():  # with one, start() may find this folder's server already running
        print(busy, file=sys.stderr, flush=True)
        return EXIT_PORT_IN_USE
    try:
        server.start()
    except RuntimeError as error:
        print(busy or f"finews db serve: {str(error).splitlines()[0]}", file=sys.stderr, flush=True)
        return EXIT_PORT_IN_USE if busy else 1
    if server.reused:
        print(f"A finews database already runs on {server.uri}", flush=True)
        return 0
    print(f"Database running on {server.uri} (data in {server.storage_path}; Ctrl-C to stop)", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(1) and server.process is not None and server.process.poll() is None:
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def cmd_run(args) -> int:
    from crawler.runner import check_config, project_settings
    from finews.cli.config import ConfigError, load_config, parse_interval
    from finews.core.exits import EXIT_USAGE

    try:
        config = load_config(args.config)
        check_config(config, project_settings())
        every = (config.every if args.every == "config" else parse_interval(args.every)) if args.every else None
    except ConfigError as error:
        print(f"finews run: {error}", file=sys.stderr)
        return EXIT_USAGE
    if args.every and not every:
        print("finews run: --every needs an interval (or [run] every in the config)", file=sys.stderr)
        return EXIT_USAGE
    return run_every(args, every) if every else run_once(config, args.log_level)


def run_once(config, log_level: str | None) -> int:
    """Every configured job, one after another, in this process, once the
    database answers: a run that cannot hold its lease or write must not start."""
    from crawler.runner import project_settings, run_spiders
    from crawler.summary import summarize
    from finews.core.exits import run_exit_code, worst

    os.environ.setdefault("SCRAPY_SETTINGS_MODULE", "crawler.settings")
    overrides = {"LOG_LEVEL": log_level.upper()} if log_level else {}
    with _database_errors(config.mongo_uri), database_uri(config.mongo_uri, config.db_path) as uri:
        settings = project_settings({**config.scrapy_settings(), "MONGO_URI": uri, **overrides})
        check_database(uri, settings.get("MONGO_DATABASE"), settings.getint("MONGO_TIMEOUT_MS"))
        runs = run_spiders([(job.spider, job.arguments) for job in config.jobs], settings)
    outcome = worst([run.outcome for run in runs])
    print(summarize(runs), flush=True)
    print(f"outcome: {outcome} ({', '.join(f'{r.spider}={r.outcome}' for r in runs)})", flush=True)
    return run_exit_code(outcome)


def run_every(args, every: float) -> int:
    """Start a run every ``every`` seconds (start to start, never two at
    once), each in a fresh process, until SIGTERM or Ctrl-C."""
    import subprocess
    import time

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    command = [sys.executable, "-m", "finews.cli", "run"]
    if args.log_level:
        command += ["--log-level", args.log_level]
    if args.config:
        command += ["--config", str(args.config)]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s finews %(levelname)s: %(message)s")
    try:
        while not stop.is_set():
            started = time.monotonic()
            child = subprocess.Popen(command)
            while child.poll() is None:
                if stop.wait(0.5):
                    child.send_signal(signal.SIGTERM)  # the job stops cleanly and resumes next time
                    child.wait()
            logger.info("run finished with exit code %s in %.0fs", child.returncode, time.monotonic() - started)
            stop.wait(max(0.0, every - (time.monotonic() - started)))
    except KeyboardInterrupt:
        pass
    return 0


@contextmanager
def _opened_database(args):
    """The configured database (``MONGO_URI``, ``MONGO_DATABASE``), or the
    embedded one on the data folder. An embedded database that does not exist
    yet is created only when asked (``--create``): a command run in the wrong
    folder must not report an empty archive it has just made."""
    configured = environment.value("MONGO_URI")
    if not configured and not getattr(args, "create", True) and not _embedded_database_exists(args.db_path):
        raise DatabaseUnusable(f"no database at {args.db_path}; run a crawl first (finews demo, finews run), "
                               f"pass --create, or set MONGO_URI")
    with _database_errors(configured), database_uri(configured, args.db_path) as uri, \
            open_client(uri, _timeout_ms()) as client:
        yield client[environment.value("MONGO_DATABASE")]


def _embedded_database_exists(db_path: Path) -> bool:
    """Whether an embedded database was ever started on ``db_path`` (its
    server keeps its files in ``data/``; a running one has its state file)."""
    return (db_path / "data").is_dir() or (db_path / STATE_FILE).exists()


def _timeout_ms() -> int:
    """``MONGO_TIMEOUT_MS``: how long a command waits for the database
    (checked with every other variable before the command starts)."""
    return environment.value("MONGO_TIMEOUT_MS")


def open_client(uri: str, timeout_ms: int):
    """A client for ``uri``; ``DatabaseUnusable`` for a URI that is not one.
    Options pymongo does not know (a typo such as ``authSorce``) are refused
    rather than ignored with a warning."""
    try:
        return checked_connect(uri, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms)
    except InvalidURI as error:
        raise DatabaseUnusable(str(error)) from None


def check_database(uri: str, name: str, timeout_ms: int) -> None:
    """Fail now, with the reason, unless the database answers and lets this
    connection read ``name`` (a ping alone passes without credentials)."""
    with _database_errors(uri), open_client(uri, timeout_ms) as client:
        client[name].list_collection_names()


@contextmanager
def _database_errors(uri: str | None):
    """Turn a database error inside the block into one clear line."""
    try:
        yield
    except PyMongoError as error:
        raise DatabaseUnusable(describe_database_error(error, uri)) from None


def describe_database_error(error: PyMongoError, uri: str | None) -> str:
    """One line for a database error: refused credentials, unreachable server,
    bad URI, or anything else; never the password."""
    where = f" at {redact_uri(uri)}" if uri else ""
    if isinstance(error, OperationFailure):
        reason = redact(first_line((error.details or {}).get("errmsg") or error), uri)
        if error.code == UNAUTHORIZED:
            return f"not authorized{where}: {reason} (MONGO_URI needs a user with access to the database)"
        if is_auth_failure(error):
            return f"authentication failed{where}: {reason} (check the user and password in MONGO_URI)"
        return f"database error{where}: {reason}"
    text = redact(first_line(error), uri)
    if not isinstance(error, ConnectionFailure):  # e.g. an SRV name that does not resolve, a refused write
        return f"database error{where}: {text}"
    waited = re.search(r", Timeout: ([\d.]+s)", text)
    reason = re.split(r" \(configured timeouts|, Timeout: ", text)[0]
    return f"database unreachable{where}: {reason}" + (f" (gave up after {waited.group(1)})" if waited else "")


def _date(text: str):
    """``--since``: a date, or a date and time (site time unless it says), as UTC."""
    from finews.core.dates import parse_published

    moment = parse_published(text)
    if moment is None:
        raise argparse.ArgumentTypeError(f"not a date: {text!r}")
    return moment


def _selected_posts(db, since, category: str | None, label: str | None):
    """Posts chosen by --since/--category, oldest first, with a progress bar
    on stderr unless ``label`` is None."""
    from tqdm import tqdm

    from finews.storage.reading import export_query, iter_posts

    query = export_query(since, category)
    posts = iter_posts(db, query)
    if label is None:
        return posts
    return tqdm(posts, total=db.posts.count_documents(query), unit="post", desc=label, file=sys.stderr)


def cmd_stats(args) -> int:
    from datetime import datetime, timedelta

    from finews.core.dates import SITE_TZ
    from finews.core.tables import format_table as table
    from finews.storage.reading import posts_per_category_and_day, recent_runs

    since = datetime.now(UTC) - timedelta(days=args.days) if args.days else None
    window = f"last {args.days} days" if args.days else "all days"
    with _opened_database(args) as db:
        counts = posts_per_category_and_day(db, since)
        newest = _newest_post_time(db) if since and not counts else None
        if newest:  # an archive of older posts (the demo's are from 2021-22): its last days, not "(none)"
            counts = posts_per_category_and_day(db, newest - timedelta(days=args.days))
            window = (f"none in the last {args.days} days; shown: the {args.days} days up to the newest post, "
                      f"{newest.astimezone(SITE_TZ):%Y-%m-%d}; --days 0 shows all days")
        runs = recent_runs(db, args.runs)
        total = db.posts.estimated_document_count()
        unshown = _posts_out_of_range(db)
    if unshown:
        codes = ", ".join(unshown[:5]) + (", …" if len(unshown) > 5 else "")
        logger.warning("%d stored posts have a publication time that cannot be shown (%s) and are not counted "
                       "per day: %s", len(unshown), _outside(), codes)
    skipped = f"; {len(unshown)} with a time out of range, not counted" if unshown else ""
    print(f"Posts per category and day ({window}; {total} posts stored{skipped})")
    print(table(("day", "category", "posts"), counts) if counts else "(none)")
    print(f"\nLast {len(runs)} runs")
    print(table(("started (UTC)", "spider", "outcome", "pages", "stored", "failures"), [
        (_shown_time(r.get("started_at")), r.get("spider"), r.get("outcome"), r.get("pages_attempted"),
         r.get("stored"), ", ".join(f"{k}={v}" for k, v in sorted((r.get("failures_by_reason") or {}).items())))
        for r in runs]) if runs else "(none)")
    return 0


def _newest_post_time(db):
    """The newest publication time that can be shown, or None."""
    from finews.core.dates import EARLIEST, LATEST

    newest = db.posts.find_one({"published_at": {"$gte": EARLIEST, "$lt": LATEST}}, {"published_at": 1},
                               sort=[("published_at", -1)])
    when = newest and newest.get("published_at")
    return when.replace(tzinfo=when.tzinfo or UTC) if when else None


def _outside() -> str:
    from finews.core.dates import EARLIEST, LATEST

    return f"outside [{EARLIEST:%Y-%m-%d}, {LATEST:%Y-%m-%d}) UTC"


def _posts_out_of_range(db) -> list[str]:
    """The infoCodes of stored posts whose publication time is no time or
    lies outside the stored range (written by an older finews, which kept
    such times): they cannot be shown in Shanghai days or exported."""
    from finews.core.dates import EARLIEST, LATEST

    query = {"$nor": [{"published_at": {"$gte": EARLIEST, "$lt": LATEST}}]}
    return [doc["_id"] for doc in db.posts.find(query, {"_id": 1}).sort("_id", 1)]


def _shown_time(when) -> str:
    """A run's start for the table; whatever a record holds, never an error."""
    try:
        return f"{when:%Y-%m-%d %H:%M:%S}"
    except (TypeError, ValueError):
        return str(when)


def cmd_export(args) -> int:
    from finews.storage.reading import open_output, write_jekyll, write_jsonl

    skipped: list[str] = []
    with _opened_database(args) as db:
        posts = _in_range(_selected_posts(db, args.since, args.category, None if args.out == "-" else "export"),
                          skipped)
        if args.format == "jekyll":
            exported = write_jekyll(db, posts, Path(args.out))
            written, detail = int(exported), exported.describe()
        else:
            out = open_output(args.out)
            try:
                written, detail = write_jsonl(posts, out), ""
            finally:
                if out is not sys.stdout:
                    out.close()
    print(f"exported {written} posts to {args.out}" + detail
          + (f"; skipped {len(skipped)} with a publication time {_outside()}" if skipped else ""), file=sys.stderr)
    return 0


def _in_range(posts, skipped: list[str]):
    """The posts whose publication time can be shown; each other one (stored
    by an older finews) is left out with a warning and its code added to
    ``skipped``, so that an export neither fails on it nor writes a dump
    ``finews import`` would refuse."""
    from finews.core.dates import in_range

    for post in posts:
        if in_range(post.get("published_at")):
            yield post
        else:
            skipped.append(post.get("_id"))
            logger.warning("post %s not exported: its publication time %s is %s", post.get("_id"),
                           post.get("published_at"), _outside())


def cmd_import(args) -> int:
    from tqdm import tqdm

    from finews.storage.db import ensure_indexes
    from finews.storage.importing import BadDump, check_dump, import_dump
    from finews.storage.store import PostStore

    try:
        total = check_dump(args.file)
    except BadDump as error:
        print(f"finews import: {error}", file=sys.stderr, flush=True)
        return EXIT_BAD_FILE
    with _opened_database(args) as db:
        ensure_indexes(db)
        store = PostStore(db, near_duplicates=not args.no_near_duplicates)
        with tqdm(total=total, unit="post", desc="import", file=sys.stderr, disable=None) as bar:
            def progress(done: int) -> None:
                bar.update(done)

            try:
                counts = import_dump(store, args.file, max(1, args.batch), progress)
            except BadDump as error:  # the file changed after it was checked
                bar.close()
                print(f"finews import: {error} (the file changed while it was imported; "
                      f"the posts before this line were written)", file=sys.stderr, flush=True)
                return EXIT_BAD_FILE
    print(f"imported {total} posts from {args.file}: "
          + (", ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "nothing"))
    return 0


def cmd_reprocess(args) -> int:
    from finews.storage.reading import reprocess

    with _opened_database(args) as db:
        counts = reprocess(db, _selected_posts(db, args.since, args.category, "reprocess"))
    print("reprocessed: " + (", ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "nothing"))
    return 0


def cmd_replay(args) -> int:
    from finews.storage.db import ensure_indexes
    from finews.storage.store import PostStore, Spool

    spool = Spool(Path(args.data_dir) / "spool")
    try:
        with _opened_database(args) as db:
            ensure_indexes(db)
            counts = spool.replay(PostStore(db))
    except DatabaseUnusable as error:
        raise DatabaseUnusable(f"{error}; the spool is kept in {spool.folder}") from None
    print("replayed: " + (", ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "nothing spooled"))
    return 0


def cmd_migrate(args) -> int:
    from finews.core.model import SCHEMA_VERSION
    from finews.storage.changes import ChangeLog
    from finews.storage.db import ensure_indexes
    from finews.storage.neardup import NearDuplicateIndex
    from finews.storage.schema import migrate

    with _opened_database(args) as db:
        ensure_indexes(db)
        upgraded = migrate(db)
        NearDuplicateIndex(db).ensure_buckets()  # so the first crawl's first batch does not wait for it
        positioned = ChangeLog(db).backfill()  # posts stored before the change log existed
    print(f"posts at schema version {SCHEMA_VERSION}; upgraded: "
          + (", ".join(f"to {v}={n}" for v, n in sorted(upgraded.items())) or "none")
          + f"; near-duplicate buckets built; {positioned} posts given a change position")
    return 0


def cmd_follow(args) -> int:
    """Print changes as the change log gives them; a consumer keeps the last
    position it handled and starts again with ``--after`` it."""
    import json
    import time

    from finews.storage.changes import ChangeLog

    if args.after < 0 or args.poll <= 0:
        print("finews follow: --after must be 0 or more and --poll more than 0", file=sys.stderr, flush=True)
        return EXIT_USAGE
    position = args.after
    with _opened_database(args) as db:
        log = ChangeLog(db)
        try:
            while True:
                changes, position = log.read(position)
                for change in changes:
                    change["at"] = change["at"].isoformat()
                    print(json.dumps(change, ensure_ascii=False) if args.format == "jsonl" else
                          "{position} {op} {info_code} v{version} {at}".format(**change), flush=True)
                if not changes:
                    if args.once:
                        return 0
                    time.sleep(args.poll)
        except KeyboardInterrupt:
            return 0


def cmd_demo(args) -> int:
    from crawler.runner import project_settings, run_spiders
    from crawler.summary import summarize
    from finews.replica.server import ReplicaServer
    from finews.replica.site import ReplicaSite

    os.environ.setdefault("SCRAPY_SETTINGS_MODULE", "crawler.settings")
    data_dir = Path(args.data_dir)
    configured = environment.value("MONGO_URI")
    if configured:
        check_database(configured, environment.value("MONGO_DATABASE"), _timeout_ms())
    site = ReplicaSite.from_folder(args.posts)
    codes_file = data_dir / "demo" / "share-codes.txt"
    codes_file.parent.mkdir(parents=True, exist_ok=True)
    codes_file.write_text("".join(f"{code}\n" for code in site.share_codes()), encoding="utf-8")
    try:
        replica = ReplicaServer(site, port=args.port).start()
    except OSError:
        replica = ReplicaServer(site).start()
    try:
        with _database_errors(configured), database_uri(configured, args.db_path) as uri:
            settings = project_settings({
                "MONGO_URI": uri,
                "FINEWS_DATA_DIR": str(data_dir),
                "AUTOTHROTTLE_ENABLED": False,
                "LOG_LEVEL": args.log_level.upper(),
            })
            print(f"Replica with {len(site.entries)} posts at {replica.url}; database {redact_uri(uri)}", flush=True)
            runs = run_spiders([
                ("category", {"site": replica.url}),
                ("newsshare", {"site": replica.url, "codes_file": str(codes_file)}),
                ("newslist", {"site": replica.url}),  # the replica's list feeds: sources and feed times
            ], settings)
            with open_client(uri, settings.getint("MONGO_TIMEOUT_MS")) as client:
                db = client[settings.get("MONGO_DATABASE")]
                totals = {"posts": db.posts.count_documents({}), "rejects": db.rejects.count_documents({})}
    finally:
        replica.stop()
    print(summarize(runs, totals), flush=True)
    print(f"Browse what was stored: finews serve{' --data-dir ' + str(data_dir) if args.data_dir != 'var' else ''}"
          " (then open http://127.0.0.1:8000/)", flush=True)
    failed = [r.spider for r in runs if r.stat("finish_reason", "") != "finished"]
    return 1 if failed else 0
