"""One list of reasons (finews/core/reasons.py): every reason the code can emit is
declared there, docs/schema.md lists them, and retries and run outcomes
follow the declaration."""

import re
import subprocess
import sys

import pytest
from scrapy.http import Request, TextResponse
from scrapy.utils.test import get_crawler

from crawler.extensions import RunRecord
from crawler.spiders.category import CategorySpider
from finews.cli import docs
from finews.core import reasons
from finews.core.pages import PageError
from finews.core.reasons import Reason
from tests.conftest import ROOT

SOURCES = [p for folder in ("finews", "crawler", "pipelines") for p in (ROOT / folder).rglob("*.py")
           if "replica" not in p.parts]
# Where a reason is written as a literal: the exceptions and calls that carry one.
_LITERAL = re.compile(
    r"""(?:PageError|ItemError|OffSite|_store_reject\([^,()]+,|rejected\([^,()]+,|reasons\.append)\(?\s*["']([a-z_]+)["']"""
    r"""|reject_reason["']?\]?\s*=\s*["']([a-z_]+)["']""")
_FAMILY = re.compile(r"""f["']([a-z]+_)\{""")
_CONSTANT = re.compile(r"\bReason\.([A-Z_]+)\b")


def emitted(text: str) -> tuple[set[str], set[str], set[str]]:
    """Reason literals, family prefixes built with f-strings, and ``Reason.X`` names in ``text``."""
    literals = {a or b for a, b in _LITERAL.findall(text)}
    return literals, set(_FAMILY.findall(text)) & {"http_", "fetch_"}, set(_CONSTANT.findall(text))


def test_the_scan_sees_literal_reasons():
    literals, families, names = emitted('raise PageError("nope", "x")\nself.rejected(url, "gone")\n'
                                        'reasons.append("odd")\nadapter["reject_reason"] = "big"\n'
                                        'r = f"http_{status}"\nReason.NOPE\n')
    assert literals == {"nope", "gone", "odd", "big"} and families == {"http_"} and names == {"NOPE"}


def test_every_reason_the_code_can_emit_is_declared():
    undeclared = []
    for path in SOURCES:
        literals, families, names = emitted(path.read_text(encoding="utf-8"))
        where = path.relative_to(ROOT)
        undeclared += [f"{where}: {name!r}" for name in literals if reasons.lookup(name) is None]
        undeclared += [f"{where}: {prefix}…" for prefix in families if reasons.lookup(prefix + "x") is None]
        undeclared += [f"{where}: Reason.{name}" for name in names if name not in Reason.__members__]
    assert not undeclared, "declare these in finews/core/reasons.py: " + ", ".join(sorted(undeclared))


def test_docs_list_every_declared_reason():
    text = (ROOT / "docs" / "schema.md").read_text(encoding="utf-8")
    marked = docs.TABLES["reasons"]
    table = text.split(marked.begin, 1)[1].split(marked.end, 1)[0]
    assert table == reasons.markdown_table(), "run: python -m finews.cli.docs --write-docs"
    listed = set(re.findall(r"^\| `([a-z_]+)", table, re.M))
    assert listed == {str(r) for r in Reason}


