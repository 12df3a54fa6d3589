"""Plain-text tables for the terminal (run summaries, stats, benchmarks)."""

from __future__ import annotations

from collections.abc import Callable, Sequence


def format_table(header: Sequence[object], rows: Sequence[Sequence[object]],
                 fmt: Callable[[object], str] | None = None) -> str:
    """Columns of numbers align right, everything else left; ``fmt`` turns a
    cell into text (default: numbers as they are, floats to one decimal)."""
    fmt = fmt or _plain
    numeric = [bool(rows) and all(row[i] is None or isinstance(row[i], (int, float)) for row in rows)
               for i in range(len(header))]
    cells = [[str(h) for h in header]] + [[fmt(value) for value in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row: list[str]) -> str:
        cells = zip(row, widths, numeric, strict=False)
        return "  ".join(c.rjust(w) if right else c.ljust(w) for c, w, right in cells).rstrip()

    return "\n".join([line(cells[0]), "  ".join("-" * w for w in widths), *(line(row) for row in cells[1:])])


def _plain(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)
