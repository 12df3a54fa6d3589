"""Precision and recall of near-duplicate flagging on the corpus.

    python bench/neardup_precision.py

Every post file with a body is a document (twins included, since they are
separate files with different bodies). A pair is truly near-duplicate when
the exact Jaccard similarity of its 3-gram sets is at least the threshold;
flagged pairs are those the MinHash LSH bands make candidates and whose
signature estimate passes the threshold, exactly as ``NearDuplicateIndex``
decides. Every pair with exact similarity ≥ 0.3 is listed for inspection.
"""

from __future__ import annotations

from itertools import combinations

from _common import table

from finews.core.clean import clean_article
from finews.core.minhash import THRESHOLD, band_keys, shingles, signature, similarity
from finews.core.pages import parse_post_page
from finews.replica.site import ReplicaSite


def main() -> None:
    site = ReplicaSite.from_folder()
    texts = {}
    for entry in site.entries:
        text = clean_article(parse_post_page(site.post_page(entry)).body_html).body_text
        if text:
            texts[entry.post.name.removesuffix(".md")] = text
    grams = {name: shingles(text) for name, text in texts.items()}
    sigs = {name: signature(text) for name, text in texts.items()}
    keys = {name: set(band_keys(sig)) for name, sig in sigs.items()}
    truth, flagged, listed = set(), set(), []
    for a, b in combinations(sorted(texts), 2):
        exact = len(grams[a] & grams[b]) / len(grams[a] | grams[b])
        estimate = similarity(sigs[a], sigs[b])
        is_flagged = bool(keys[a] & keys[b]) and estimate >= THRESHOLD
        if exact >= THRESHOLD:
            truth.add((a, b))
        if is_flagged:
            flagged.add((a, b))
        if exact >= 0.3 or is_flagged:
            listed.append((f"{a} ~ {b}", exact, estimate, "yes" if is_flagged else "no"))
    hits = truth & flagged
    table(f"Pairs with exact 3-gram Jaccard ≥ 0.3 among {len(texts)} corpus posts "
          f"({len(texts) * (len(texts) - 1) // 2} pairs)",
          ("pair", "exact", "estimate", "flagged"), sorted(listed, key=lambda r: -r[1]))
    precision = len(hits) / len(flagged) if flagged else 1.0
    recall = len(hits) / len(truth) if truth else 1.0
    table(f"Near-duplicate flagging at threshold {THRESHOLD}", ("measure", "value"),
          [("truly near-duplicate pairs", len(truth)), ("flagged pairs", len(flagged)),
           ("precision", f"{precision:.3f}"), ("recall", f"{recall:.3f}")])


if __name__ == "__main__":
    main()
