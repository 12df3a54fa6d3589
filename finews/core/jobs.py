"""Jobs: a spider with its arguments. One job's runs must not overlap, and
each job keeps its resumable state in the data folder (Scrapy's JOBDIR), or,
with ``FINEWS_REDIS_URL``, in Redis, shared by the job's workers."""

from __future__ import annotations

import difflib
import hashlib
import json

EXIT_FAILED = 1
EXIT_USAGE = 2  # a bad config or bad spider arguments: nothing was run
EXIT_PARTIAL = 3
EXIT_LOCKED = 75  # EX_TEMPFAIL: another run of the job holds the lease; try later
SHARED_SCHEDULER = "crawler.scheduler.SharedScheduler"


class ConfigError(ValueError):
    """A job, its arguments or the config naming it are wrong (exit 2)."""


def unknown(kind: str, name: str, known) -> str:
    """``unknown KIND 'NAME'`` with the nearest known name, or the known ones."""
    close = difflib.get_close_matches(name, sorted(known), n=1)
    if close:
        hint = f"did you mean {close[0]!r}?"
    elif len(known) <= 12:
        hint = f"known: {', '.join(sorted(known)) or 'none'}"
    else:
        hint = "not a setting of Scrapy or crawler/settings.py"
    return f"unknown {kind} {name!r} ({hint})"


def job_key(spider: str, arguments: dict) -> str:
    digest = hashlib.sha1(json.dumps(arguments, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:12]
    return f"{spider}-{digest}"


def exit_code(outcome: str | None) -> int:
    """``scrapy crawl`` exit code for a run's outcome (a partial run is 0)."""
    return {"clean": 0, "partial": 0, "locked": EXIT_LOCKED}.get(outcome or "", EXIT_FAILED)


def run_exit_code(outcome: str) -> int:
    """``finews run``: 0 clean, 3 partial, 75 locked, 1 failed."""
    return {"clean": 0, "partial": EXIT_PARTIAL, "locked": EXIT_LOCKED}.get(outcome, EXIT_FAILED)


def configure_job(settings, spider: str, arguments: dict) -> str:
    """Name the job and say where its requests wait: in Redis, shared with
    the job's other workers, when ``FINEWS_REDIS_URL`` is set; otherwise in
    the job's JOBDIR (unless one was set explicitly)."""
    from finews.core.environment import data_paths  # environment imports this module's exit codes

    key = job_key(spider, arguments)
    settings.set("FINEWS_JOB_KEY", key, priority="cmdline")
    settings.set("FINEWS_JOB_ARGS", json.dumps(arguments, ensure_ascii=False), priority="cmdline")
    if settings.get("FINEWS_REDIS_URL"):
        settings.set("SCHEDULER", SHARED_SCHEDULER, priority="cmdline")
    elif not settings.get("JOBDIR") and settings.getbool("FINEWS_RESUMABLE", True):
        settings.set("JOBDIR", str(data_paths(settings).jobs / key), priority="cmdline")
    return key


SEVERITY = ("clean", "partial", "locked", "failed")


def worst(outcomes: list[str]) -> str:
    """The outcome of a run of several jobs: its worst job's."""
    ranked = [o if o in SEVERITY else "failed" for o in outcomes] or ["failed"]
    return max(ranked, key=SEVERITY.index)
