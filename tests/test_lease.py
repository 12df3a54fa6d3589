"""The job lease against the real server: exactly one winner however the
contenders are timed, stale leases taken over once, lost leases noticed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from finews.storage.db import connect
from finews.core.jobs import EXIT_LOCKED
from finews.storage.lease import Lease
from finews.replica.faults import FaultPlan
from finews.replica.server import ReplicaServer
from finews.replica.site import ReplicaSite
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

            def contend(i: int) -> None:
                lease = lease_class(clients[i][db_name], key, f"run-{trial}-{i}", 60)
                barrier.wait()
                results[i] = lease.acquire()

            threads = [threading.Thread(target=contend, args=(i,)) for i in range(contenders)]
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
    past = datetime.now(timezone.utc) - timedelta(minutes=1)
    for trial in range(30):
        db.locks.insert_one({"_id": f"stale-{trial}", "owner": "gone", "host": "elsewhere", "pid": 1,
                             "expires_at": past})
    clients = [connect(mongo_uri) for _ in range(2)]
    try:
        for trial in range(30):
            barrier = threading.Barrier(2)
            results: list = [None, None]

            def take(i: int) -> None:
                lease = Lease(clients[i][db.name], f"stale-{trial}", f"taker-{i}", 60)
                barrier.wait()
                results[i] = lease.acquire()

            threads = [threading.Thread(target=take, args=(i,)) for i in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert sum(r is not None for r in results) == 1, results
            assert [r for r in results if r][0]["owner"] == "gone"
    finally:
        for client in clients:
            client.close()


def test_a_lease_expires_after_its_holders_ttl(db):
    holder = Lease(db, "job", "run-a", 0.5)
    holder.host = "another-host"  # its pid means nothing here: only the TTL can free it
    assert holder.acquire() == {}
    other = Lease(db, "job", "run-b", 60)
    assert other.acquire() is None
    stored = db.locks.find_one({"_id": "job"})
    assert stored["ttl_seconds"] == 0.5
    db.locks.update_one({"_id": "job"}, {"$set": {"expires_at": datetime.now(timezone.utc) - timedelta(seconds=1)}})
    assert other.acquire()["owner"] == "run-a"
    assert not holder.renew()  # the holder learns it lost the lease


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
        # As if it had run elsewhere: its pid tells this host nothing.
        db.locks.update_one({}, {"$set": {"host": "another-host"}})
        lease = db.locks.find_one()
        assert lease["ttl_seconds"] == 10
        early = subprocess.run(_crawl_command(server.url), cwd=ROOT, env=env, capture_output=True, text=True,
                               timeout=300)
        if datetime.now(timezone.utc) < lease["expires_at"]:  # not a machine too slow to tell
            assert early.returncode == EXIT_LOCKED, early.stderr[-2000:]
            assert "is already running" in early.stderr
        while datetime.now(timezone.utc) < lease["expires_at"]:
            time.sleep(0.2)
        later = subprocess.run(_crawl_command(server.url), cwd=ROOT, env=env, capture_output=True, text=True,
                               timeout=300)
    assert later.returncode == 0, later.stderr[-2000:]
    assert "Took over the lease of run" in later.stderr
    assert db.posts.count_documents({}) == 49
