"""Article bodies are written by strangers: nothing in them changes what is
fetched, how the page is read, or whether the post is kept (issue 9, item 1).

Hostile post files are added to a copy of the corpus, served by the replica
and crawled by ``scrapy crawl``; a malformed post file is rejected with its
reason, never lost (issue 9, item 5, the crawler's side).
"""

from __future__ import annotations

import shutil

import pytest

from finews.core.infocode import normalize_info_code
from finews.replica.server import ReplicaServer
from finews.replica.site import ReplicaSite
from tests.conftest import CORPUS, REFERENCE
from tests.test_crawl import stat

LINK = "http://finews.zning.xyz/html_News/NewsShare.html?infoCode={code}"
ELSEWHERE = "elsewhere.example"
HOSTILE = {
    "meta_refresh": f'<meta http-equiv="refresh" content="0;url=http://{ELSEWHERE}/">',
    "base_href": f'<base href="http://{ELSEWHERE}/">',
    "svg": "<svg><circle r=5>",
    "math": "<math><mi>x",
    "embed": f'<embed src="http://{ELSEWHERE}/x.swf">',
    "table": "<table><tr><td>格",
    "a_href": f'<a href="http://{ELSEWHERE}/">链接',
    "template": "<template><p>模板</p>",
    "noscript": "<noscript><p>无脚本</p>",
    "comment_section": "</section></div><footer>",
}
CODES = {case: f"NW2022030229{i:08d}" for i, case in enumerate(HOSTILE)}
_HEAD = "title: \"坏文件\"\ndate: 2022-03-03 10:00:00 +0800\ncategories: hebeiribao\ntags: 河北日报新闻\n"
_TAIL = "\n<p>正文</p>\n\n<http://finews.zning.xyz/html_News/NewsShare.html?infoCode=NW{code}>\n"
MALFORMED = {  # post files the real site's Jekyll publishes without front matter, or not at all
    "no_front_matter": "<p>没有 front matter</p>" + _TAIL,
    "blank_line_first": "\n---\n" + _HEAD + "---" + _TAIL,
    "empty": "",
    "bad_yaml": "---\ntitle: \"x\n  : [\n---" + _TAIL,
    "binary": "\x00\x01\x02 binary",
    "not_utf8": None,  # written as bytes below
}
MALFORMED_NAMES = {case: f"2022-03-03-NW2022030322{i:08d}.md" for i, case in enumerate(MALFORMED)}


def hostile_post(case: str) -> str:
    """The reference post with the hostile markup between two paragraphs."""
    code = CODES[case]
    head = REFERENCE.read_text(encoding="utf-8").split("---\n")[1]
    head = head.replace('title: "', f'title: "{case} ').replace("2022-03-01 16:46:38", "2022-03-02 10:00:00")
    return (f"---\n{head}---\n<p>前段文字{case}</p>{HOSTILE[case]}<p>后段文字{case}</p>"
            '<img src="/img/picture.png">\n\n'
            f"<{LINK.format(code=code)}>\n\n"
            "[返回河北日报新闻](//finews.withounder.com/category/hebeiribao.html)｜[返回首页](//finews.withounder.com/)")


