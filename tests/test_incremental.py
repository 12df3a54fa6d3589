"""Scheduled runs cost what is new: known posts are not fetched again,
changed posts become new versions, concurrent crawls store each post once."""

import dataclasses
import os
import subprocess
import sys

import pytest

from finews.replica.server import ReplicaServer
from finews.replica.site import ReplicaSite
from tests.conftest import CORPUS, ROOT, valid_corpus_codes
from tests.test_crawl import stat

POST_PAGES = 54  # every post page of the corpus (Jekyll does not publish the file without a date in its name)
REJECTED_PAGES = 1  # the init post (no article link): never stored, so asked for again


@pytest.fixture
def own_replica():
    """A replica this test may change."""
    with ReplicaServer(ReplicaSite.from_folder(CORPUS)) as server:
        yield server


def post_requests(log: str) -> int:
    """Post pages the category spider fetched."""
    return stat(log, "finews/post_pages")


def copy_post(post, code, **changes):
    """The post under another infoCode, as a new file of the site would be."""
    link = f"http://finews.zning.xyz/html_News/NewsShare.html?infoCode={code}"
    return dataclasses.replace(post, name=f"2022-03-02-{code}.md", link=link, date="2022-03-02 09:00:00 +0800",
                               body=post.body.replace(post.link, link), **changes)


def edit(server, code, **changes):
    entry = server.site.share_entry(code)
    server.site.add([dataclasses.replace(entry.post, **changes)])


def test_second_run_fetches_no_known_post(crawl, own_replica, db):
    first = crawl("category", f"site={own_replica.url}")
    assert post_requests(first.stderr) == POST_PAGES
    second = crawl("category", f"site={own_replica.url}")
    # Only the post that was rejected (so never stored) is asked for again.
    assert post_requests(second.stderr) == REJECTED_PAGES
    assert stat(second.stderr, "finews/skipped_known") == POST_PAGES - REJECTED_PAGES
    assert db.posts.count_documents({}) == 49


def test_new_posts_are_exactly_what_the_next_run_fetches(crawl, own_replica, db):
    crawl("category", f"site={own_replica.url}")
    reference = own_replica.site.share_entry("NW202203012292975846").post
    added = [copy_post(reference, f"NW2022030222929758{i:02d}", title=f"新增 {i}") for i in range(3)]
    own_replica.site.add(added)
    result = crawl("category", f"site={own_replica.url}")
    assert post_requests(result.stderr) == 3 + REJECTED_PAGES
    assert stat(result.stderr, "finews/posts/inserted") == 3
    assert db.posts.count_documents({}) == 52


def test_refresh_all_fetches_everything_and_changes_nothing(crawl, own_replica, db):
    crawl("category", f"site={own_replica.url}")
    result = crawl("category", f"site={own_replica.url}", "refresh=all")
    assert post_requests(result.stderr) == POST_PAGES
    assert stat(result.stderr, "finews/posts/updated") == 0
    assert db.post_versions.count_documents({}) == 0


def test_changed_post_gets_a_new_version_and_keeps_the_old(crawl, own_replica, db):
    crawl("category", f"site={own_replica.url}")
    before = db.posts.find_one({"_id": "NW202203012292975846"})
    edit(own_replica, "NW202203012292975846", title=before["title"] + "（更新）",
         body=own_replica.site.share_entry("NW202203012292975846").post.body.replace("近日", "日前", 1))
    result = crawl("category", f"site={own_replica.url}", "refresh=changed")
    assert stat(result.stderr, "finews/refetched_changed_title") == 1
    assert post_requests(result.stderr) == 1 + REJECTED_PAGES
    after = db.posts.find_one({"_id": "NW202203012292975846"})
    assert after["version"] == 2 and after["title"].endswith("（更新）")
    assert after["body_text"].startswith("日前") and after["updated_at"] >= before["crawled_at"]
    assert after["first_seen_at"] == before["first_seen_at"]
    old = db.post_versions.find_one({"info_code": "NW202203012292975846", "version": 1})
    fields = ("title", "body_html", "content_hash")
    assert [old[f] for f in fields] == [before[f] for f in fields]
    assert db.posts.count_documents({}) == 49


