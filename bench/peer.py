"""finews against the project a user would otherwise build, and ``scrapy
bench``, on the same replica and the same embedded database, in one run.

    python bench/peer.py [--posts 3000] [--repeats 3] [--bench-seconds 10]

The peer is ``bench/peer_project``: what ``scrapy startproject`` writes, one
spider that reads the replica's post pages (parsel for title, date and
``<section>``) and the MongoPipeline of Scrapy's docs (``insert_one`` per
item), 16 concurrent requests as finews. Each repetition runs finews's
``category`` crawl, the peer's crawl (each into a fresh embedded SecantusDB)
and ``scrapy bench``, order rotating, so all see the same load; ratios are
taken per repetition, min / median / max printed. Beside pages/s: CPU
seconds per page of the crawler (its main thread, its other threads: the
writer and pymongo's), of finews's signing child, and of the database
server, sampled from /proc (psutil). Asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading

import psutil
from _common import ROOT, replica, scratch, stat, table
from end_to_end import scrapy_bench

from finews.storage.db import EmbeddedMongo

PEER = ROOT / "bench" / "peer_project"


def _cpu(times) -> float:
    return times.user + times.system


def run(command: list[str], cwd, env: dict) -> tuple[str, dict[str, float]]:
    """Run a crawl; its log and CPU seconds: ``main`` thread, ``threads``
    (the others), ``children`` (the signing process), sampled until it exits."""
    process = subprocess.Popen(command, cwd=cwd, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    seen: dict[str, float] = {"main": 0.0, "threads": 0.0}
    children: dict[int, float] = {}
    done = threading.Event()

    def sample() -> None:
        watched = psutil.Process(process.pid)
        while not done.is_set():
            try:
                threads = {t.id: t.user_time + t.system_time for t in watched.threads()}
                seen["main"] = threads.get(process.pid, seen["main"])
                seen["threads"] = max(seen["threads"], sum(v for k, v in threads.items() if k != process.pid))
                for child in watched.children(recursive=True):
                    children[child.pid] = max(children.get(child.pid, 0.0), _cpu(child.cpu_times()))
            except psutil.Error:
                pass
            done.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    log = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    done.set()
    sampler.join()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{command[:6]} failed:\n{log[-3000:]}")
    own = usage.ru_utime + usage.ru_stime  # the process alone: reaped children are in RUSAGE_CHILDREN
    # The last sample misses the end; what the crawler spent after it goes to its main thread.
    seen["main"] = max(seen["main"], own - seen["threads"])
    seen["children"] = sum(children.values())
    return log, seen


def crawl(kind: str, site: str, work, number: int) -> dict:
    """One crawl into a fresh embedded database: pages/s, pages, CPU seconds."""
    with EmbeddedMongo(work / f"db-{kind}-{number}") as database:
        if kind == "finews":
            command = [sys.executable, "-m", "scrapy", "crawl", "category", "-s", "LOG_LEVEL=INFO",
                       "-s", "AUTOTHROTTLE_ENABLED=False", "-a", f"site={site}"]
            env, cwd = {"MONGO_URI": database.uri, "MONGO_DATABASE": "bench",
                        "FINEWS_DATA_DIR": str(work / f"var-{number}")}, ROOT
        else:
            command = [sys.executable, "-m", "scrapy", "crawl", "posts", "-s", "LOG_LEVEL=INFO",
                       "-s", f"MONGO_URI={database.uri}", "-a", f"site={site}"]
            env, cwd = {"SCRAPY_SETTINGS_MODULE": "peer.settings", "PYTHONPATH": str(PEER)}, PEER
        server = psutil.Process(database.process.pid)
        before = _cpu(server.cpu_times())
        log, cpu = run(command, cwd, env)
        cpu["database"] = _cpu(server.cpu_times()) - before
    pages = stat(log, "response_received_count")
    return {"pages/s": pages / stat(log, "elapsed_time_seconds"), "pages": pages,
            "items": stat(log, "item_scraped_count"), **{k: v / pages for k, v in cpu.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--posts", type=int, default=3_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--bench-seconds", type=int, default=10, help="how long scrapy bench runs")
    args = parser.parse_args()
    work = scratch()
    runs: dict[str, list] = {"finews": [], "peer": [], "bench": []}
    order = ["finews", "peer", "bench"]
    load = os.getloadavg()[0]
    with replica(scale=args.posts) as site:
        for repeat in range(args.repeats):
            for kind in order[repeat % 3:] + order[:repeat % 3]:
                if kind == "bench":
                    pages, seconds = scrapy_bench(args.bench_seconds)
                    runs[kind].append({"pages/s": pages / seconds, "pages": pages})
                else:
                    runs[kind].append(crawl(kind, site, work, repeat))
                print(f"round {repeat + 1}: {kind} {runs[kind][-1]['pages/s']:.0f} pages/s", flush=True)
    ms = 1000
    table(f"{args.posts:,}-post replica, each crawl into a fresh embedded SecantusDB, {args.repeats} rounds, "
          f"order rotating (2 cores shared with other work: load average {load:.1f} at the start, "
          f"{os.getloadavg()[0]:.1f} at the end)",
          ("round", "run", "pages", "pages/s", "CPU ms/page: crawler main thread", "other threads",
           "signing child", "database", "total"),
          [(number + 1, kind, int(r["pages"]), r["pages/s"],
            *((r["main"] * ms, r["threads"] * ms, r["children"] * ms, r["database"] * ms,
               (r["main"] + r["threads"] + r["children"] + r["database"]) * ms) if kind != "bench" else ("-",) * 5))
           for kind in order for number, r in enumerate(runs[kind])])

    def ratio(a: str, b: str) -> tuple:
        values = sorted(x["pages/s"] / y["pages/s"] for x, y in zip(runs[a], runs[b], strict=True))
        return (f"{a} ÷ {b}", f"{values[0]:.2f}x", f"{statistics.median(values):.2f}x", f"{values[-1]:.2f}x")

    table("Ratios of pages/s, per round", ("ratio", "min", "median", "max"),
          [ratio("finews", "peer"), ratio("finews", "bench"), ratio("peer", "bench")])
    print("target: finews ÷ peer ≥ 1.2 (median)")


if __name__ == "__main__":
    main()
