"""The generated tables of docs/schema.md.

``python -m finews.cli.docs --markdown fields|reasons`` prints one table;
``--write-docs [PATH]`` puts both between their markers. The tables are
rendered by the domain (``finews.core.model.markdown_table``,
``finews.core.reasons.markdown_table``); reading and rewriting the docs file
is tooling, so it lives here rather than in finews.core.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from finews.core import model, reasons

COMMAND = "python -m finews.cli.docs"
DOCS = "docs/schema.md"


@dataclass(frozen=True)
class Table:
    render: Callable[[], str]
    begin: str
    end: str


TABLES = {
    "fields": Table(model.markdown_table,
                    f"<!-- posts fields: generated from finews/core/model.py by `{COMMAND} --write-docs` -->\n",
                    "<!-- end of posts fields -->\n"),
    "reasons": Table(reasons.markdown_table,
                     f"<!-- reasons: generated from finews/core/reasons.py by `{COMMAND} --write-docs` -->\n",
                     "<!-- end of reasons -->\n"),
}


def with_table(text: str, table: Table) -> str:
    """``text`` with the part between the table's markers rendered anew
    (``ValueError`` when a marker is missing)."""
    if table.begin not in text or table.end not in text:
        raise ValueError(f"no markers {table.begin.strip()} … {table.end.strip()}")
    head, rest = text.split(table.begin, 1)
    return head + table.begin + table.render() + table.end + rest.split(table.end, 1)[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=f"the generated tables of {DOCS}")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--markdown", choices=sorted(TABLES), help=f"print one table of {DOCS}")
    action.add_argument("--write-docs", nargs="?", const=DOCS, metavar="PATH",
                        help=f"replace every table in {DOCS} (default path) between its markers")
    args = parser.parse_args(argv)
    if args.markdown:
        sys.stdout.write(TABLES[args.markdown].render())
        return 0
    path = Path(args.write_docs)
    try:
        text = path.read_text(encoding="utf-8")
        for table in TABLES.values():
            text = with_table(text, table)
        path.write_text(text, encoding="utf-8")
    except (OSError, ValueError) as error:
        print(f"{COMMAND}: cannot update {path}: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
