"""Run several spiders one after another in this process and report.

Scrapy's reactor runs once per process, so this is the single place that
starts it; the CLI commands call ``run_spiders`` once.
"""

from __future__ import annotations

import fcntl
import inspect
import json
import logging
import os
import pickle
import struct
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, cast

from scrapy.crawler import CrawlerRunner
from scrapy.settings import BaseSettings, Settings
from scrapy.utils.log import configure_logging
from scrapy.utils.misc import load_object
from scrapy.utils.project import get_project_settings
from scrapy.utils.reactor import install_reactor

if TYPE_CHECKING:
    from twisted.internet.asyncioreactor import AsyncioSelectorReactor

from crawler.jobs import ConfigError, configure_job, unknown

logger = logging.getLogger(__name__)

ASYNCIO_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"


@dataclass
class SpiderRun:
    spider: str
    arguments: dict
    stats: dict = field(default_factory=dict)

    def stat(self, key: str, default=0):
        return self.stats.get(key, default)

    @property
    def rejected(self) -> dict[str, int]:
        prefix = "finews/rejected/"
        return {k[len(prefix):]: v for k, v in self.stats.items() if k.startswith(prefix)}

    @property
    def outcome(self) -> str:
        return self.stats.get("finews/outcome") or "failed"

    @property
    def pages(self) -> int:
        return self.stat("response_received_count")

    @property
    def seconds(self) -> float:
        return float(self.stat("elapsed_time_seconds", 0.0))


def project_settings(overrides: dict | None = None) -> Settings:
    """``crawler/settings.py`` (wherever the command runs from), then ``overrides``."""
    os.environ.setdefault("SCRAPY_SETTINGS_MODULE", "crawler.settings")
    settings = get_project_settings()
    settings.setdict(overrides or {}, priority="cmdline")
    return settings


def spider_arguments(spidercls) -> set[str]:
    """The arguments a spider class's constructors name (``-a NAME=…``)."""
    names: set[str] = set()
    for klass in spidercls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        names |= {name for name, parameter in inspect.signature(init).parameters.items()
                  if name != "self" and parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)}
    return names - {"name"}


def check_spider_arguments(spidercls, arguments: dict) -> None:
    """``ValueError`` for arguments the spider would take badly: a name it does
    not know (a typo would silently fall back to a default, such as the real
    site), or a value its constructor refuses. Spiders are cheap to construct
    and touch nothing until crawled, so the check builds one and drops it."""
    known = spider_arguments(spidercls)
    for key in arguments:
        if key not in known:
            raise ValueError(unknown("argument", key, known))
    try:
        spidercls(**arguments)
    except TypeError as error:
        raise ValueError(f"{spidercls.name}: {error}") from None


def spider_loader(settings: Settings):
    """The project's spider loader (``SPIDER_LOADER_CLASS``), as Scrapy builds it."""
    return load_object(settings["SPIDER_LOADER_CLASS"]).from_settings(settings.frozencopy())


def check_config(config, settings: Settings) -> None:
    """``ConfigError`` unless every job names a spider of the project with
    arguments it accepts, and every ``[settings]`` key is a setting Scrapy or
    ``crawler/settings.py`` defines, with a value of the default's type."""
    loader = spider_loader(settings)
    spiders = loader.list()
    for number, job in enumerate(config.jobs, start=1):
        if job.spider not in spiders:
            raise ConfigError(f"job {number}: {unknown('spider', job.spider, spiders)}")
        try:
            check_spider_arguments(loader.load(job.spider), job.arguments)
        except ValueError as error:
            raise ConfigError(f"job {number} ({job.spider}): {error}") from None
    for key, value in config.settings.items():
        if key not in settings:
            if key.startswith("FINEWS_") and key[len("FINEWS_"):] in settings:
                raise ConfigError(f"[settings]: {key} is an environment variable; the setting is {key[7:]}")
            raise ConfigError(f"[settings]: {unknown('setting', key, settings)}")
        expected = _setting_type(settings[key])
        if expected and not _of_type(value, expected[0]):
            raise ConfigError(f"[settings] {key} must be {expected[1]}, got {value!r}")


def _of_type(value, types: tuple[type, ...]) -> bool:
    return isinstance(value, types) and (bool in types or not isinstance(value, bool))


def _setting_type(default) -> tuple[tuple[type, ...], str] | None:
    """What a ``[settings]`` value must be, going by the setting's default."""
    if isinstance(default, bool):
        return (bool,), "true or false"
    if isinstance(default, (int, float)):
        return (int, float), "a number"
    if isinstance(default, str):
        return (str,), "a string"
    if isinstance(default, (list, tuple)):
        return (list,), "a list"
    if isinstance(default, (dict, BaseSettings)):
        return (dict,), "a table"
    return None  # None or an object: anything goes, as in Scrapy


class JobLocked(Exception):
    """Another process on this host runs the job (it holds the JOBDIR lock)."""