@pytest.mark.slow
def test_two_crawls_at_once_store_each_post_once(own_replica, db, mongo_uri, tmp_path):
    # Two different jobs (the lease refuses a second run of the same one)
    # over the same posts: from the home page, and from every listing by name.
    slugs = ",".join(sorted(own_replica.site.by_category))
    command = [sys.executable, "-m", "scrapy", "crawl", "category", "-a", f"site={own_replica.url}",
               "-a", "refresh=all", "-s", "AUTOTHROTTLE_ENABLED=False", "-s", "MONGO_BATCH_SIZE=5"]
    env = {**os.environ, "MONGO_URI": mongo_uri, "MONGO_DATABASE": db.name}
    crawls = [subprocess.Popen(command + extra, cwd=ROOT, env={**env, "FINEWS_DATA_DIR": str(tmp_path / f"var{i}")},
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
              for i, extra in enumerate([[], ["-a", f"categories={slugs}"]])]
    logs = [c.communicate(timeout=600)[1] for c in crawls]
    assert all(c.returncode == 0 for c in crawls), logs[0][-2000:] + logs[1][-2000:]
    assert {d["_id"] for d in db.posts.find({}, {"_id": 1})} == valid_corpus_codes()
    assert db.posts.count_documents({}) == 49
    assert sum(stat(log, "finews/posts/inserted") for log in logs) == 49
    assert db.rejects.count_documents({}) == 2


@pytest.mark.slow
def test_concurrent_revisions_lose_none(own_replica, db, mongo_uri, tmp_path):
    """Two crawls racing over a changed post: one new version, the old one kept."""
    subprocess.run([sys.executable, "-m", "scrapy", "crawl", "category", "-a", f"site={own_replica.url}",
                    "-a", "categories=hebeiribao"], cwd=ROOT, check=True, capture_output=True,
                   env={**os.environ, "MONGO_URI": mongo_uri, "MONGO_DATABASE": db.name,
                        "FINEWS_DATA_DIR": str(tmp_path / "var")})
    edit(own_replica, "NW202203012292975846", body="<p>改写后的正文</p>\n\n<http://finews.zning.xyz/html_News/NewsShare.html?infoCode=NW202203012292975846>\n")
    command = [sys.executable, "-m", "scrapy", "crawl", "category",
               "-a", f"site={own_replica.url}", "-a", "refresh=all"]
    env = {**os.environ, "MONGO_URI": mongo_uri, "MONGO_DATABASE": db.name}
    crawls = [subprocess.Popen([*command, "-a", f"categories={name}"], cwd=ROOT,
                               env={**env, "FINEWS_DATA_DIR": str(tmp_path / f"v{i}")},
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
              for i, name in enumerate(["hebeiribao", "河北日报"])]  # two jobs, one listing
    logs = [c.communicate(timeout=600)[1] for c in crawls]
    assert all(c.returncode == 0 for c in crawls)
    post = db.posts.find_one({"_id": "NW202203012292975846"})
    assert post["version"] == 2 and post["body_text"] == "改写后的正文"
    assert [v["version"] for v in db.post_versions.find({"info_code": "NW202203012292975846"})] == [1]
    assert sum(stat(log, "finews/posts/updated") for log in logs) == 1


def test_after_adding_k_posts_the_next_run_fetches_exactly_k(crawl, db):
    import json
    import urllib.request

    with ReplicaServer(ReplicaSite.scaled(600)) as server:
        first = crawl("category", f"site={server.url}")
        assert stat(first.stderr, "finews/posts/inserted") == 600
        unchanged = crawl("category", f"site={server.url}")
        assert post_requests(unchanged.stderr) == 0
        request = urllib.request.Request(server.url + "/_admin/add?n=25", method="POST")
        codes = json.loads(urllib.request.urlopen(request, timeout=10).read())["codes"]
        grown = crawl("category", f"site={server.url}")
    assert post_requests(grown.stderr) == 25
    assert stat(grown.stderr, "finews/posts/inserted") == 25
    assert db.posts.count_documents({"_id": {"$in": codes}}) == 25
    assert db.posts.count_documents({}) == 625
