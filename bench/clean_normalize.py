"""Clean + normalize throughput on the corpus, one core, next to trafilatura
extracting the same pages.

    python bench/clean_normalize.py [--rounds 40]

Needs the bench extra (``pip install -e '.[bench]'``) for trafilatura.
"""

from __future__ import annotations

import argparse
import contextlib
import time

from _common import table

from finews.core.clean import clean_article
from finews.core.normalize import Rejected, normalize_post
from finews.core.pages import parse_post_page
from finews.replica.site import ReplicaSite


def finews_extract(page_html: str, url: str) -> None:
    page = parse_post_page(page_html)
    article = clean_article(page.body_html)
    with contextlib.suppress(Rejected):
        normalize_post({"url": url, "title": page.title, "time_text": page.time_text, "source_url": page.source_url,
                        "tags": page.tags, "body_html": article.body_html, "body_text": article.body_text,
                        "images": article.images})


def rate(extract, pages: list[tuple[str, str]], rounds: int) -> float:
    extract(*pages[0])  # warm caches and lazy imports
    started = time.perf_counter()
    for _ in range(rounds):
        for page in pages:
            extract(*page)
    return rounds * len(pages) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    site = ReplicaSite.from_folder()
    pages = [(site.post_page(entry), "http://127.0.0.1" + entry.path) for entry in site.entries]
    ours = rate(finews_extract, pages, args.rounds)
    rows = [("finews: parse + clean + normalize", len(pages) * args.rounds, ours, "1.00x")]
    try:
        import trafilatura
    except ImportError:
        print("trafilatura is not installed: pip install -e '.[bench]'")
    else:
        theirs = rate(lambda html, url: trafilatura.extract(html, url=url), pages, max(1, args.rounds // 4))
        rows.append(("trafilatura.extract", len(pages) * max(1, args.rounds // 4), theirs, f"{theirs / ours:.2f}x"))
        print(f"ratio finews / trafilatura: {ours / theirs:.1f}x")
    table(f"Clean + normalize on the corpus ({len(pages)} post pages, one core)",
          ("extractor", "pages", "pages/s", "relative"), rows)
    print("target: finews ≥ 2,000 posts/s")


if __name__ == "__main__":
    main()