@contextmanager
def job_dir_lock(settings):
    """Hold the job's local lock for the whole run, taken before anything in
    its JOBDIR is read or moved: a second run of the job on this host
    (``JobLocked``) leaves the running one's queue and state alone, even with
    the database, and so the lease, away. ``flock`` ends with the process,
    so a run killed with -9 leaves no stale lock. A lock file that cannot be
    made (a full disk) does not stop the run: its queue fails it as it would."""
    jobdir = settings.get("JOBDIR")
    if not jobdir:
        yield
        return
    path = Path(jobdir).with_name(Path(jobdir).name + ".lock")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        logger.warning("Could not make the job lock %s (%s)", path, error)
        yield
        return
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        raise JobLocked(f"job {settings.get('FINEWS_JOB_KEY') or Path(jobdir).name} is already running on this host "
                        f"({path} is locked); not starting") from None
    try:
        yield
    finally:
        os.close(descriptor)


def salvage_job_dir(settings) -> list[Path]:
    """Move aside the saved job state in ``JOBDIR`` that Scrapy could not
    read, so the run starts afresh instead of failing at every start: an
    unreadable ``spider.state`` (0 bytes after a failed start or a kill -9
    during its write; Scrapy logs an EOFError, then an AssertionError at
    close, and never rewrites it), or a ``requests.queue`` whose disk queues
    do not match their saved sizes (after a kill -9 of a resumed run the
    count in a queue's header is stale, and popping past the real requests
    reads garbage and hangs the crawl). The files are kept, renamed
    ``….corrupt-<UTC time>``, for an operator; the fresh run re-walks the
    listings and fetches what is not stored. Call it holding ``job_dir_lock``."""
    jobdir = settings.get("JOBDIR")
    if not jobdir or not Path(jobdir).is_dir():
        return []
    moved = []
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    for name, problem in (("spider.state", _unreadable_state), ("requests.queue", _inconsistent_queue)):
        path = Path(jobdir, name)
        reason = path.exists() and problem(path)
        if reason:
            aside = path.with_name(f"{name}.corrupt-{stamp}")
            path.rename(aside)
            moved.append(aside)
            logger.warning("Saved job state %s cannot be used (%s): moved to %s; this run starts afresh",
                           path, reason, aside.name)
    return moved


def _unreadable_state(path: Path) -> str | None:
    try:
        with path.open("rb") as file:
            pickle.load(file)  # our own file, as Scrapy's SpiderState reads it
    except Exception as error:  # any failure to read is the same problem
        return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return None


def _inconsistent_queue(folder: Path) -> str | None:
    """Why Scrapy's disk queue in ``folder`` cannot be resumed, if it cannot:
    a state file that is not JSON, or a LIFO queue file (queuelib's format: a
    count, then records each followed by its length) whose records do not add
    up to its length and count."""
    for info in [folder / "active.json", *folder.rglob("info.json")]:
        if info.exists():
            try:
                json.loads(info.read_text(encoding="utf-8"))
            except (OSError, ValueError) as error:
                return f"{info.relative_to(folder)}: {error}"
    for queue in folder.rglob("*"):
        if queue.is_file() and queue.name != "active.json" and not (queue.parent / "info.json").exists():
            problem = _lifo_problem(queue)
            if problem:
                return f"{queue.relative_to(folder)}: {problem}"
    return None


def _lifo_problem(path: Path) -> str | None:
    size_of = struct.Struct(">L")
    data = path.read_bytes()
    if len(data) < size_of.size:
        return f"{len(data)} bytes, no count"
    (count,) = size_of.unpack_from(data, 0)
    end, records = len(data), 0
    while end > size_of.size:
        (length,) = size_of.unpack_from(data, end - size_of.size)
        end -= size_of.size + length
        records += 1
    if end != size_of.size or records != count:
        return f"says {count} requests, holds {records}{'' if end == size_of.size else ' and a torn one'}"
    return None


def run_spiders(jobs: list[tuple[str, dict]], settings: Settings) -> list[SpiderRun]:
    """Run ``(spider name, arguments)`` jobs in order; return their stats."""
    install_reactor(ASYNCIO_REACTOR)
    from twisted.internet import defer
    from twisted.internet import reactor as installed

    # the reactor just installed: typed as its class (the interfaces declare methods without self)
    reactor = cast("AsyncioSelectorReactor", installed)

    configure_logging(settings)
    runner = CrawlerRunner(settings)
    runs: list[SpiderRun] = []
    failure: list[BaseException] = []

    @defer.inlineCallbacks
    def chain():
        try:
            for name, arguments in jobs:
                crawler = runner.create_crawler(name)
                configure_job(crawler.settings, name, arguments)
                run = SpiderRun(name, arguments)
                runs.append(run)
                try:
                    with job_dir_lock(crawler.settings):
                        salvage_job_dir(crawler.settings)
                        yield runner.crawl(crawler, **arguments)
                except JobLocked as locked:
                    logger.error("%s", str(locked).capitalize())
                    run.stats = {"finews/outcome": "locked"}
                    continue
                run.stats = dict(crawler.stats.get_stats())
        except Exception as exc:  # reported after the reactor stops
            failure.append(exc)
        finally:
            reactor.stop()

    reactor.callWhenRunning(chain)
    reactor.run()
    if failure:
        raise failure[0]
    return runs
