"""Every source kept, the best one wins: text answers kept whatever they
change, a mirror page never replaces a text answer's body, and the posts
still without a text answer are found for the upgrade job."""

import json

import pytest
from itemadapter import ItemAdapter

from finews.core.normalize import normalize_post
from finews.storage.sources import posts_missing_text
from finews.storage.store import PostStore
from pipelines.mongo import _post_doc

CODE = "NW202203012292975846"
PAGE_BODY = "<p>近日，省政府新闻办召开新闻发布会</p>\n<p>（文章来源：河北日报）</p>"
ANSWER_BODY = "<p>近日，省政府新闻办召开新闻发布会</p><p>（文章来源：河北日报）</p>"


def _doc(spider, body, code=CODE, **extra):
    fields = {"spider": spider, "url": f"http://replica/{spider}/{code}", "title": "规划出台",
              "time_text": "2022-03-01 16:46:38", "raw_code": code, "body_html": body, "body_text": "x",
              "images": [], "raw_article": body, "media": "河北日报", "tags": ["河北日报新闻"],
              "category": "hebeiribao",
              "source_url": "http://finews.zning.xyz/html_News/NewsShare.html?infoCode=" + code,
              **extra}
    return _post_doc(ItemAdapter({**fields, **normalize_post(fields)}))


def _answer(body):
    return json.dumps({"title": "规划出台", "showtime": "2022-03-01 16:46:38", "medianame": "河北日报", "text": body},
                      ensure_ascii=False)


@pytest.fixture
def store(db):
    return PostStore(db, near_duplicates=False)


def test_a_text_answer_that_changes_nothing_is_kept(store, db):
    store.write_posts([_doc("category", ANSWER_BODY)])
    counts = store.write_posts([_doc("newsshare", ANSWER_BODY, text_payload=_answer(ANSWER_BODY),
                                     time_source="share")])
    assert counts.get("updated", 0) == 0
    assert db.raw_articles.count_documents({"_id": CODE, "payload": {"$exists": True}}) == 1
    assert sorted(db.posts.find_one()["sources"]) == ["mirror", "share"]


def test_a_mirror_page_after_a_text_answer_keeps_the_answers_body(store, db):
    store.write_posts([_doc("newsshare", ANSWER_BODY, text_payload=_answer(ANSWER_BODY), time_source="share")])
    counts = store.write_posts([_doc("category", PAGE_BODY)])
    post = db.posts.find_one()
    assert (post["body_html"], post["version"], counts.get("unchanged")) == (ANSWER_BODY, 1, 1)
    # The mirror page itself is kept beside it, for the export.
    kept = db.raw_articles.find_one({"_id": CODE})
    assert kept["pages"]["media"]["time_text"] == "2022-03-01 16:46:38"


def test_a_mirror_page_first_is_replaced_by_the_text_answer(store, db):
    store.write_posts([_doc("category", PAGE_BODY)])
    store.write_posts([_doc("newsshare", ANSWER_BODY, text_payload=_answer(ANSWER_BODY), time_source="share")])
    assert db.posts.find_one()["body_html"] == ANSWER_BODY


def test_posts_missing_text_are_those_without_an_answer_up_to_the_limit(store, db):
    codes = [f"NW2022030122929758{n:02d}" for n in range(10)]
    store.write_posts([_doc("category", PAGE_BODY, code=code) for code in codes])
    store.write_posts([_doc("newsshare", ANSWER_BODY, code=code, text_payload=_answer(ANSWER_BODY),
                            time_source="share") for code in codes[:4]])
    assert [code for code, _ in posts_missing_text(db, batch=3)] == codes[4:]
    assert [code for code, _ in posts_missing_text(db, limit=2, batch=3)] == codes[4:6]
