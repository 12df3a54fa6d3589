"""The job lease against the real server: exactly one winner however the
contenders are timed, stale leases taken over once, lost leases noticed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from finews.core.exits import EXIT_LOCKED
from finews.replica.faults import FaultPlan
from finews.replica.server import ReplicaServer
from finews.replica.site import ReplicaSite
from finews.storage.db import connect
from finews.storage.lease import Lease
from tests.conftest import CORPUS, ROOT

TRIALS = 150


def race(uri: str, db_name: str, trials: int, lease_class=Lease, contenders: int = 2) -> list[int]:
    """Start ``contenders`` acquisitions of one free lease together, each with
    its own client, ``trials`` times; the number of winners of each trial."""
    clients = [connect(uri) for _ in range(contenders)]
    try:
        for client in clients:
            client.admin.command("ping")
        winners = []
        for trial in range(trials):
            key = f"job-{trial}"
            barrier = threading.Barrier(contenders)
            results: list = [None] * contenders

            def contend(i: int, key: str, owner: str, barrier: threading.Barrier, results: list) -> None:
                lease = lease_class(clients[i][db_name], key, owner, 60)
                barrier.wait()
                results[i] = lease.acquire()

            threads = [threading.Thread(target=contend, args=(i, key, f"run-{trial}-{i}", barrier, results))
                       for i in range(contenders)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            winners.append(sum(result is not None for result in results))
        return winners
    finally:
        for client in clients:
            client.close()


@pytest.mark.slow
def test_two_contenders_for_a_free_lease_never_both_win(mongo_uri, db):
    winners = race(mongo_uri, db.name, TRIALS)
    assert winners == [1] * TRIALS, f"{sum(w > 1 for w in winners)} double winners in {TRIALS} trials"
    assert db.locks.count_documents({}) == TRIALS


def test_two_takers_of_a_stale_lease_never_both_win(mongo_uri, db):
    past = datetime.now(UTC) - timedelta(minutes=1)
    for trial in range(30):
        db.locks.insert_one({"_id": f"stale-{trial}", "owner": "gone", "host": "elsewhere", "pid": 1,
                             "expires_at": past})
    clients = [connect(mongo_uri) for _ in range(2)]
    try:
        for trial in range(30):
            barrier = threading.Barrier(2)
            results: list = [None, None]

            def take(i: int, key: str, barrier: threading.Barrier, results: list) -> None:
                lease = Lease(clients[i][db.name], key, f"taker-{i}", 60)
                barrier.wait()
                results[i] = lease.acquire()

            threads = [threading.Thread(target=take, args=(i, f"stale-{trial}", barrier, results)) for i in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert sum(r is not None for r in results) == 1, results
            assert next(r for r in results if r)["owner"] == "gone"
    finally:
        for client in clients:
            client.close()


MS = timedelta(milliseconds=1)  # BSON dates keep milliseconds


def test_the_lease_written_lasts_its_ttl_from_now_and_a_renewal_extends_it(db):
    holder = Lease(db, "job", "run-a", 60)
    before = datetime.now(UTC)
    assert holder.acquire() == {}
    after = datetime.now(UTC)
    written = db.locks.find_one({"_id": "job"})
    assert (written["owner"], written["ttl_seconds"]) == ("run-a", 60)
    assert before + timedelta(seconds=60) - MS <= written["expires_at"] <= after + timedelta(seconds=60)

    time.sleep(0.05)
    before = datetime.now(UTC)
    assert holder.renew()
    after = datetime.now(UTC)
    renewed = db.locks.find_one({"_id": "job"})["expires_at"]
    assert before + timedelta(seconds=60) - MS <= renewed <= after + timedelta(seconds=60)
    assert renewed > written["expires_at"]


class Clock:
    """``datetime`` as the lease module sees it, at a time the test sets."""

    now_value = datetime(2030, 1, 1, tzinfo=UTC)

    @classmethod
    def now(cls, tz=None):
        return cls.now_value


def test_a_lease_is_free_exactly_when_its_ttl_has_passed_since_its_last_renewal(db, monkeypatch):
    """The expiry is the holder's TTL, counted from its last renewal, on a
    clock the test moves: no sleeping, the same on a slow machine."""
    import finews.storage.lease as lease_module
    monkeypatch.setattr(lease_module, "datetime", Clock)
    start = datetime(2030, 1, 1, tzinfo=UTC)
    monkeypatch.setattr(Clock, "now_value", start)
    holder = Lease(db, "job", "run-a", 30)
    holder.host = "another-host"  # its pid means nothing here: only the TTL can free it
    assert holder.acquire() == {}
    other = Lease(db, "job", "run-b", 60)

    Clock.now_value = start + timedelta(seconds=20)
    assert other.acquire() is None
    assert holder.renew()  # now held until start + 50 s
    Clock.now_value = start + timedelta(seconds=49)
    assert other.acquire() is None  # past the first TTL, within the renewed one
    Clock.now_value = start + timedelta(seconds=51)
    taken = other.acquire()
    assert (taken["owner"], taken["expires_at"]) == ("run-a", start + timedelta(seconds=50))
    assert not holder.renew()  # the holder learns it lost the lease
    assert db.locks.find_one({"_id": "job"})["expires_at"] == start + timedelta(seconds=51 + 60)


def test_the_holder_acquiring_again_keeps_its_lease(db):
    lease = Lease(db, "job", "run-a", 60)
    assert lease.acquire() == {} and lease.acquire() == {}
    assert Lease(db, "job", "run-b", 60).acquire() is None


def _crawl_command(site: str) -> list[str]:
    return [sys.executable, "-m", "scrapy", "crawl", "category", "-a", f"site={site}"]


def _crawl_env(mongo_uri, db, tmp_path, **extra) -> dict:
    return {**os.environ, "MONGO_URI": mongo_uri, "MONGO_DATABASE": db.name, "FINEWS_AUTOTHROTTLE": "0",
            "FINEWS_DATA_DIR": str(tmp_path / "var"), "FINEWS_CONCURRENT_REQUESTS": "2", **extra}


@pytest.mark.slow
def test_two_crawls_of_one_job_started_together_one_runs_one_exits_75(mongo_uri, db, tmp_path):
    plan = FaultPlan.parse("slow=1.0", slow_seconds=0.2)
    with ReplicaServer(ReplicaSite.from_folder(CORPUS), faults=plan) as server:
        for trial in range(3):
            env = _crawl_env(mongo_uri, db, tmp_path / str(trial), FINEWS_RESUMABLE="0")
            pair = [subprocess.Popen(_crawl_command(server.url), cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True) for _ in range(2)]
            codes = sorted(p.returncode for p in pair if p.communicate(timeout=300) is not None)
            assert codes == [0, EXIT_LOCKED], f"trial {trial}: exit codes {codes}"
            assert db.locks.count_documents({}) == 0


@pytest.mark.slow
def test_the_lease_of_a_run_killed_on_another_host_expires_after_the_configured_ttl(mongo_uri, db, tmp_path):
    plan = FaultPlan.parse("slow=1.0", slow_seconds=0.3)
    env = _crawl_env(mongo_uri, db, tmp_path, FINEWS_LOCK_TTL="10")
    with ReplicaServer(ReplicaSite.from_folder(CORPUS), faults=plan) as server:
        victim = subprocess.Popen(_crawl_command(server.url), cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while db.locks.count_documents({}) == 0:
            assert time.monotonic() < deadline and victim.poll() is None
            time.sleep(0.1)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        killed = datetime.now(UTC)
        # As if it had run elsewhere: its pid tells this host nothing.
        db.locks.update_one({}, {"$set": {"host": "another-host"}})
        lease = db.locks.find_one()
        assert lease["ttl_seconds"] == 10
        assert timedelta(0) < lease["expires_at"] - killed <= timedelta(seconds=10)
        # Milliseconds after the kill, the lease still holds (the product's own check).
        assert Lease(db, lease["_id"], "probe", 10).acquire() is None
        early = subprocess.run(_crawl_command(server.url), cwd=ROOT, env=env, capture_output=True, text=True,
                               timeout=300)
        ended = datetime.now(UTC)
        refused = early.returncode == EXIT_LOCKED and "is already running" in early.stderr
        took_over = early.returncode == 0 and "Took over the lease of run" in early.stderr
        if ended < lease["expires_at"]:
            assert refused, early.stderr[-2000:]
        else:  # a machine too slow to start a crawl within the TTL: either answer, each told right
            assert refused or took_over, early.stderr[-2000:]
        taker = early
        if refused:
            while datetime.now(UTC) < lease["expires_at"]:
                time.sleep(0.2)
            taker = subprocess.run(_crawl_command(server.url), cwd=ROOT, env=env, capture_output=True, text=True,
                                   timeout=300)
    assert taker.returncode == 0, taker.stderr[-2000:]
    assert "Took over the lease of run" in taker.stderr
    assert db.posts.count_documents({}) == 49
