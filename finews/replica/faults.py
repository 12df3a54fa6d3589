"""Fault modes for the replica: what an unattended crawler meets.

``FaultPlan.parse("status500=0.1,timeout=0.05,…", seed=1)`` gives each mode a
probability. The fault for a request is drawn from the seed, the path and how
many times that path was asked for, so a run repeats exactly and a retry can
succeed where the first attempt failed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

MODES = (
    "status500",         # 500 Internal Server Error
    "status503",         # 503 with Retry-After
    "status429",         # 429 Too Many Requests with Retry-After
    "timeout",           # no answer until the client gives up
    "truncate",          # body cut mid-tag, connection closed, no Content-Length
    "gbk",               # page encoded as GBK, with or without a charset header
    "garbage",           # a non-HTML binary body
    "redirect_offsite",  # 302 to a host outside the site
    "slow",              # answers, but late
    "oversize",          # a page far larger than any real one
    # List feeds only (finews/replica/feeds.py); other pages are served as usual.
    "feed_bad_json",     # the feed's JSON cut in half
    "feed_no_items",     # an error object without the items key
    "feed_missing_fields",  # every third item lacks a required field
    "feed_html_error",   # an HTML error page, status 200
)
OFFSITE_HOST = "finews-offsite.invalid"  # RFC 6761: can never resolve


@dataclass
class FaultPlan:
    rates: dict[str, float] = field(default_factory=dict)
    seed: int = 0
    hang_seconds: float = 60.0
    slow_seconds: float = 1.5
    oversize_bytes: int = 12 * 1024 * 1024
    retry_after: int = 1

    @classmethod
    def parse(cls, spec: str, seed: int = 0, **options) -> FaultPlan:
        rates = {}
        for part in (p.strip() for p in (spec or "").split(",")):
            if not part:
                continue
            mode, _, rate = part.partition("=")
            if mode not in MODES:
                raise ValueError(f"unknown fault mode {mode!r}; known: {', '.join(MODES)}")
            try:
                rates[mode] = float(rate)
            except ValueError:
                raise ValueError(f"fault rate for {mode} must be a number, got {rate!r}") from None
            if not 0 <= rates[mode] <= 1:
                raise ValueError(f"fault rate for {mode} must be between 0 and 1")
        if sum(rates.values()) > 1:
            raise ValueError("fault rates add up to more than 1")
        return cls(rates, seed, **options)

    def __bool__(self) -> bool:
        return any(self.rates.values())

    def choose(self, path: str, attempt: int) -> str | None:
        """The fault for the ``attempt``-th request of ``path`` (or None)."""
        draw = random.Random(f"{self.seed}|{path}|{attempt}").random()
        edge = 0.0
        for mode in MODES:
            edge += self.rates.get(mode, 0.0)
            if draw < edge:
                return mode
        return None

    def variant(self, path: str, attempt: int) -> int:
        """A second, independent draw (e.g. GBK with or without a header)."""
        return random.Random(f"{self.seed}|{path}|{attempt}|variant").randrange(2)
