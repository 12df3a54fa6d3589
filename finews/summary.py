"""The run summary printed by ``finews demo`` (and later ``finews run``)."""

from __future__ import annotations

from finews.runner import SpiderRun

COLUMNS = ("stored", "updated", "unchanged", "duplicates", "rejected", "pages", "pages/s")


def summarize(runs: list[SpiderRun], totals: dict[str, int] | None = None) -> str:
    rows = []
    for run in runs:
        pages_per_second = run.pages / run.seconds if run.seconds else 0.0
        rows.append((
            run.spider,
            run.stat("finews/posts/inserted"),
            run.stat("finews/posts/updated"),
            run.stat("finews/posts/unchanged") + run.stat("finews/posts/twin_kept"),
            run.stat("finews/duplicates_dropped"),
            run.stat("finews/rejected"),
            run.pages,
            f"{pages_per_second:.1f}",
        ))
    widths = [max(len(str(r[i])) for r in rows + [("spider",) + COLUMNS]) for i in range(len(COLUMNS) + 1)]
    line = lambda cells: "  ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    out = [line(("spider",) + COLUMNS)] + [line(r) for r in rows]
    reasons: dict[str, int] = {}
    for run in runs:
        for reason, count in run.rejected.items():
            reasons[reason] = reasons.get(reason, 0) + count
    if reasons:
        out.append("rejected by reason: " + ", ".join(f"{k}={v}" for k, v in sorted(reasons.items())))
    spooled = sum(run.stat("finews/db/spooled") for run in runs)
    if spooled:
        out.append(f"spooled for replay (database unavailable): {spooled}")
    if totals:
        out.append("database now holds: " + ", ".join(f"{k}={v}" for k, v in totals.items()))
    return "\n".join(out)
