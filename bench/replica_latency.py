"""Per-request latency of the replica on one keep-alive connection.

Starts ``finews replica`` as its own process and asks for the same post page
(and the home page) over a single HTTP/1.1 connection, printing the median
and 90th percentile per request. A server that sends headers and body in two
writes without ``TCP_NODELAY`` waits for the client's delayed ACK (about
40 ms on Linux) on every response; with it a request takes about a millisecond.

    python bench/replica_latency.py [--requests 200] [--scale 0]
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import time
from urllib.parse import urlsplit

from _common import replica, table

PATHS = ["/hebeiribao/2022/03/01/NW202203012292975846.html", "/"]


def measure(url: str, path: str, requests: int) -> list[float]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    timings = []
    try:
        for _ in range(requests):
            start = time.perf_counter()
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            timings.append((time.perf_counter() - start) * 1000)
            if response.status != 200:
                raise SystemExit(f"{path}: HTTP {response.status}")
    finally:
        connection.close()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--scale", type=int, default=0, help="serve N synthesized posts instead of the corpus")
    args = parser.parse_args()
    rows = []
    with replica(args.scale) as url:
        for path in PATHS if not args.scale else ["/"]:
            timings = measure(url, path, args.requests)
            timings.sort()
            rows.append([path, args.requests, f"{statistics.median(timings):.2f}",
                         f"{timings[int(len(timings) * 0.9) - 1]:.2f}", f"{1000 / statistics.mean(timings):.0f}"])
    table("Replica latency on one keep-alive connection",
          ("path", "requests", "median ms", "p90 ms", "requests/s"), rows)


if __name__ == "__main__":
    main()
