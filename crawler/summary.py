"""The run summary printed at the end of `scrapy crawl`, `finews run` and `finews demo`."""

from __future__ import annotations

from crawler.runner import SpiderRun
from finews.core.reasons import by_kind
from finews.core.tables import format_table

# unchanged: fetched again, same content; known: already stored, so not fetched at all.
COLUMNS = ("stored", "updated", "unchanged", "known", "duplicates", "rejected", "pages", "pages/s")


def summarize(runs: list[SpiderRun], totals: dict[str, int] | None = None) -> str:
    rows = []
    for run in runs:
        pages_per_second = run.pages / run.seconds if run.seconds else 0.0
        rows.append((
            run.spider,
            run.stat("finews/posts/inserted"),
            run.stat("finews/posts/updated"),
            run.stat("finews/posts/unchanged") + run.stat("finews/posts/twin_kept"),
            run.stat("finews/skipped_known"),
            run.stat("finews/duplicates_dropped"),
            run.stat("finews/rejected"),
            run.pages,
            pages_per_second,
        ))
    out = [format_table(("spider", *COLUMNS), rows)]
    if any(row[4] for row in rows):
        out.append("known: posts already stored, not fetched again (-a refresh=all fetches them)")
    reasons: dict[str, int] = {}
    for run in runs:
        for reason, count in run.rejected.items():
            reasons[reason] = reasons.get(reason, 0) + count
    if reasons:
        out.append("rejected by reason: " + ", ".join(f"{k}={v}" for k, v in sorted(reasons.items())))
        out.append("rejected by kind (finews/core/reasons.py): "
                   + ", ".join(f"{k}={v}" for k, v in sorted(by_kind(reasons).items())))
    spooled = sum(run.stat("finews/db/spooled") for run in runs)
    if spooled:
        out.append(f"spooled for replay (database unavailable): {spooled}")
    if totals:
        out.append("database now holds: " + ", ".join(f"{k}={v}" for k, v in totals.items()))
    return "\n".join(out)
