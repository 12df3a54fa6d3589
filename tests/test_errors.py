"""Bad input to the commands, as real processes: one clear line, a documented
exit code (1: the database; 2: arguments or config), never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from urllib.parse import quote_plus

import pytest
from pymongo.errors import ConfigurationError, OperationFailure, ServerSelectionTimeoutError

from finews.cli import DatabaseUnusable, describe_database_error, open_client
from finews.replica.faults import FaultPlan
from finews.replica.server import ReplicaServer
from finews.replica.site import ReplicaSite
from finews.storage.db import EmbeddedMongo, connect, free_port
from tests.conftest import CORPUS, ROOT
from tests.test_security import TRICKY, leaked

USER, PASSWORD, WRONG = "finews", "s3cret-right", "s3cret-wrong"
TRICKY_USER = "tricky"  # whose password has an "@" and a "/" (tests.test_security.TRICKY)
TIMEOUT_MS = 1000
# Seconds a command may take beyond its database timeout: 4 s plus three
# times what starting Python and importing the commands' modules takes on
# this machine right now (about 1 s when it is quiet, several under load),
# still well under the 30 s of pymongo's default server selection.
STARTUP_SLACK = 4.0
COMMANDS = {
    "stats": ["stats"],
    "export": ["export", "-"],
    "reprocess": ["reprocess"],
    "replay": ["replay"],
    "migrate": ["migrate"],
    "demo": ["demo", "--port", "0"],
    "run": ["run", "--config", "{config}"],
}


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory):
    """``host:port`` of an embedded server that requires SCRAM credentials
    (SecantusDB ``--auth``), with the user ``USER``/``PASSWORD``."""
    path = tmp_path_factory.mktemp("authdb")
    with EmbeddedMongo(path) as plain:
        with connect(plain.uri) as client:
            client.admin.command("createUser", USER, pwd=PASSWORD, roles=[{"role": "root", "db": "admin"}])
            client.admin.command("createUser", TRICKY_USER, pwd=TRICKY, roles=[{"role": "root", "db": "admin"}])
        port = plain.port
    with EmbeddedMongo(path, port=port, extra_args=["--auth"]) as server:
        yield f"{server.host}:{server.port}"


@pytest.fixture(scope="module")
def startup() -> float:
    """Seconds to start Python and import what the commands import, now."""
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", "import finews.cli, crawler.runner, scrapy.crawler, pymongo"],
                   cwd=ROOT, check=True)
    return time.monotonic() - started


def _finews(argv: list[str], tmp_path, env: dict, timeout: float = 120):
    environment = {**os.environ, "FINEWS_DATA_DIR": str(tmp_path / "var"), "MONGO_TIMEOUT_MS": str(TIMEOUT_MS),
                   **env}
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "finews.cli", *argv], cwd=tmp_path, env=environment,
                            capture_output=True, text=True, timeout=timeout)
    return result, time.monotonic() - started


def _lines(result) -> list[str]:
    return [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]


def _argv(command: str, tmp_path) -> list[str]:
    config = tmp_path / "finews.toml"
    config.write_text(f'[run]\ndata_dir = "{tmp_path / "var"}"\n'
                      '[[jobs]]\nspider = "category"\nsite = "http://127.0.0.1:9"\n', encoding="utf-8")
    return [arg.format(config=config) for arg in COMMANDS[command]]


BAD_URIS = {
    "unreachable": (lambda auth: f"mongodb://127.0.0.1:{free_port()}/", "database unreachable at mongodb://127.0.0.1:"),
    "not_a_uri": (lambda auth: "db.example:27017", "not a MongoDB URI: 'db.example:27017'"),
    "bad_port": (lambda auth: "mongodb://127.0.0.1:27o17/", "not a valid MongoDB URI"),
    "wrong_password": (lambda auth: f"mongodb://{USER}:{WRONG}@{auth}/", "authentication failed at mongodb://***@"),
    "no_credentials": (lambda auth: f"mongodb://{auth}/", "not authorized at mongodb://"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", BAD_URIS)
@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_names_a_bad_database_in_one_line(command, case, tmp_path, auth_server, startup):
    """Before: tracebacks of 30–190 lines (``demo`` on an unreachable URI
    hung for over two minutes), and ``run`` crawled without a database."""
    make_uri, expected = BAD_URIS[case]
    result, elapsed = _finews(_argv(command, tmp_path), tmp_path, {"MONGO_URI": make_uri(auth_server)})
    lines = _lines(result)
    assert result.returncode == 1, lines[-20:]
    assert len(lines) == 1, lines[-20:]
    assert lines[0].startswith(f"finews {command}: ") and expected in lines[0], lines[0]
    assert "Traceback" not in result.stderr and WRONG not in result.stdout + result.stderr
    assert elapsed < TIMEOUT_MS / 1000 + STARTUP_SLACK + 3 * startup, (elapsed, startup)
    assert not list((tmp_path / "var").glob("spool/*")), "nothing may be spooled"
    assert not (tmp_path / "var" / "jobs").exists(), "no crawl may start"


@pytest.mark.slow
def test_the_right_credentials_work(tmp_path, auth_server):
    """The control for the failures above: the same server, the right password."""
    result, _ = _finews(["stats"], tmp_path, {"MONGO_URI": f"mongodb://{USER}:{PASSWORD}@{auth_server}/"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Posts per category and day" in result.stdout


TRICKY_URIS = {
    "escaped": (quote_plus(TRICKY), 0, "Posts per category and day"),
    "as_typed": (TRICKY, 1, "finews stats: not a valid MongoDB URI 'mongodb://***@127.0.0.1:"),
    "wrong": (quote_plus(TRICKY + "x"), 1, "finews stats: authentication failed at mongodb://***@127.0.0.1:"),
    "wrong_as_typed": (TRICKY + "x", 1, "finews stats: not a valid MongoDB URI 'mongodb://***@127.0.0.1:"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", TRICKY_URIS)
def test_a_password_with_at_and_slash_never_shows(case, tmp_path, auth_server):
    """Before: ``mongodb://***@ss9/wdZ3@…`` (the old pattern stopped at the
    first ``@``), and pymongo took ``ss9`` for the host and waited for it."""
    password, code, expected = TRICKY_URIS[case]
    result, _ = _finews(["stats"], tmp_path, {"MONGO_URI": f"mongodb://{TRICKY_USER}:{password}@{auth_server}/"})
    output = result.stdout + result.stderr
    assert result.returncode == code, output[-2000:]
    assert expected in output and "Traceback" not in output, output[-2000:]
    assert leaked(output) == [], output[-2000:]


def test_unknown_uri_options_are_refused_not_ignored():
    """pymongo only warns about ``authSorce`` and connects without it."""
    with pytest.raises(DatabaseUnusable, match="not a valid MongoDB URI"):
        open_client("mongodb://127.0.0.1:1/?authSorce=admin", 100)


def test_error_lines_never_show_the_password():
    uri = f"mongodb://{USER}:{WRONG}@127.0.0.1:1/"
    refused = OperationFailure(f"authentication failed for {WRONG}", 18, {"errmsg": f"bad password {WRONG}"})
    timeout = ServerSelectionTimeoutError(f"127.0.0.1:1: [Errno 111] Connection refused (configured timeouts: "
                                          f"x), Timeout: 1.0s, Topology Description: <{WRONG}>")
    assert describe_database_error(refused, uri) == (
        "authentication failed at mongodb://***@127.0.0.1:1/: bad password *** "
        "(check the user and password in MONGO_URI)")
    assert describe_database_error(timeout, uri) == (
        "database unreachable at mongodb://***@127.0.0.1:1/: 127.0.0.1:1: [Errno 111] Connection refused "
        "(gave up after 1.0s)")


def test_other_database_errors_are_not_called_unreachable():
    srv = ConfigurationError("The DNS query name does not exist: _mongodb._tcp.db.invalid.")
    assert describe_database_error(srv, "mongodb+srv://db.invalid/") == (
        "database error at mongodb+srv://db.invalid/: The DNS query name does not exist: _mongodb._tcp.db.invalid.")


BAD_ARGUMENTS = {
    "not_a_url": ("category", {"site": "notaurl"},
                  "site must be an http:// or https:// URL with a host (and no user@), got 'notaurl'"),
    "ftp": ("category", {"site": "ftp://127.0.0.1/"}, "site must be an http:// or https:// URL"),
    "no_codes": ("newsshare", {"site": "http://127.0.0.1:9"},
                 "needs info_codes=NW…,NW…, codes_file=PATH or missing=text"),
    "typo": ("category", {"sit": "http://127.0.0.1:9"}, "unknown argument 'sit' (did you mean 'site'?)"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", BAD_ARGUMENTS)
def test_bad_spider_arguments_to_scrapy_crawl(case, crawl, db):
    """Before: Scrapy's banner, the constructor's traceback, then a second one
    (``RuntimeError: Crawler.stats is not set yet``), exit 1; 45–50 lines."""
    spider, arguments, expected = BAD_ARGUMENTS[case]
    result = crawl(spider, *(f"{k}={v}" for k, v in arguments.items()), check=False)
    lines = _lines(result)
    assert result.returncode == 2, lines[-30:]
    assert len(lines) == 1 and lines[0].startswith(f"scrapy crawl: {spider}: ") and expected in lines[0], lines
    assert db.crawl_runs.count_documents({}) == 0


@pytest.mark.slow
def test_an_unknown_spider_to_scrapy_crawl(crawl):
    """Before: Scrapy's ``KeyError: 'Spider not found: categroy'`` traceback, exit 1."""
    result = crawl("categroy", check=False)
    assert result.returncode == 2
    assert _lines(result) == ["scrapy crawl: unknown spider 'categroy' (did you mean 'category'?)"]


