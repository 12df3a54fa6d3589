"""Cleaning time against body size (issue 9): bodies of "& " at growing sizes.

    .venv/bin/python bench/clean_scaling.py 150000 300000 600000 6000000
"""
import sys
import time

sys.path.insert(0, ".")
from finews.core.clean import clean_article

sizes = [int(s) for s in sys.argv[1:]] or [150_000, 300_000, 600_000]
for n in sizes:
    html = "<p>" + "& " * (n // 2) + "</p>"
    t = time.perf_counter()
    a = clean_article(html)
    dt = time.perf_counter() - t
    print(f"{n:>9} chars  {dt:7.2f} s  html {len(a.body_html):>9}  text {len(a.body_text):>9}", flush=True)
