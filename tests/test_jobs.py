"""Scheduled jobs: run records, one run of a job at a time, resume after kill -9."""

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest

from crawler.jobs import job_key
from finews.core.exits import EXIT_LOCKED
from finews.replica.faults import FaultPlan
from finews.replica.server import ReplicaServer
from finews.replica.site import ReplicaSite
from finews.storage.lease import Lease
from tests.conftest import CORPUS, ROOT
from tests.test_crawl import stat


def _command(site, *args):
    command = [sys.executable, "-m", "scrapy", "crawl", "category", "-a", f"site={site}"]
    for arg in args:
        command += ["-a", arg]
    return command


def _env(mongo_uri, db, tmp_path, **extra):
    return {**os.environ, "MONGO_URI": mongo_uri, "MONGO_DATABASE": db.name, "FINEWS_DATA_DIR": str(tmp_path / "var"),
            "FINEWS_AUTOTHROTTLE": "0", **extra}


def test_every_run_leaves_a_record(crawl, replica, db):
    crawl("category", f"site={replica.url}")
    run = db.crawl_runs.find_one()
    assert (run["spider"], run["outcome"], run["finish_reason"]) == ("category", "clean", "finished")
    assert run["arguments"] == {"site": replica.url}
    assert run["job"] == job_key("category", {"site": replica.url})
    assert run["ended_at"] >= run["started_at"]
    # The init post has no article link (Jekyll does not publish the dateless file).
    assert run["failures_by_reason"] == {"missing_link": 1}
    assert {p["reason"] for p in run["failed_pages"]} == {"missing_link"}
    assert run["stats"]["finews/posts/inserted"] == 49 and run["pages_attempted"] >= 68
    assert db.locks.count_documents({}) == 0  # released


def test_a_run_that_fetched_nothing_is_failed_and_lists_its_pages(crawl, db):
    plan = FaultPlan.parse("status500=1.0")
    with ReplicaServer(ReplicaSite.from_folder(CORPUS), faults=plan) as server:
        result = crawl("category", f"site={server.url}", "categories=hebeiribao", check=False)
    assert result.returncode == 1
    run = db.crawl_runs.find_one()
    assert run["outcome"] == "failed"
    assert run["failed_pages"] == [{"url": f"{server.url}/category/hebeiribao.html", "reason": "http_500"}]


def test_a_run_with_some_failed_pages_is_partial_and_lists_them(crawl, db):
    plan = FaultPlan.parse("status500=0.3", seed=1)
    with ReplicaServer(ReplicaSite.from_folder(CORPUS), faults=plan) as server:
        result = crawl("category", f"site={server.url}", env={"FINEWS_RETRY_TIMES": "0"})
    assert result.returncode == 0
    run = db.crawl_runs.find_one()
    assert run["outcome"] == "partial" and db.posts.count_documents({}) > 0
    assert run["failed_pages"] and {p["reason"] for p in run["failed_pages"]} <= {"http_500", "missing_title",
                                                                                  "missing_link"}


def _job_files(tmp_path) -> set[str]:
    """Everything in the data folder's jobs/."""
    jobs = tmp_path / "var" / "jobs"
    return {p.relative_to(jobs).as_posix() for p in jobs.rglob("*")} if jobs.is_dir() else set()


