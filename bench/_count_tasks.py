"""Run ``scrapy`` counting ``asyncio.create_task`` calls (for
``bench/framework_overhead.py``): ``python bench/_count_tasks.py crawl …``.
The count is printed to stderr at exit as ``create_task calls: N``."""

import asyncio
import atexit
import sys

from scrapy.cmdline import execute

_create_task = asyncio.create_task
calls = 0


def counting_create_task(*args, **kwargs):
    global calls
    calls += 1
    return _create_task(*args, **kwargs)


asyncio.create_task = counting_create_task
atexit.register(lambda: print(f"create_task calls: {calls}", file=sys.stderr, flush=True))

if __name__ == "__main__":
    execute(["scrapy", *sys.argv[1:]])
