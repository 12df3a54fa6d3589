"""Exit codes of ``scrapy crawl`` and ``finews``, and the outcome each run
maps to; shared by the CLI, the crawl command and configuration checks."""

from __future__ import annotations

EXIT_FAILED = 1
EXIT_USAGE = 2  # a bad config or bad spider arguments: nothing was run
EXIT_PARTIAL = 3
EXIT_LOCKED = 75  # EX_TEMPFAIL: another run of the job holds the lease; try later


def exit_code(outcome: str | None) -> int:
    """``scrapy crawl`` exit code for a run's outcome (a partial run is 0)."""
    return {"clean": 0, "partial": 0, "locked": EXIT_LOCKED}.get(outcome or "", EXIT_FAILED)


def run_exit_code(outcome: str) -> int:
    """``finews run``: 0 clean, 3 partial, 75 locked, 1 failed."""
    return {"clean": 0, "partial": EXIT_PARTIAL, "locked": EXIT_LOCKED}.get(outcome, EXIT_FAILED)


SEVERITY = ("clean", "partial", "locked", "failed")


def worst(outcomes: list[str]) -> str:
    """The outcome of a run of several jobs: its worst job's."""
    ranked = [o if o in SEVERITY else "failed" for o in outcomes] or ["failed"]
    return max(ranked, key=SEVERITY.index)