@pytest.mark.slow
@pytest.mark.parametrize("database", ["up", "down"])
def test_a_second_run_of_the_same_job_exits_at_once_and_touches_nothing(mongo_uri, db, tmp_path, database):
    """Started three times while the first run crawls slowly, the same job
    exits 75 each time without reading or moving anything in the running
    job's folder, also with the database (and so the lease) away."""
    plan = FaultPlan.parse("slow=1.0", slow_seconds=0.3)
    extra = {} if database == "up" else {"MONGO_URI": "mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=300",
                                         "MONGO_TIMEOUT_MS": "300"}
    env = {**_env(mongo_uri, db, tmp_path, FINEWS_CONCURRENT_REQUESTS="1"), **extra}
    queue, site = None, ReplicaSite.from_folder(CORPUS)
    with ReplicaServer(site, faults=plan) as server:
        first = subprocess.Popen(_command(server.url), cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while not any("/requests.queue/" in name for name in _job_files(tmp_path)) or sum(server.attempts.values()) < 5:
            assert time.monotonic() < deadline and first.poll() is None
            time.sleep(0.1)
        seconds = []
        for _ in range(3):
            started = time.monotonic()
            second = subprocess.run(_command(server.url), cwd=ROOT, env=env, capture_output=True, text=True)
            seconds.append(time.monotonic() - started)
            assert second.returncode == EXIT_LOCKED, second.stderr[-2000:]
            assert "is already running" in second.stderr
            assert not [name for name in _job_files(tmp_path) if ".corrupt-" in name]
        queue = _job_files(tmp_path)
        first_log = first.communicate(timeout=300)[1]
    assert max(seconds) < 30
    assert first.returncode == 0, first_log[-2000:]
    assert "Traceback" not in first_log and "FileNotFoundError" not in first_log
    assert stat(first_log, "finews/post_pages") == len(site.entries)  # every post page the site has
    assert queue and not [name for name in _job_files(tmp_path) if ".corrupt-" in name]
    if database == "up":
        assert [r["outcome"] for r in db.crawl_runs.find()] == ["clean"]
        assert db.posts.count_documents({}) == 49
    else:
        assert stat(first_log, "finews/db/spooled") >= 49


@pytest.mark.slow
def test_a_run_that_loses_its_lease_stops_and_closes_as_locked(mongo_uri, db, tmp_path):
    plan = FaultPlan.parse("slow=1.0", slow_seconds=0.3)
    env = _env(mongo_uri, db, tmp_path, FINEWS_CONCURRENT_REQUESTS="1", FINEWS_LOCK_TTL="3")
    with ReplicaServer(ReplicaSite.from_folder(CORPUS), faults=plan) as server:
        run = subprocess.Popen(_command(server.url), cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while db.locks.count_documents({}) == 0:
            assert time.monotonic() < deadline and run.poll() is None
            time.sleep(0.1)
        # The lease expired unnoticed and another run took it.
        db.locks.update_one({}, {"$set": {"owner": "thief", "host": "elsewhere",
                                          "expires_at": datetime.now(UTC) + timedelta(hours=1)}})
        stolen = time.monotonic()
        log = run.communicate(timeout=300)[1]
        stopped_after = time.monotonic() - stolen
    assert run.returncode == EXIT_LOCKED, log[-3000:]
    assert "Lost the lease of job" in log and stopped_after < 20
    assert stat(log, "finews/post_pages") < 49
    assert db.crawl_runs.find_one()["outcome"] == "locked"
    assert db.locks.find_one()["owner"] == "thief"  # the winner's lease is left alone


def test_an_expired_lease_is_taken_over(crawl, replica, db):
    key = job_key("category", {"site": replica.url})
    past = datetime.now(UTC) - timedelta(minutes=1)
    db.locks.insert_one({"_id": key, "owner": "gone", "host": "elsewhere", "pid": 1, "expires_at": past})
    db.crawl_runs.insert_one({"_id": "gone", "job": key, "outcome": "running"})
    result = crawl("category", f"site={replica.url}")
    assert "Took over the lease of run gone" in result.stderr
    assert db.crawl_runs.find_one({"_id": "gone"})["outcome"] == "abandoned"
    assert db.posts.count_documents({}) == 49


def test_a_live_lease_is_respected_until_it_expires(db):
    holder, other = Lease(db, "job", "run-a", 60), Lease(db, "job", "run-b", 60)
    assert holder.acquire() == {}
    assert other.acquire() is None
    assert holder.renew() and not other.renew()
    holder.release()
    assert other.acquire() == {}


def _settled_count(collection, quiet: float = 1.0) -> int:
    """The count once the server has finished the writes a killed client
    sent before it died (they still land after the client is gone)."""
    count = collection.count_documents({})
    while True:
        time.sleep(quiet)
        again = collection.count_documents({})
        if again == count:
            return count
        count = again


@pytest.mark.slow
def test_kill_9_then_the_same_command_stores_every_post_once(mongo_uri, db, tmp_path):
    site = ReplicaSite.scaled(1200)
    env = _env(mongo_uri, db, tmp_path, FINEWS_CONCURRENT_REQUESTS="2", MONGO_BATCH_SIZE="10")
    with ReplicaServer(site) as server:
        command = _command(server.url)
        victim = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while db.posts.count_documents({}) < 300:
            assert time.monotonic() < deadline and victim.poll() is None, "the crawl did not get going"
            time.sleep(0.1)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        stored_at_kill = _settled_count(db.posts)
        assert stored_at_kill < 1200
        rerun = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    # Scrapy writes JOBDIR state only on a clean stop; after kill -9 the rerun
    # re-walks the listings and the skip-known check finds what is missing.
    assert "Took over the lease" in rerun.stderr  # the killed run's lease, at once
    assert {d["_id"] for d in db.posts.find({}, {"_id": 1})} == {e.post.raw_code for e in site.entries}
    assert stat(rerun.stderr, "finews/posts/inserted") == 1200 - stored_at_kill
    assert sorted(r["outcome"] for r in db.crawl_runs.find()) == ["abandoned", "clean"]


@pytest.mark.slow
def test_sigterm_then_the_same_command_resumes_from_jobdir(mongo_uri, db, tmp_path):
    site = ReplicaSite.scaled(1200)
    env = _env(mongo_uri, db, tmp_path, FINEWS_CONCURRENT_REQUESTS="2", MONGO_BATCH_SIZE="10")
    with ReplicaServer(site) as server:
        command = _command(server.url)
        stopped = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                   text=True)
        deadline = time.monotonic() + 120
        while db.posts.count_documents({}) < 300:
            assert time.monotonic() < deadline and stopped.poll() is None, "the crawl did not get going"
            time.sleep(0.1)
        stopped.send_signal(signal.SIGTERM)  # what cron, systemd and Kubernetes send
        stopped_log = stopped.communicate(timeout=300)[1]
        resumed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert stopped.returncode != 0 and stat(stopped_log, "finews/post_pages") < 1200
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Resuming crawl" in resumed.stderr  # the queue this job left in its JOBDIR
    assert {d["_id"] for d in db.posts.find({}, {"_id": 1})} == {e.post.raw_code for e in site.entries}
    assert sorted(r["outcome"] for r in db.crawl_runs.find()) == ["clean", "interrupted"]


def _job_settings(jobdir):
    from scrapy.settings import Settings

    return Settings({"JOBDIR": str(jobdir)})


def test_unreadable_saved_state_is_moved_aside_and_a_good_one_kept(tmp_path, caplog):
    import pickle

    from crawler.runner import salvage_job_dir

    good, bad = tmp_path / "good", tmp_path / "bad"
    good.mkdir(), bad.mkdir()
    (good / "spider.state").write_bytes(pickle.dumps({"seen": 3}, protocol=4))
    (bad / "spider.state").write_bytes(b"")  # a failed start, or kill -9 during the write
    assert salvage_job_dir(_job_settings(good)) == []
    moved = salvage_job_dir(_job_settings(bad))
    assert [path.name.split("-")[0] for path in moved] == ["spider.state.corrupt"]
    assert not (bad / "spider.state").exists() and moved[0].read_bytes() == b""
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "EOFError" in warnings[0].getMessage()


def test_a_disk_queue_left_stale_by_kill_9_is_moved_aside(tmp_path):
    """Scrapy's LIFO disk queue (queuelib) writes its count only at close:
    after a kill -9 of a resumed run the count no longer matches the records."""
    from queuelib import LifoDiskQueue

    from crawler.runner import salvage_job_dir

    folder = tmp_path / "requests.queue" / "127.0.0.1-slot"
    folder.mkdir(parents=True)
    (tmp_path / "requests.queue" / "active.json").write_text('{"127.0.0.1-slot": [0]}')
    queue = LifoDiskQueue(folder / "0")
    for n in range(5):
        queue.push(b"request %d" % n)
    queue.close()  # a clean stop: count 5
    assert salvage_job_dir(_job_settings(tmp_path)) == []
    resumed = LifoDiskQueue(folder / "0")
    resumed.pop(), resumed.pop()
    resumed.f.flush()  # killed here: the file holds 3, its count still says 5
    moved = salvage_job_dir(_job_settings(tmp_path))
    assert [path.name.split("-")[0] for path in moved] == ["requests.queue.corrupt"]
    assert not (tmp_path / "requests.queue").exists()


def test_a_torn_queue_state_file_is_moved_aside(tmp_path):
    from crawler.runner import salvage_job_dir

    (tmp_path / "requests.queue").mkdir()
    (tmp_path / "requests.queue" / "active.json").write_text('{"127.0.0.1')
    assert len(salvage_job_dir(_job_settings(tmp_path))) == 1


@pytest.mark.slow
def test_a_run_after_corrupt_saved_state_warns_once_and_crawls(crawl, replica, db, tmp_path):
    """Before: a 0-byte spider.state made every run of the job log an
    EOFError traceback at open and an AssertionError one at close, forever."""
    jobdir = tmp_path / "var" / "jobs" / job_key("category", {"site": replica.url})
    (jobdir / "requests.queue").mkdir(parents=True)
    (jobdir / "spider.state").write_bytes(b"")
    (jobdir / "requests.queue" / "active.json").write_bytes(b"")
    result = crawl("category", f"site={replica.url}")
    assert "Traceback" not in result.stderr
    assert result.stderr.count("cannot be used") == 2  # one line for each file
    assert db.posts.count_documents({}) == 49
    assert sorted(p.name.split("-")[0] for p in jobdir.glob("*.corrupt-*")) == ["requests.queue.corrupt",
                                                                               "spider.state.corrupt"]
    again = crawl("category", f"site={replica.url}")
    assert "cannot be used" not in again.stderr and "Traceback" not in again.stderr


@pytest.mark.slow
def test_kill_9_of_a_resumed_run_then_the_next_run_finishes(mongo_uri, db, tmp_path):
    """Before: after SIGTERM, resume, kill -9, the next run hung (over 590 s,
    popping garbage from a disk queue whose count was stale); after: ~3 s."""
    site = ReplicaSite.scaled(1200)
    env = _env(mongo_uri, db, tmp_path, FINEWS_CONCURRENT_REQUESTS="2", MONGO_BATCH_SIZE="10")
    with ReplicaServer(site) as server:
        command = _command(server.url)
        for stop, posts in ((signal.SIGTERM, 200), (signal.SIGKILL, 600)):
            run = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 120
            while db.posts.count_documents({}) < posts:
                assert time.monotonic() < deadline and run.poll() is None, "the crawl did not get going"
                time.sleep(0.1)
            run.send_signal(stop)
            run.wait(timeout=120)
        rerun = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "Traceback" not in rerun.stderr
    assert "requests.queue cannot be used" in rerun.stderr  # the stale queue, kept aside
    assert {d["_id"] for d in db.posts.find({}, {"_id": 1})} == {e.post.raw_code for e in site.entries}
