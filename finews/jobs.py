"""Jobs: a spider with its arguments. One job's runs must not overlap, and
each job keeps its resumable state (Scrapy's JOBDIR) in the data folder."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

EXIT_LOCKED = 75  # EX_TEMPFAIL: another run of the job holds the lease; try later
EXIT_FAILED = 1


def job_key(spider: str, arguments: dict) -> str:
    digest = hashlib.sha1(json.dumps(arguments, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:12]
    return f"{spider}-{digest}"


def job_dir(data_dir: str | Path, key: str) -> Path:
    return Path(data_dir) / "jobs" / key


def exit_code(outcome: str | None) -> int:
    """``scrapy crawl`` and ``finews`` exit codes for a run's outcome."""
    return {"clean": 0, "partial": 0, "locked": EXIT_LOCKED}.get(outcome or "", EXIT_FAILED)
