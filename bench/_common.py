"""What the benchmark scripts share: processes on loopback and a table."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from finews.db import free_port  # noqa: E402
from finews.tables import format_table  # noqa: E402


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
