"""Every retry, back-off and give-up rule of a crawl, declared once.

One frozen policy per kind of failure: fetching a page (``HTTP``), writing to
the database (``DATABASE``), the job's lease (``LEASE``) and the signing child
(``SIGNING``). The values here are the defaults; the settings and environment
variables named beside them (``docs/operations.md``, "Tuning") override them.
``crawler/settings.py``, the store, the lease, the signer, the middlewares,
the pipeline and the reasons table all read them from here.

Plain Python: no Scrapy, Twisted or pymongo (``tests/test_layers.py``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HttpRetry:
    """Fetching a page (Scrapy's ``RetryMiddleware`` and ours)."""

    # Server trouble that a later attempt may not meet: 5xx from the origin or
    # Cloudflare (522, 524), a request timeout, and rate limiting.
    codes: tuple[int, ...] = (500, 502, 503, 504, 522, 524, 408, 429)
    # The codes whose Retry-After is waited for: coming back at once would only be refused again.
    retry_after_codes: tuple[int, ...] = (429, 503)
    # Attempts after the first (``RETRY_TIMES``, ``FINEWS_RETRY_TIMES``).
    times: int = 5
    # Seconds a Retry-After is honoured at most (``FINEWS_RETRY_AFTER_MAX``):
    # a server asking for an hour must not stall the crawl for an hour.
    retry_after_max: float = 120.0


@dataclass(frozen=True)
class DatabaseRetry:
    """Writing to MongoDB (``finews.storage.store``) and the crawl's breaker
    (``crawler/database.py``)."""

    # Tries of one write on a transient error (a lost connection, an
    # election) before the batch is spooled (``MONGO_RETRY_ATTEMPTS``).
    attempts: int = 5
    # Exponential back-off between tries: first wait, doubling, capped
    # (``MONGO_RETRY_MAX_WAIT``); five tries span an election (~10 s).
    first_wait: float = 0.2
    max_wait: float = 8.0
    # Compare-and-swap rounds of one revision before another crawler's
    # concurrent revisions win; each lost round means a newer text is stored.
    revise_attempts: int = 5
    # Seconds every component treats the database as down after an outage,
    # instead of each waiting out the server-selection timeout (``MONGO_OUTAGE_COOLDOWN``).
    outage_cooldown: float = 30.0
    # Server selection and connect timeout in ms (``MONGO_TIMEOUT_MS``).
    timeout_ms: int = 10_000


@dataclass(frozen=True)
class LeaseRetry:
    """One run of a job at a time (``finews.storage.lease``)."""

    # Seconds a lease outlives a killed holder on another host (``FINEWS_LOCK_TTL``).
    ttl: float = 900.0
    # Renewals per TTL: two renewals may fail (a short outage) before the lease lapses.
    renewals_per_ttl: int = 3
    # The shortest renewal interval, in seconds, whatever the TTL.
    min_renew_every: float = 1.0
    # Tries to take a lease that is released between our insert and our read.
    acquire_attempts: int = 3

    def renew_every(self, ttl: float) -> float:
        return max(self.min_renew_every, ttl / self.renewals_per_ttl)


@dataclass(frozen=True)
class SigningRetry:
    """The near-duplicate signing child (``finews.storage.signing``). It is
    never restarted: a child that dies, hangs or answers nonsense once is
    stopped, and this batch and every later one is signed in the crawl's own
    process (slower, never lost)."""

    # Seconds a batch may take: 100 posts take ~0.03 s, so this means stuck.
    timeout: float = 60.0
    # Plus this per million characters of text: a huge article is slow to sign anywhere (~4 s here).
    seconds_per_million_characters: float = 30.0
    # Seconds a child is given to exit at the end of its input before it is killed.
    stop_wait: float = 5.0
    # Children started per crawl beyond the first (none: see above).
    restarts: int = 0


HTTP = HttpRetry()
DATABASE = DatabaseRetry()
LEASE = LeaseRetry()
SIGNING = SigningRetry()


def spoken_codes(codes: tuple[int, ...] = HTTP.codes) -> str:
    """``500, 502 and 503``: the codes as the docs list them."""
    words = [str(code) for code in codes]
    return ", ".join(words[:-1]) + " and " + words[-1] if len(words) > 1 else "".join(words)
