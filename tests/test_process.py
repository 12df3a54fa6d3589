"""Recognising a dead process: what lets a stale lease, spool claim or
embedded-server state file left by a killed process be taken over."""

import os
import subprocess
import sys
import time

import pytest

from finews.storage.process import alive


def test_a_running_process_is_alive():
    assert alive(os.getpid())


def test_a_process_that_ended_and_was_reaped_is_dead():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not alive(child.pid)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="zombies are read from /proc")
def test_a_process_that_ended_but_was_never_reaped_is_dead():
    """An orphan's zombie stays as long as nobody reaps it (a container whose
    first process never does): it must not hold its lease or state file."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 10
        while os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
            assert time.monotonic() < deadline, "the child did not exit"
            time.sleep(0.01)
        os.kill(child.pid, 0)  # still in the process table: a zombie
        assert not alive(child.pid)
    finally:
        child.wait()


def test_no_pid_is_not_alive():
    assert not alive(None) and not alive(0) and not alive(-1)
