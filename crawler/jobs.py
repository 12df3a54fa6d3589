"""Jobs: a spider with its arguments. One job's runs must not overlap, and
each job keeps its resumable state in the data folder (Scrapy's JOBDIR), or,
with ``FINEWS_REDIS_URL``, in Redis, shared by the job's workers.

Here, not in finews.core: naming a job sets Scrapy settings and the
scheduler class. Nothing here imports Scrapy, so ``finews`` commands that
only check a config do not load it."""

from __future__ import annotations

import difflib
import hashlib
import json

from finews.core.environment import data_paths

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


def configure_job(settings, spider: str, arguments: dict) -> str:
    """Name the job and say where its requests wait: in Redis, shared with
    the job's other workers, when ``FINEWS_REDIS_URL`` is set; otherwise in
    the job's JOBDIR (unless one was set explicitly)."""
    key = job_key(spider, arguments)
    settings.set("FINEWS_JOB_KEY", key, priority="cmdline")
    settings.set("FINEWS_JOB_ARGS", json.dumps(arguments, ensure_ascii=False), priority="cmdline")
    if settings.get("FINEWS_REDIS_URL"):
        settings.set("SCHEDULER", SHARED_SCHEDULER, priority="cmdline")
    elif not settings.get("JOBDIR") and settings.getbool("FINEWS_RESUMABLE", True):
        settings.set("JOBDIR", str(data_paths(settings).jobs / key), priority="cmdline")
    return key
