"""``finews`` commands as a user runs them, in fresh folders."""

import os
import signal
import subprocess
import sys
import time

import pytest

from finews.storage.db import connect, free_port


def _finews(*args, cwd, env=None, timeout=300):
    environment = {k: v for k, v in os.environ.items() if k != "MONGO_URI"} | (env or {})
    return subprocess.run([sys.executable, "-m", "finews.cli", *args], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_demo_on_a_fresh_folder_then_again(tmp_path):
    first = _finews("demo", "--port", str(free_port()), cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    # The undated post file is left out, as Jekyll leaves it out; the init post has no article link.
    assert "database now holds: posts=49, rejects=1" in first.stdout
    assert "rejected by reason: missing_link=1\n" in first.stdout
    category = next(line for line in first.stdout.splitlines() if line.startswith("category"))
    assert category.split()[1] == "49"
    assert (tmp_path / "var" / "db").is_dir()
    assert "finews serve" in first.stdout.splitlines()[-1]  # what to run next

    second = _finews("demo", cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "database now holds: posts=49" in second.stdout
    assert all(line.split()[1] == "0" for line in second.stdout.splitlines()
               if line.startswith(("category", "newsshare")))


@pytest.mark.slow
def test_db_serve_is_shared_with_the_demo_and_readable(tmp_path):
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "finews.cli", "db", "serve", "--port", str(port),
                               "--data-dir", str(tmp_path / "var")], cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        uri = f"mongodb://127.0.0.1:{port}/"
        deadline = time.monotonic() + 60
        with connect(uri, serverSelectionTimeoutMS=500) as client:
            while True:
                try:
                    client.admin.command("ping")
                    break
                except Exception:
                    assert time.monotonic() < deadline and server.poll() is None, "db serve did not start"
                    time.sleep(0.3)
            demo = _finews("demo", "--port", str(free_port()), cwd=tmp_path)
            assert demo.returncode == 0, demo.stderr[-3000:]
            assert f"database mongodb://127.0.0.1:{port}/" in demo.stdout
            assert client.finews.posts.count_documents({}) == 49
        assert server.poll() is None, "the demo must not stop a server it did not start"
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    assert server.returncode == 0


def test_replica_command_serves_until_stopped(tmp_path):
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "finews.cli", "replica", "--port", str(port)],
                               cwd=tmp_path, stdout=subprocess.PIPE, text=True)
    try:
        assert "Serving 54 posts" in process.stdout.readline()  # the undated post file is left out, as by Jekyll
        import urllib.request
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/category/hebeiribao.html", timeout=10) as page:
            assert "河北日报新闻" in page.read().decode("utf-8")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
