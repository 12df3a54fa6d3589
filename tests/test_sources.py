"""Where sources disagree: one post, every source recorded, the feed's values win."""

from datetime import UTC, datetime

import pytest
from itemadapter import ItemAdapter

from finews.core.normalize import normalize_post
from finews.storage.store import PostStore
from pipelines.mongo import _post_doc

CODE = "NW202112082206672930"
ROLLING_ITEM = {"title": "离岸人民币兑美元升至6.3512",
                "digest": "【离岸人民币兑美元升至6.3512】离岸人民币兑美元升至6.3512。",
                "id": "202112082206672930", "infoCode": CODE, "url_w": "http://x/news/1,202112082206672930.html",
                "showtime": "2021-12-08 10:46:18"}


def _doc(spider, time_text, title="离岸人民币兑美元升至6.3512", **extra):
    fields = {"spider": spider, "url": f"http://replica/{spider}", "title": title, "time_text": time_text,
              "raw_code": "202112082206672930", "body_html": "<p>离岸人民币兑美元升至6.3512。</p>",
              "body_text": "离岸人民币兑美元升至6.3512。", "images": [], **extra}
    normalized = normalize_post(fields)
    return _post_doc(ItemAdapter({**fields, **normalized}))


@pytest.fixture
def store(db):
    return PostStore(db, near_duplicates=False)


def test_feed_time_replaces_the_mirror_time_and_is_never_replaced_back(store, db):
    # The mirror shows this post 8 hours late (its file date has no +0800).
    store.write_posts([_doc("category", "2021-12-08 18:46:18")])
    assert db.posts.find_one()["time_source"] == "page"
    counts = store.write_posts([_doc("newslist", "2021-12-08 10:46:18", feed="rolling", time_source="feed",
                                     text_payload='{"content": "x"}')])
    assert counts["updated"] == 1
    post = db.posts.find_one()
    assert post["published_at"] == datetime(2021, 12, 8, 2, 46, 18, tzinfo=UTC)
    assert (post["time_source"], sorted(post["sources"]), post["version"]) == ("feed", ["mirror", "rolling"], 2)
    # A later mirror page (other title, late time) changes neither.
    counts = store.write_posts([_doc("category", "2021-12-08 18:46:18", title="改过的标题")])
    assert counts["unchanged"] == 1
    post = db.posts.find_one()
    assert (post["title"], post["published_at"].hour, post["version"]) == ("离岸人民币兑美元升至6.3512", 2, 2)
    assert sorted(post["sources"]) == ["mirror", "rolling"]
    assert db.raw_articles.find_one({"_id": CODE})["payload"]


def test_a_feed_listing_dates_a_post_it_did_not_fetch(store, db):
    store.write_posts([_doc("category", "2021-12-08 18:46:18")])
    listing = _post_doc(ItemAdapter({"spider": "newslist", "url": "http://replica/feed", "feed": "rolling",
                                     "feed_listing": [{"code": "202112082206672930", "info_code": CODE,
                                                       "fields": ROLLING_ITEM}]}))
    counts = store.write_posts([listing])
    assert counts["feed_items_kept"] == 1 and counts["feed_values_updated"] == 1
    post = db.posts.find_one()
    assert (post["time_source"], post["published_at"].hour, post["sources"]) == ("feed", 2, ["mirror", "rolling"])
    kept = db.feed_items.find_one({"_id": "rolling:202112082206672930"})
    assert kept["item"] == ROLLING_ITEM and kept["info_code"] == CODE
    # The same listing again changes nothing.
    assert "feed_values_updated" not in store.write_posts([listing])
    assert db.posts.find_one()["version"] == 2


def test_share_time_beats_page_but_not_feed(store, db):
    store.write_posts([_doc("category", "2021-12-08 18:46:18")])
    store.write_posts([_doc("newsshare", "2021-12-08 10:46:18")])
    assert (db.posts.find_one()["time_source"], db.posts.find_one()["published_at"].hour) == ("share", 2)
    store.write_posts([_doc("category", "2021-12-08 18:46:18")])
    assert db.posts.find_one()["published_at"].hour == 2


def test_reprocess_keeps_where_the_time_came_from(store, db):
    from finews.storage.reading import reprocess

    store.write_posts([_doc("newslist", "2021-12-08 10:46:18", feed="rolling", time_source="feed",
                            raw_article="<p>离岸人民币兑美元升至6.3512。</p><script>x()</script>")])
    reprocess(db, db.posts.find())
    post = db.posts.find_one()
    assert (post["time_source"], post["published_at"].hour, post["sources"]) == ("feed", 2, ["rolling"])
