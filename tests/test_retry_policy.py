"""One retry policy per kind of failure (finews/core/retry.py), and every
place that retries reads it: Scrapy's settings, the middlewares, the store,
the pipeline, the lease, the signer, the environment defaults and the
reasons table of docs/schema.md."""

from __future__ import annotations

import pytest
from pymongo.errors import AutoReconnect, DuplicateKeyError
from scrapy.utils.test import get_crawler

from crawler.middlewares import RetryAfterMiddleware
from crawler.runner import project_settings
from crawler.spiders.category import CategorySpider
from finews.core import environment
from finews.core.reasons import Reason
from finews.core.retry import DATABASE, HTTP, LEASE, SIGNING, spoken_codes
from finews.storage.lease import LOCKS, Lease
from finews.storage.signing import SigningProcess
from finews.storage.store import PostStore
from pipelines.mongo import MongoPipeline
from tests.conftest import ROOT


def test_scrapy_retries_the_policys_http_codes():
    settings = project_settings()
    assert settings.getlist("RETRY_HTTP_CODES") == list(HTTP.codes)
    assert set(HTTP.retry_after_codes) <= set(HTTP.codes)


def test_retry_after_waits_for_the_policys_codes_and_cap():
    middleware = RetryAfterMiddleware.from_crawler(get_crawler(CategorySpider))
    assert (middleware.STATUSES, middleware.max_wait) == (HTTP.retry_after_codes, HTTP.retry_after_max)


def test_the_environment_defaults_are_the_policys():
    defaults = {name: variable.default for name, variable in environment.VARIABLES.items()}
    assert (defaults["FINEWS_RETRY_TIMES"], defaults["FINEWS_RETRY_AFTER_MAX"]) == (HTTP.times, HTTP.retry_after_max)
    assert (defaults["MONGO_RETRY_ATTEMPTS"], defaults["MONGO_RETRY_MAX_WAIT"], defaults["MONGO_OUTAGE_COOLDOWN"],
            defaults["MONGO_TIMEOUT_MS"]) == (DATABASE.attempts, DATABASE.max_wait, DATABASE.outage_cooldown,
                                              DATABASE.timeout_ms)
    assert defaults["FINEWS_LOCK_TTL"] == LEASE.ttl


def _tries(store: PostStore) -> tuple[int, list[float]]:
    """Calls of an always-failing write through the store's retries, and the waits between them."""
    calls, waits = [], []
    store._retrying = store._retrying.copy(sleep=waits.append)

    def down():
        calls.append(1)
        raise AutoReconnect("down")

    with pytest.raises(AutoReconnect):
        store._call(down)
    return len(calls), waits


def test_the_store_gives_up_after_the_policys_attempts(db):
    calls, waits = _tries(PostStore(db))
    assert calls == DATABASE.attempts
    assert waits == [min(DATABASE.first_wait * 2 ** n, DATABASE.max_wait) for n in range(DATABASE.attempts - 1)]


def test_the_pipeline_hands_the_store_the_policy_unless_set(db):
    pipeline = MongoPipeline.from_crawler(get_crawler(CategorySpider))
    assert (pipeline.retry_attempts, pipeline.retry_max_wait) == (DATABASE.attempts, DATABASE.max_wait)
    pipeline = MongoPipeline.from_crawler(get_crawler(CategorySpider, {"MONGO_RETRY_ATTEMPTS": 2}))
    assert _tries(PostStore(db, pipeline.retry_attempts, pipeline.retry_max_wait))[0] == 2


def test_a_lease_released_under_its_taker_is_tried_the_policys_times():
    class Vanishing:
        """A lease that is always there to refuse the insert, and gone when read."""

        def __init__(self):
            self.inserts = 0

        def insert_one(self, document):
            self.inserts += 1
            raise DuplicateKeyError("taken")

        def find_one(self, query):
            return None

    locks = Vanishing()
    assert Lease({LOCKS: locks}, "job", "me", LEASE.ttl).acquire() is None
    assert locks.inserts == LEASE.acquire_attempts


def test_the_signer_waits_the_policys_timeout():
    assert SigningProcess().timeout == SIGNING.timeout


def test_the_reasons_and_their_docs_list_the_policys_codes():
    listed = spoken_codes(HTTP.codes)
    assert all(str(code) in listed for code in HTTP.codes)
    assert listed in Reason.HTTP.meaning
    assert listed in (ROOT / "docs" / "schema.md").read_text(encoding="utf-8")
