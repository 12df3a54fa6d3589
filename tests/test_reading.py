"""``finews stats`` and ``finews export`` over a crawled database."""

import json
import os
import subprocess
import sys

import pytest

from finews.core.dates import parse_published
from finews.replica import kramdown
from finews.replica.postfile import read_post_file
from finews.storage.reading import posts_per_category_and_day
from tests.conftest import POSTS, REFERENCE, ROOT


@pytest.fixture
def crawled(crawl, replica, db):
    crawl("category", f"site={replica.url}")
    return db


def _finews(db, mongo_uri, *args):
    env = {**os.environ, "MONGO_URI": mongo_uri, "MONGO_DATABASE": db.name}
    return subprocess.run([sys.executable, "-m", "finews.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


def test_counts_per_category_and_day_use_shanghai_days(crawled):
    counts = posts_per_category_and_day(crawled)
    assert sum(n for _, _, n in counts) == 49
    assert ("2022-03-01", "hebeiribao", 1) in counts
    # 2022-05-26 00:19:55 in Shanghai is 2022-05-25 in UTC: the day is the site's.
    assert ("2022-05-26", "shanghaizhengquanbao", 1) in counts
    assert [day for day, _, _ in counts] == sorted((day for day, _, _ in counts), reverse=True)


def test_stats_command_shows_counts_and_runs(crawled, mongo_uri):
    result = _finews(crawled, mongo_uri, "stats", "--days", "0")
    assert result.returncode == 0, result.stderr
    assert "49 posts stored" in result.stdout
    assert "2022-03-01  hebeiribao" in result.stdout
    run_line = next(line for line in result.stdout.splitlines() if "category" in line and "clean" in line)
    assert "49" in run_line and "missing_link=1" in run_line


def test_export_jsonl_streams_every_post(crawled, mongo_uri, tmp_path):
    out = tmp_path / "posts.jsonl"
    result = _finews(crawled, mongo_uri, "export", "--format", "jsonl", str(out))
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 49 and len({r["_id"] for r in rows}) == 49
    reference = next(r for r in rows if r["_id"] == "NW202203012292975846")
    assert reference["published_at"] == "2022-03-01T08:46:38Z"
    assert reference["title"].startswith("《河北省制造业高质量发展")
    assert [r["published_at"] for r in rows] == sorted(r["published_at"] for r in rows)


def test_export_filters_by_date_and_category(crawled, mongo_uri, tmp_path):
    out = tmp_path / "emnews.jsonl"
    result = _finews(crawled, mongo_uri, "export", "--since", "2022-04-21", "--category", "emnews", str(out))
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    since = parse_published("2022-04-21")
    expected = crawled.posts.count_documents({"category": "emnews", "published_at": {"$gte": since}})
    assert len(rows) == expected > 0
    assert all(r["category"] == "emnews" and r["published_at"] >= "2022-04-20T16:00:00Z" for r in rows)
    assert _finews(crawled, mongo_uri, "export", "--since", "yesterday-ish", str(out)).returncode == 2


def test_jekyll_export_reproduces_the_reference_post_byte_for_byte(crawled, mongo_uri, tmp_path):
    result = _finews(crawled, mongo_uri, "export", "--format", "jekyll", str(tmp_path / "site"))
    assert result.returncode == 0, result.stderr
    exported = tmp_path / "site" / "_posts" / REFERENCE.name
    # A post page holds the article as kramdown re-serialized it (each block element on its own
    # line), so the file's bytes are not on the page; what comes back is a file that Jekyll renders
    # to the very same page, with the front matter and footer byte for byte.
    original, again = read_post_file(REFERENCE), read_post_file(exported)
    assert exported.read_text(encoding="utf-8").startswith(REFERENCE.read_text(encoding="utf-8").split("\n<p>")[0])
    assert exported.read_text(encoding="utf-8").endswith(REFERENCE.read_text(encoding="utf-8").split("</p>\n")[-1])
    assert kramdown.render(again.body) == kramdown.render(original.body)
    files = list((tmp_path / "site" / "_posts").glob("*.md"))
    assert len(files) == 49
    # Every media post whose article is raw HTML in its file renders to the page it came from.
    same = [p.name for p in files if (POSTS / p.name).exists()
            and kramdown.render(read_post_file(p).body) == kramdown.render(read_post_file(POSTS / p.name).body)]
    assert len(same) >= 8


def test_raw_articles_are_kept_compressed(crawled):
    from finews.storage.db import RAW_ARTICLES
    from finews.storage.store import read_raw

    doc = crawled[RAW_ARTICLES].find_one({"_id": "NW202203012292975846"})
    raw = read_raw(doc)
    assert raw.startswith("<p>近日，省政府新闻办") and raw.endswith('<p class="em_media">（文章来源：河北日报）</p>')
    assert len(doc["raw"]) < len(raw.encode("utf-8")) / 2
    assert crawled[RAW_ARTICLES].count_documents({}) == 49


def test_reprocess_changes_nothing_when_the_cleaner_is_the_same(crawled, mongo_uri):
    result = _finews(crawled, mongo_uri, "reprocess")
    assert result.returncode == 0, result.stderr
    assert "unchanged=49" in result.stdout and "updated" not in result.stdout
    assert crawled.post_versions.count_documents({}) == 0


def test_reprocess_brings_an_old_cleaning_up_to_date(crawled, mongo_uri):
    """A post cleaned by an older cleaner (widget markup left in) is cleaned
    again from its kept source, as a new version, without a crawl."""
    from finews.core.normalize import content_hash

    code = "NW202205262391921712"
    current = crawled.posts.find_one({"_id": code})
    stale_html = current["body_html"] + '<p style="display:none">EM widget</p>'
    crawled.posts.update_one({"_id": code}, {"$set": {
        "body_html": stale_html,
        "content_hash": content_hash(current["title"], current["published_at"].isoformat(), stale_html)}})
    result = _finews(crawled, mongo_uri, "reprocess", "--category", "shanghaizhengquanbao")
    assert result.returncode == 0, result.stderr
    assert "updated=1" in result.stdout
    after = crawled.posts.find_one({"_id": code})
    assert after["body_html"] == current["body_html"] and after["version"] == 2
    assert crawled.post_versions.find_one({"info_code": code})["body_html"] == stale_html