@pytest.mark.slow
@pytest.mark.parametrize("case", BAD_ARGUMENTS)
def test_bad_job_arguments_to_finews_run(case, tmp_path, mongo_uri, db):
    spider, arguments, expected = BAD_ARGUMENTS[case]
    config = tmp_path / "finews.toml"
    config.write_text(f'[[jobs]]\nspider = "{spider}"\n' + "".join(f'{k} = "{v}"\n' for k, v in arguments.items()),
                      encoding="utf-8")
    result, _ = _finews(["run", "--config", str(config)], tmp_path, {"MONGO_URI": mongo_uri, "MONGO_DATABASE": db.name})
    lines = _lines(result)
    assert result.returncode == 2, lines[-20:]
    assert len(lines) == 1 and lines[0].startswith(f"finews run: job 1 ({spider}): ") and expected in lines[0], lines
    assert db.crawl_runs.count_documents({}) == 0


@pytest.mark.slow
def test_an_unreachable_site_logs_robots_txt_in_one_line(crawl, db):
    """Before: a 60-line traceback from the robots.txt middleware per host."""
    port = free_port()
    result = crawl("category", f"site=http://127.0.0.1:{port}", check=False, env={"FINEWS_RETRY_TIMES": "0"})
    assert "Traceback" not in result.stderr
    robots = [line for line in result.stderr.splitlines() if "robots.txt of" in line]
    assert len(robots) == 1, robots
    assert f"robots.txt of http://127.0.0.1:{port} could not be fetched (DownloadConnectionRefusedError:" in robots[0]
    stats = db.crawl_runs.find_one()["stats"]
    assert stats["log_count/ERROR"] >= 1
    assert any(key.startswith("robotstxt/exception_count/") for key in stats), "still counted"


