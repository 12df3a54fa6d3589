"""What the benchmark scripts share: processes on loopback and a table."""

from __future__ import annotations

import atexit
import http.client
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from finews.core.tables import format_table  # noqa: E402
from finews.replica.site import ReplicaSite  # noqa: E402
from finews.replica.synth import PostSynthesizer  # noqa: E402
from finews.storage.db import connect, free_port  # noqa: E402


def scratch(prefix: str = "finews-bench-") -> Path:
    """A temporary folder for the run's databases and job folders, removed
    when the script exits (a million stored posts leave about 10 GB)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


@contextmanager
def replica(scale: int = 0, extra: list[str] | None = None) -> Iterator[str]:
    """``finews replica`` as its own process, so it does not share the
    crawler's CPU time in measurements; yields its URL, stops it after."""
    port = free_port()
    command = [sys.executable, "-m", "finews.cli", "replica", "--port", str(port)]
    if scale:
        command += ["--scale", str(scale)]
    process = subprocess.Popen(command + (extra or []), cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        process.stdout.readline()  # "Serving N posts at …" once it listens
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait()


def add_posts(site: str, count: int) -> None:
    urllib.request.urlopen(urllib.request.Request(f"{site}/_admin/add?n={count}", method="POST"), timeout=60).read()


def crawl(spider: str, args: list[str], env: dict, settings: list[str] | None = None,
          profile: Path | None = None) -> tuple[str, int]:
    """Run ``scrapy crawl``; return its log and its peak resident memory (KiB)."""
    command = [sys.executable]
    if profile:
        command += ["-m", "cProfile", "-o", str(profile)]
    command += ["-m", "scrapy", "crawl", spider, "-s", "LOG_LEVEL=INFO", "-s", "AUTOTHROTTLE_ENABLED=False"]
    for setting in settings or []:
        command += ["-s", setting]
    for arg in args:
        command += ["-a", arg]
    process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    log_lines = []
    for line in process.stderr:
        log_lines.append(line)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    log = "".join(log_lines)
    if process.returncode != 0:
        raise RuntimeError(f"crawl failed:\n{log[-3000:]}")
    return log, usage.ru_maxrss


def stat(log: str, key: str, default: float = 0) -> float:
    match = re.search(rf"'{re.escape(key)}': ([\d.]+)", log)
    return float(match.group(1)) if match else default


def table(title: str, header: tuple, rows: list[tuple]) -> None:
    print(f"\n{title}")
    print(format_table(header, rows, fmt=_fmt), flush=True)


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


class Timer:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start

    def elapsed(self) -> float:
        return time.perf_counter() - self.start


def synthesizer(total_hint: int) -> PostSynthesizer:
    """The replica's own sequence for ``finews replica --scale total_hint``:
    post ``i`` here is post ``i`` there."""
    return PostSynthesizer([entry.post for entry in ReplicaSite.from_folder().entries], total_hint=total_hint)


def stored_posts(posts: PostSynthesizer, start: int, count: int) -> list[dict]:
    """Posts ``start`` … as the store keeps them (cleaned, normalized, with
    their bookkeeping fields), ready for a bare ``insert_many``."""
    from finews.core.clean import clean_article
    from finews.core.normalize import normalize_post
    from finews.storage.store import utcnow

    try:
        from finews.core.model import current  # the schema version and its defaults, where the model has them
    except ImportError:
        current = dict
    now, docs = utcnow(), []
    for post in posts.batch(start, count):
        article = clean_article(post.body.split("\n\n<")[0])
        doc = normalize_post({"url": "http://127.0.0.1/x", "title": post.title, "time_text": post.date,
                              "source_url": post.link, "tags": post.tags, "category": post.category,
                              "body_html": article.body_html, "body_text": article.body_text})
        docs.append(current({**doc, "_id": doc["info_code"], "version": 1, "first_seen_at": now, "crawled_at": now}))
    return docs


def replica_ceiling(site: str, seconds: float = 3.0, clients: int = 4) -> float:
    """Post pages per second the replica serves to bare keep-alive HTTP
    clients (no parsing, no storage): the most any crawler could get."""
    home = urllib.request.urlopen(f"{site}/", timeout=30).read().decode()
    paths = re.findall(r'href="(/[^"]+/\d{4}/\d{2}/\d{2}/[^"]+\.html)"', home)
    host, port = site.removeprefix("http://").split(":")
    counts = [0] * clients
    deadline = time.perf_counter() + seconds

    def fetch(number: int) -> None:
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        while time.perf_counter() < deadline:
            connection.request("GET", paths[counts[number] % len(paths)])
            connection.getresponse().read()
            counts[number] += 1
        connection.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=fetch, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.perf_counter() - started)


def insert_ceiling(uri: str, docs: list[dict], batch: int = 100) -> float:
    """Documents per second a bare ``insert_many`` stores, in batches: the
    database's own limit for the same documents."""
    with connect(uri) as client:
        client.drop_database("bench_ceiling")
        collection = client.bench_ceiling.posts
        started = time.perf_counter()
        for first in range(0, len(docs), batch):
            collection.insert_many([dict(d) for d in docs[first:first + batch]], ordered=False)
        seconds = time.perf_counter() - started
        client.drop_database("bench_ceiling")
    return len(docs) / seconds
