"""The run dashboard of ``finews serve`` (``/dashboard/``): recent runs,
posts per day as an inline SVG plot, the spool, the job leases. No script;
every value from the database is escaped."""

from __future__ import annotations

import html
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from finews.serve.api import run_summary
from finews.storage.db import CRAWL_RUNS
from finews.storage.lease import LOCKS
from finews.storage.reading import posts_per_category_and_day

PLOT_DAYS = 60


def _e(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def spool_state(folder: Path | None) -> dict:
    """Batches waiting in the spool folder (and quarantined ones)."""
    if folder is None or not folder.is_dir():
        return {"folder": str(folder) if folder else None, "batches": 0, "bytes": 0, "quarantined": 0}
    files = sorted(folder.glob("*.jsonl"))
    quarantine = folder / "quarantine"
    return {"folder": str(folder), "batches": len(files), "bytes": sum(f.stat().st_size for f in files),
            "oldest": files[0].name if files else None,
            "quarantined": len(list(quarantine.glob("*"))) if quarantine.is_dir() else 0}


def posts_per_day(db) -> list[tuple[str, int]]:
    """(Shanghai day, posts) for the last ``PLOT_DAYS`` days up to the newest post, oldest first."""
    counts: Counter[str] = Counter()
    for day, _category, posts in posts_per_category_and_day(db):
        counts[day] += posts
    if not counts:
        return []
    last = datetime.strptime(max(counts), "%Y-%m-%d")
    days = [(last - timedelta(days=n)).strftime("%Y-%m-%d") for n in range(PLOT_DAYS - 1, -1, -1)]
    return [(day, counts.get(day, 0)) for day in days]


def svg_plot(days: list[tuple[str, int]], width: int = 720, height: int = 160) -> str:
    if not days:
        return "<p>(no posts)</p>"
    top = max(count for _, count in days) or 1
    bar = width / len(days)
    bars = []
    for i, (day, count) in enumerate(days):
        h = round((height - 20) * count / top, 1)
        bars.append(f'<rect x="{i * bar:.1f}" y="{height - 20 - h}" width="{max(bar - 1, 1):.1f}" height="{h}" '
                    f'fill="#1976D2"><title>{_e(day)}: {count}</title></rect>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
            f'aria-label="posts per day">{"".join(bars)}'
            f'<text x="0" y="{height - 4}" font-size="11">{_e(days[0][0])}</text>'
            f'<text x="{width}" y="{height - 4}" font-size="11" text-anchor="end">{_e(days[-1][0])} '
            f'(max {top}/day)</text></svg>')


def render(db, spool_folder: Path | None = None, runs: int = 20) -> str:
    rows = []
    for doc in db[CRAWL_RUNS].find({}, {"stats": 0, "failed_pages": 0}).sort("started_at", -1).limit(runs):
        run = run_summary(doc)
        rejects = ", ".join(f"{_e(k)} {_e(v)}" for k, v in sorted((run.get("failures_by_reason") or {}).items()))
        rows.append(f"<tr><td>{_e(run.get('started_at'))}</td><td>{_e(run.get('spider'))}</td>"
                    f"<td>{_e(run.get('outcome'))}</td><td>{_e(run.get('stored'))}</td><td>{rejects}</td>"
                    f"<td>{_e(run.get('pages_attempted'))}</td><td>{_e(run.get('pages_per_second'))}</td></tr>")
    runs_html = ("<table><tr><th>started (UTC)</th><th>spider</th><th>outcome</th><th>stored</th>"
                 "<th>rejects by reason</th><th>pages</th><th>pages/s</th></tr>" + "".join(rows) + "</table>"
                 if rows else "<p>(no runs)</p>")
    spool = spool_state(spool_folder)
    now = datetime.now(UTC)
    leases = []
    for lock in db[LOCKS].find({}).sort("_id", 1):
        expires = lock.get("expires_at")
        live = isinstance(expires, datetime) and expires.replace(tzinfo=expires.tzinfo or UTC) > now
        leases.append(f"<tr><td>{_e(lock.get('_id'))}</td><td>{_e(lock.get('owner'))}</td><td>{_e(lock.get('host'))}"
                      f"</td><td>{_e(lock.get('pid'))}</td><td>{_e(lock.get('acquired_at'))}</td>"
                      f"<td>{_e(expires)}{'' if live else ' (expired)'}</td></tr>")
    leases_html = ("<table><tr><th>job</th><th>holder (run)</th><th>host</th><th>pid</th><th>since</th>"
                   "<th>expires</th></tr>" + "".join(leases) + "</table>" if leases else "<p>(no lease held)</p>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>finews runs</title></head><body>\n'
        f"<h1>finews runs</h1>\n<h2>Recent runs</h2>\n{runs_html}\n"
        f"<h2>Posts per day</h2>\n{svg_plot(posts_per_day(db))}\n"
        f"<h2>Spool</h2>\n<p>{_e(spool['batches'])} batches waiting ({_e(spool['bytes'])} bytes), "
        f"{_e(spool['quarantined'])} quarantined, in {_e(spool['folder'])}</p>\n"
        f"<h2>Leases</h2>\n{leases_html}\n</body></html>\n"
    )