@pytest.mark.slow  # a process of its own, or a scale: kept out of the fast suite's time
def test_markdown_command_prints_the_table():
    out = subprocess.run([sys.executable, "-m", "finews.cli.docs", "--markdown", "reasons"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout == reasons.markdown_table()


def test_families_and_unknown_reasons_are_looked_up():
    assert reasons.lookup("http_404") is Reason.HTTP and reasons.lookup("fetch_TimeoutError") is Reason.FETCH_ERROR
    assert reasons.lookup("missing_title") is Reason.MISSING_TITLE
    assert reasons.lookup("http_") is Reason.HTTP and reasons.lookup("something_else") is None
    assert reasons.by_kind({"http_503": 2, "truncated": 1, "missing_date": 4, "too_large": 1, "odd": 1}) == {
        "fetch": 3, "invalid": 4, "store": 1, "unknown": 1}


def _spider():
    crawler = get_crawler(CategorySpider)
    crawler.spider = CategorySpider.from_crawler(crawler, site="http://127.0.0.1:9")
    return crawler.spider


@pytest.mark.parametrize("reason", [r for r in Reason if not r.family])
def test_a_page_error_is_retried_exactly_when_declared_retried(reason):
    spider = _spider()
    url = "http://127.0.0.1:9/hebeiribao/2022/03/01/NW202203012292975846.html"
    response = TextResponse(url, body=b"x", request=Request(url))
    out = spider.retry_or_reject(response, PageError(reason, "test"))
    assert isinstance(out, Request) == reason.retried
    if not reason.retried:
        assert out["reject_reason"] == reason and spider.crawler.stats.get_value(f"finews/page_failed/{reason}") == 1


@pytest.mark.parametrize("failures, outcome", [
    ({"http_404": 1}, "partial"), ({"fetch_TimeoutError": 2, "missing_title": 1}, "partial"),
    ({"truncated": 1}, "partial"), ({"missing_title": 3, "no_front_matter": 1}, "clean"),
    ({"too_large": 1}, "clean"),
])
def test_fetch_failures_leave_the_run_partial_and_invalid_posts_do_not(failures, outcome):
    record = RunRecord(get_crawler(CategorySpider))
    record.failures.update(failures)
    record.pages_read = 1
    assert record.outcome("finished", {}) == outcome


def test_the_run_summary_sums_rejects_by_what_they_count_as():
    from crawler.runner import SpiderRun
    from crawler.summary import summarize

    run = SpiderRun("category", {}, {"finews/rejected": 4, "finews/rejected/http_404": 1,
                                     "finews/rejected/missing_title": 2, "finews/rejected/too_large": 1})
    lines = summarize([run]).splitlines()
    assert "rejected by reason: http_404=1, missing_title=2, too_large=1" in lines
    assert "rejected by kind (finews/core/reasons.py): fetch=1, invalid=2, store=1" in lines


@pytest.mark.slow
def test_a_real_run_records_its_rejects_by_reason_and_by_kind(crawl, replica, db):
    """``scrapy crawl``: a post stored, one that cannot be fetched and a code that is not one."""
    missing = "NW209901010000000001"
    crawl("newsshare", f"site={replica.url}", f"info_codes=NW202203012292975846,{missing},NW12", check=False)
    run = db.crawl_runs.find_one()
    assert run["stored"] == 1
    assert run["failures_by_reason"] == {"http_404": 1, "bad_info_code": 1}
    assert run["failures_by_kind"] == {"fetch": 1, "invalid": 1}
    assert run["outcome"] == "partial"  # a page could not be fetched
    assert {(r["reason"], r["spider"]) for r in db.rejects.find()} == {("http_404", "newsshare"),
                                                                       ("bad_info_code", "newsshare")}


@pytest.mark.parametrize("enqueued, dequeued, shared, lost", [(67, 66, False, 1), (67, 67, False, 0),
                                                               (10, 40, False, 0), (67, 66, True, 0)])
def test_a_request_the_queue_lost_is_counted_and_leaves_the_run_partial(enqueued, dequeued, shared, lost):
    """A request queued and never taken back out was lost (its queue moved or
    damaged under the run): never a clean run. A resumed run takes out more
    than it queued; a shared crawl's workers take each other's requests."""
    crawler = get_crawler(CategorySpider, {"FINEWS_REDIS_URL": "redis://127.0.0.1:9/0" if shared else None})
    record = RunRecord(crawler)
    record.pages_read = 10
    assert record.lost_requests({"scheduler/enqueued": enqueued, "scheduler/dequeued": dequeued}) == lost
    assert record.outcome("finished", {"finews/requests_lost": lost}) == ("partial" if lost else "clean")
