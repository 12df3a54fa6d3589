"""The posts validator matches docs/schema.md and refuses what readers must never see."""

import re
from datetime import UTC, datetime

import pytest
from pymongo.errors import WriteError

from finews.core.model import SCHEMA_VERSION
from finews.storage.schema import POST_PROPERTIES
from tests.conftest import ROOT


def documented_post_fields() -> set[str]:
    text = (ROOT / "docs" / "schema.md").read_text(encoding="utf-8")
    section = text.split("## `posts`", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([a-z_]+)` \|", section, re.M))


def test_validator_and_docs_name_the_same_fields():
    assert documented_post_fields() == set(POST_PROPERTIES)


def _post(**overrides):
    now = datetime.now(UTC)
    post = {"_id": "NW202203012292975846", "info_code": "NW202203012292975846", "kind": "media", "title": "标题",
            "published_at": now, "media": "河北日报", "category": "hebeiribao", "tags": ["河北日报新闻"],
            "body_html": "<p>正文</p>", "body_text": "正文", "url": "http://x/", "source_url": "http://y/",
            "images": [], "content_hash": "a" * 64, "version": 1, "first_seen_at": now, "crawled_at": now,
            "schema_version": SCHEMA_VERSION}
    return {k: v for k, v in (post | overrides).items() if v is not ...}


def test_a_valid_post_without_optional_fields_is_accepted(db):
    db.posts.insert_one(_post())
    assert db.posts.count_documents({}) == 1


@pytest.mark.parametrize("overrides", [
    {"title": ""}, {"title": ...}, {"info_code": "NW12"}, {"_id": "202203012292975846"}, {"kind": "other"},
    {"published_at": "2022-03-01"}, {"tags": "河北日报新闻"}, {"version": 0}, {"content_hash": "x"},
    {"time_source": "guess"}, {"sources": "media"}, {"schema_version": ...}, {"schema_version": 0},
])
def test_malformed_posts_are_refused(db, overrides):
    with pytest.raises(WriteError):
        db.posts.insert_one(_post(**overrides))


def test_posts_with_time_source_and_sources_are_accepted(db):
    db.posts.insert_one(_post(time_source="feed", sources=["rolling", "media", "mirror"]))
    assert db.posts.find_one()["time_source"] == "feed"
