"""Run ``scrapy`` in this process, its writer stopped at one step of a batch.

    python -m tests.helpers.paused_crawl STEP FILE -- crawl category -a site=…

At STEP the writer thread writes this process's id to FILE and sleeps, so a
crash test can kill the crawl there (``tests/test_midwrite_kill.py``). The
steps lie between the writes of ``PostStore._write_posts``:

- ``raw_kept``: sources kept, posts not yet inserted;
- ``posts_inserted``: posts inserted, not yet signed;
- ``signed``: signatures written, the journal entry not yet removed.

Patched here, not in production code: no setting or variable makes a real
crawl wait.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from pathlib import Path

from finews.storage.neardup import NearDuplicateIndex
from finews.storage.store import PostStore

STEPS = {"raw_kept": (PostStore, "_insert", "before"),
         "posts_inserted": (PostStore, "_insert", "after"),
         "signed": (NearDuplicateIndex, "flag", "after")}


def pause_at(step: str, file: Path) -> None:
    """Patch the method that ends (or follows) ``step`` to stop there."""
    owner, name, when = STEPS[step]
    original = getattr(owner, name)

    def pause():
        file.write_text(str(os.getpid()))
        time.sleep(3600)

    @functools.wraps(original)
    def paused(*args, **kwargs):
        if when == "before":
            pause()
        result = original(*args, **kwargs)
        pause()
        return result

    setattr(owner, name, paused)


def main(argv: list[str]) -> None:
    if len(argv) < 3 or argv[2] != "--" or argv[0] not in STEPS:
        sys.exit(f"usage: python -m tests.helpers.paused_crawl {{{','.join(STEPS)}}} FILE -- SCRAPY-ARGS…")
    pause_at(argv[0], Path(argv[1]))
    from scrapy.cmdline import execute

    execute(["scrapy", *argv[3:]])


if __name__ == "__main__":
    main(sys.argv[1:])