@pytest.mark.slow
@pytest.mark.parametrize("asked", [False, True])
def test_remote_control_is_off_unless_asked_for(asked, tmp_path, mongo_uri, db_name):
    """Scrapy 2.19 starts an HTTP server that runs code sent to it, and writes
    its token to a job file that a kill -9 leaves behind. Off by default;
    ``FINEWS_REMOTE_CONTROL=1`` turns it on (and shows the file is found)."""
    state = tmp_path / "state"
    server = ReplicaServer(ReplicaSite.from_folder(CORPUS), faults=FaultPlan.parse("slow=1.0", slow_seconds=2))
    env = {**os.environ, "MONGO_URI": mongo_uri, "MONGO_DATABASE": db_name, "FINEWS_DATA_DIR": str(tmp_path / "var"),
           "XDG_STATE_HOME": str(state), "FINEWS_REMOTE_CONTROL": "1" if asked else "0"}
    with server:
        process = subprocess.Popen([sys.executable, "-m", "scrapy", "crawl", "category", "-a", f"site={server.url}",
                                    "-s", "AUTOTHROTTLE_ENABLED=False"], cwd=ROOT, env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while not server.attempts.get("/"):
                assert process.poll() is None and time.monotonic() < deadline, "the crawl did not start"
                time.sleep(0.1)
            time.sleep(0.5)
        finally:
            process.kill()
            process.wait(timeout=30)
    left = list((state / "scrapy" / "job_files").glob("*.json"))
    assert len(left) == (1 if asked else 0), left


MALFORMED_URIS = {
    "bad_port": ("mongodb://127.0.0.1:x/", "not a valid MongoDB URI 'mongodb://127.0.0.1:x/': Port contains non-digit"),
    "not_a_uri": ("notauri", "not a MongoDB URI: 'notauri' (it must start with mongodb://)"),
    "unknown_option": ("mongodb://127.0.0.1:1/?authSorce=admin", "Unknown option"),
    "password": (f"mongodb://{USER}:{WRONG}@127.0.0.1:x/", "not a valid MongoDB URI 'mongodb://***@127.0.0.1:x/'"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", MALFORMED_URIS)
def test_a_malformed_uri_stops_scrapy_crawl_in_one_line(case, crawl, tmp_path):
    """Before: 4 tracebacks (bad port), or ``notauri`` taken for a host name
    and the run's rejects and run record spooled as an outage; exit 1 after
    ~12 s and 120-180 lines. The same exit code as ``finews`` (1)."""
    uri, expected = MALFORMED_URIS[case]
    result = crawl("category", "site=http://127.0.0.1:9", env={"MONGO_URI": uri}, check=False)
    lines = _lines(result)
    assert result.returncode == 1, lines[-20:]
    assert len(lines) == 1 and lines[0].startswith("scrapy crawl: MONGO_URI: ") and expected in lines[0], lines
    assert WRONG not in result.stdout + result.stderr
    assert not (tmp_path / "var").exists(), "nothing may be spooled, no job folder made"


@pytest.mark.parametrize("case", MALFORMED_URIS)
def test_a_malformed_uri_refuses_the_crawl_database(case, tmp_path):
    """The crawl side's own guard (for crawls not started by ``scrapy crawl``
    or ``finews``): a refusal, which stops the crawl with nothing spooled,
    not an outage."""
    from scrapy.utils.test import get_crawler

    from crawler.database import CrawlDatabase, DatabaseRefused
    from crawler.spiders.category import CategorySpider

    uri, expected = MALFORMED_URIS[case]
    crawler = get_crawler(CategorySpider, {"MONGO_URI": uri, "FINEWS_DATA_DIR": str(tmp_path)})
    database = CrawlDatabase.of(crawler)
    with pytest.raises(DatabaseRefused, match="MONGO_URI: not a"):
        _ = database.db
    assert expected in database.refused and WRONG not in database.refused
    assert not database.usable() and database.down