@pytest.fixture(scope="module")
def hostile_site(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    shutil.copytree(CORPUS, folder, dirs_exist_ok=True)
    for case, code in CODES.items():
        (folder / "posts" / f"2022-03-02-{code}.md").write_text(hostile_post(case), encoding="utf-8")
    for case, name in MALFORMED_NAMES.items():
        text = MALFORMED[case]
        data = ("---\n" + _HEAD + "---" + _TAIL).encode() + b"<p>\xff\xfe</p>" if text is None else text.encode()
        (folder / "posts" / name).write_bytes(data.replace(b"{code}", name[13:-3].encode()))
    site = ReplicaSite.from_folder(folder)
    with ReplicaServer(site) as server:
        yield server


@pytest.fixture(scope="module")
def hostile_crawl(hostile_site, mongo_uri, tmp_path_factory):
    """One crawl of the whole hostile site into a database of its own."""
    import os
    import subprocess
    import sys
    import uuid

    from finews.storage.db import connect, ensure_indexes
    from tests.conftest import ROOT

    name = f"finews_hostile_{uuid.uuid4().hex[:10]}"
    client = connect(mongo_uri)
    ensure_indexes(client[name])
    env = {**os.environ, "MONGO_URI": mongo_uri, "MONGO_DATABASE": name,
           "FINEWS_DATA_DIR": str(tmp_path_factory.mktemp("var"))}
    result = subprocess.run([sys.executable, "-m", "scrapy", "crawl", "category", "-a", f"site={hostile_site.url}",
                             "-s", "LOG_LEVEL=DEBUG", "-s", "AUTOTHROTTLE_ENABLED=False"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    yield result, client[name]
    client.drop_database(name)
    client.close()


@pytest.mark.slow
@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_body_is_stored_sanitized_with_the_words_around_it(hostile_crawl, hostile_site, case):
    _, db = hostile_crawl
    code = CODES[case]
    post = db.posts.find_one({"_id": code})
    assert post is not None, (case, list(db.rejects.find({"url": {"$regex": code}})))
    assert post["title"] == f"{case} 《河北省制造业高质量发展“十四五”规划》出台 实施八项行动 构建现代化制造业体系"
    assert (post["category"], post["tags"]) == ("hebeiribao", ["河北日报新闻"])
    paragraphs = post["body_text"].split("\n")
    assert paragraphs[0] == f"前段文字{case}"
    assert f"后段文字{case}" in paragraphs
    assert "<" not in post["body_text"] and "返回" not in post["body_text"]
    assert not any(tag in post["body_html"] for tag in ("<meta", "<base", "<embed", "<svg", "<math", "<noscript"))
    assert post["source_url"] == LINK.format(code=code)
    assert post["url"].startswith(hostile_site.url + "/hebeiribao/2022/03/02/")
    # Relative links resolve against the page, never against a <base href> in the article.
    assert post["images"] == [hostile_site.url + "/img/picture.png"]


@pytest.mark.slow
def test_hostile_bodies_change_nothing_fetched_and_lose_nothing(hostile_crawl, hostile_site):
    result, db = hostile_crawl
    assert result.returncode == 0, result.stderr[-3000:]
    fetched = [line for line in result.stderr.splitlines() if "Crawled (" in line]
    assert fetched and not [line for line in fetched if ELSEWHERE in line]
    assert not [line for line in fetched if "Crawled (200)" not in line and "/robots.txt" not in line]
    assert stat(result.stderr, "finews/offsite_blocked") == 0
    assert db.crawl_runs.find_one()["outcome"] == "clean"
    stored = {d["_id"] for d in db.posts.find({}, {"_id": 1})}
    rejected = {r["url"] for r in db.rejects.find()}
    listed = hostile_site.site.entries
    lost = [e.path for e in listed
            if normalize_info_code(e.post.raw_code or e.post.stem) not in stored
            and hostile_site.url + e.path not in rejected]
    assert lost == []
    assert stored >= set(CODES.values())


@pytest.mark.slow
def test_malformed_post_files_are_rejected_with_their_reason(hostile_crawl, hostile_site):
    """What the replica serves of a malformed file (as Jekyll would) is a
    reject with its reason; what it leaves out is never asked for."""
    _, db = hostile_crawl
    served = {e.post.name: e.path for e in hostile_site.site.entries}
    assert MALFORMED_NAMES["no_front_matter"] in served
    for case, name in MALFORMED_NAMES.items():
        assert db.posts.find_one({"_id": name[11:-3]}) is None, case
        if name in served:
            reject = db.rejects.find_one({"url": hostile_site.url + served[name]})
            assert reject is not None and reject["reason"] == "no_front_matter", (case, reject)
