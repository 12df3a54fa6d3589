"""A full disk under ``FINEWS_DATA_DIR`` while the database is down: the
crawl ends, says the batches it could not keep are lost, and fails (exit 1);
no torn spool file is left for a replay. Real crawl processes, a real
replica, a database port nothing listens on.

The disk is full in two ways: a tmpfs filled to the last byte (real ENOSPC;
needs ``mount``, so root), and, everywhere, a file size limit (RLIMIT_FSIZE:
every write past 2 KiB in a file fails with EFBIG), which takes the same
paths: any OSError of a write."""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys

import pytest
from bson import json_util

from finews.replica.server import ReplicaServer
from finews.replica.site import ReplicaSite
from finews.storage.db import free_port
from tests.conftest import ROOT
from tests.test_crawl import stat

POSTS = 300
FILE_LIMIT = 2048


def _limit_file_size():
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_LIMIT, FILE_LIMIT))


@pytest.fixture(params=["file_size_limit", "tmpfs"])
def full_disk(request, tmp_path):
    """(data folder, function to run in the crawl's process before it starts)."""
    data = tmp_path / "var"
    data.mkdir()
    if request.param == "file_size_limit":
        yield data, _limit_file_size
        return
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(data)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"mount -t tmpfs refused ({mounted.stderr.strip()}); the file size limit case runs instead")
    try:
        with open(data / "filler", "wb", buffering=0) as filler:
            try:
                while True:
                    filler.write(b"\0" * 4096)
            except OSError:  # ENOSPC: full
                pass
        yield data, None
    finally:
        subprocess.run(["umount", "-l", str(data)], check=False)


@pytest.fixture(scope="module")
def big_replica():
    with ReplicaServer(ReplicaSite.scaled(POSTS)) as server:
        yield server


def _crawl(replica, data, preexec, **env) -> subprocess.CompletedProcess:
    environment = {**os.environ, "MONGO_URI": f"mongodb://127.0.0.1:{free_port()}", "MONGO_DATABASE": "fulldisk",
                   "MONGO_TIMEOUT_MS": "300", "MONGO_RETRY_ATTEMPTS": "1", "MONGO_OUTAGE_COOLDOWN": "60",
                   "FINEWS_DATA_DIR": str(data), "FINEWS_AUTOTHROTTLE": "0", **env}
    return subprocess.run([sys.executable, "-m", "scrapy", "crawl", "category", "-a", f"site={replica.url}"],
                          cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120,
                          preexec_fn=preexec)


def _outcome(log: str) -> str | None:
    match = re.search(r"'finews/outcome': '(\w+)'", log)
    return match.group(1) if match else None


def _spooled(data) -> list[dict]:
    """Every line in the spool folder, read as a replay would; a file that is
    not a whole ``.jsonl`` (a torn or temporary one) fails the test."""
    spool = data / "spool"
    entries = []
    for path in sorted(spool.rglob("*")) if spool.is_dir() else []:
        assert path.name.endswith(".jsonl"), f"{path.name} left in the spool"
        raw = path.read_bytes()
        assert raw.endswith(b"\n"), f"{path.name} is cut off"
        entries += [json_util.loads(line) for line in raw.decode("utf-8").splitlines()]
    return entries


@pytest.mark.slow
def test_a_full_disk_without_jobdir_loses_batches_said_and_failed(full_disk, big_replica):
    """Before: exit 0, outcome clean, 300 posts gone in one torn spool line."""
    data, preexec = full_disk
    result = _crawl(big_replica, data, preexec, FINEWS_RESUMABLE="0")
    log = result.stderr
    assert result.returncode == 1, log[-3000:]
    assert _outcome(log) == "failed"
    assert stat(log, "finews/db/lost") == POSTS and stat(log, "finews/db/spooled") == 0
    assert stat(log, "finews/db/spool_failed") >= 1
    # No batch is spooled; the run record, if it found room, says failed.
    assert [entry["run"]["outcome"] for entry in _spooled(data)] in ([], ["failed"])


@pytest.mark.slow
def test_a_full_disk_under_the_job_queue_ends_the_crawl_as_failed(full_disk, big_replica):
    """Before: the crawl never ended (Scrapy's disk queue raised every 5 s)."""
    data, preexec = full_disk
    result = _crawl(big_replica, data, preexec)
    log = result.stderr
    assert result.returncode == 1, log[-3000:]
    assert "'finish_reason': 'disk_queue_failed'" in log and _outcome(log) == "failed"
    assert stat(log, "finews/disk/queue_failed") >= 1
    assert stat(log, "finews/db/spooled") == 0
    assert all("run" in entry for entry in _spooled(data))
