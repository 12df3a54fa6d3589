"""The spiders run through the Scrapy engine in this process (the fast suite):
the replica over loopback HTTP, every middleware, pipeline and extension of
``crawler/settings.py``, into the embedded database. The ``scrapy crawl``
command itself (exit codes, the embedded server it starts) is run as a
process by the slow tests in ``test_crawl.py``.

Expected values are read from the corpus post files with plain string
handling (not the project's parsers): the title line of the front matter
and the code in the file name.
"""

from __future__ import annotations

from tests.conftest import POSTS

REFERENCE = "NW202203012292975846"  # 河北日报, the only post of category hebeiribao
SHARED = ["NW202203012292975846", "NW202205292395438077", "NW202205312398034850"]


def corpus_title(code: str) -> str:
    """The ``title:`` line of the post file named after ``code``, unquoted."""
    (path,) = POSTS.glob(f"*-{code}.md")
    line = next(line for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("title: "))
    return line[len("title: "):].strip().strip('"')


def test_newsshare_through_the_engine_stores_each_code_and_rejects_a_bad_one(engine_crawl, replica, db):
    stats = engine_crawl("newsshare", site=replica.url, info_codes=",".join([*SHARED, "NOT-A-CODE"]))
    posts = {d["_id"]: d for d in db.posts.find()}
    assert {code: post["title"] for code, post in posts.items()} == {code: corpus_title(code) for code in SHARED}
    assert all(post["url"] == f"{replica.url}/html_News/NewsShare.html?infoCode={code}"
               for code, post in posts.items())
    assert [(r["reason"], r["spider"]) for r in db.rejects.find()] == [("bad_info_code", "newsshare")]
    assert stats["finews/posts/inserted"] == 3
    assert stats["finews/rejected/bad_info_code"] == 1
    assert stats["finews/outcome"] == "clean"
    assert stats["finish_reason"] == "finished"
    run = db.crawl_runs.find_one()
    assert (run["spider"], run["outcome"], run["stored"], run["failures_by_reason"]) == (
        "newsshare", "clean", 3, {"bad_info_code": 1})
    assert run["started_at"] <= run["ended_at"]


def test_category_through_the_engine_stores_the_listed_post_once_over_two_runs(engine_crawl, replica, db):
    first = engine_crawl("category", site=replica.url, categories="hebeiribao")
    assert [(d["_id"], d["title"], d["category"]) for d in db.posts.find()] == [
        (REFERENCE, corpus_title(REFERENCE), "hebeiribao")]
    assert (first["finews/posts/inserted"], first["finews/post_pages"], first["finews/outcome"]) == (1, 1, "clean")

    second = engine_crawl("category", site=replica.url, categories="hebeiribao")
    assert db.posts.count_documents({}) == 1
    assert second.get("finews/posts/inserted", 0) == 0
    assert second.get("finews/post_pages", 0) == 0  # a stored post's page is not fetched again
    assert second["finews/outcome"] == "clean"
    assert db.crawl_runs.count_documents({"outcome": "clean"}) == 2


def test_newsshare_missing_text_asks_only_what_the_database_lacks(engine_crawl, replica, db):
    """A post stored from its page alone gets its text answer asked once; with
    the database unreachable nothing can be known missing, so nothing is asked
    and the unread list is counted."""
    engine_crawl("category", site=replica.url, categories="hebeiribao")  # the page only, no text answer

    first = engine_crawl("newsshare", site=replica.url, missing="text")
    assert first["finews/missing_text"] == 1
    assert first["finews/outcome"] == "clean"
    second = engine_crawl("newsshare", site=replica.url, missing="text")
    assert second["finews/missing_text"] == 0

    down = engine_crawl("newsshare", {"MONGO_URI": "mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=200",
                                      "MONGO_TIMEOUT_MS": 200}, site=replica.url, missing="text")
    assert down["finews/missing_text_unread"] == 1
    assert down.get("response_received_count", 0) == 0
