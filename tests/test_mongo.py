"""PostStore and the spool against a real MongoDB wire-protocol server."""

from datetime import UTC, datetime

import pytest

from finews.core.normalize import normalize_post
from finews.storage.store import PostStore, Spool


def _post(code="NW202203012292975846", body="<p>正文</p>", title="标题", kind_code=None):
    return normalize_post({
        "url": f"http://127.0.0.1:9/x/{code}.html", "title": title, "time_text": "2022-03-01 16:46:38",
        "body_html": body, "body_text": body.strip("<p>/"), "raw_code": kind_code or code,
        "tags": ["河北日报新闻"], "category": "hebeiribao",
    })


def test_new_posts_are_inserted_with_their_bookkeeping(db):
    counts = PostStore(db).write_posts([_post()])
    assert counts["inserted"] == 1
    stored = db.posts.find_one({"_id": "NW202203012292975846"})
    assert stored["info_code"] == "NW202203012292975846" and stored["version"] == 1
    assert stored["first_seen_at"] == stored["crawled_at"]
    assert stored["published_at"] == datetime(2022, 3, 1, 8, 46, 38, tzinfo=UTC)


def test_unchanged_refetch_writes_only_crawled_at(db):
    store = PostStore(db)
    store.write_posts([_post()])
    before = db.posts.find_one()
    counts = store.write_posts([_post()])
    after = db.posts.find_one()
    assert counts == {"unchanged": 1}
    assert after["crawled_at"] >= before["crawled_at"]
    def unstamped(doc):
        return {k: v for k, v in doc.items() if k != "crawled_at"}

    assert unstamped(after) == unstamped(before)
    assert db.post_versions.count_documents({}) == 0


def test_changed_post_becomes_a_new_version_and_the_old_is_kept(db):
    store = PostStore(db)
    store.write_posts([_post(body="<p>第一版</p>")])
    counts = store.write_posts([_post(body="<p>第二版</p>")])
    assert counts == {"updated": 1}
    stored = db.posts.find_one()
    assert stored["version"] == 2 and stored["body_html"] == "<p>第二版</p>" and stored["updated_at"]
    old = db.post_versions.find_one({"info_code": "NW202203012292975846"})
    assert (old["version"], old["body_html"], old["title"]) == (1, "<p>第一版</p>", "标题")
    assert db.posts.count_documents({}) == 1


def test_twins_are_stored_once_and_the_media_version_wins(db):
    store = PostStore(db)
    media = _post("NW202204212352227421", body="<p>媒体</p>")
    rolling = _post("NW202204212352227421", body="<p>滚动</p>", kind_code="202204212352227421")
    assert store.write_posts([media]) == {"inserted": 1}
    assert store.write_posts([rolling]) == {"twin_kept": 1}
    assert db.posts.find_one()["body_html"] == "<p>媒体</p>"
    assert store.write_posts([rolling, media])["inserted"] == 0
    assert db.posts.count_documents({}) == 1


def test_rejects_are_kept_once_per_url_and_reason(db):
    store = PostStore(db)
    reject = {"url": "http://x/a.html", "reason": "missing_title", "spider": "category", "detail": "missing_title"}
    store.write_rejects([reject])
    store.write_rejects([reject])
    stored = db.rejects.find_one()
    assert (stored["count"], stored["spider"], db.rejects.count_documents({})) == (2, "category", 1)
    assert stored["first_seen_at"] <= stored["last_seen_at"]


def test_spooled_batches_replay_once(db, tmp_path):
    spool = Spool(tmp_path / "spool")
    spool.append([_post()], [{"url": "http://x/b", "reason": "http_500", "spider": "category"}])
    spool.append([_post()], [])
    counts = spool.replay(PostStore(db))
    assert counts["inserted"] == 1 and counts["unchanged"] == 1
    assert db.posts.count_documents({}) == 1 and db.rejects.count_documents({}) == 1
    assert list((tmp_path / "spool").iterdir()) == []
    assert spool.replay(PostStore(db)) == {}


def test_a_failed_replay_keeps_the_spool(db, tmp_path):
    from pymongo.errors import AutoReconnect

    class DeadStore:
        def repair(self):
            return {}

        def write_batch(self, posts, rejects):
            raise AutoReconnect("down")

    spool = Spool(tmp_path / "spool")
    spool.append([_post()], [])
    with pytest.raises(AutoReconnect):
        spool.replay(DeadStore())
    assert [p.suffix for p in (tmp_path / "spool").iterdir()] == [".jsonl"]
    assert spool.replay(PostStore(db))["inserted"] == 1


def test_a_spool_left_mid_replay_by_a_dead_process_is_taken_over(db, tmp_path):
    spool = Spool(tmp_path / "spool")
    path = spool.append([_post()], [])
    path.rename(path.with_name(f"{path.name.split('.')[0]}.replaying-999999999"))
    assert spool.replay(PostStore(db))["inserted"] == 1
    assert list((tmp_path / "spool").iterdir()) == []


def _feed_post(body_chars: int, payload: str, raw: str = ""):
    from finews.storage.sources import PAYLOAD_FIELD, SOURCES_FIELD

    text = "".join(chr(0x4E00 + (i * 7919) % 20000) for i in range(body_chars))  # compresses little, like news
    return {**_post(body=f"<p>{text}</p>"), SOURCES_FIELD: ["rolling"], PAYLOAD_FIELD: payload, "raw_article": raw}


def test_the_text_answer_a_feed_post_carries_does_not_count_toward_its_size(db):
    from finews.storage.store import document_size

    doc = _feed_post(60_000, payload="x" * 400_000)
    limit = document_size(doc) + 1000  # the post fits; with its text answer it would not
    counts, refused = PostStore(db, max_document_bytes=limit).write_batch([doc], [])
    assert counts == {"inserted": 1} and not refused
    stored = db.posts.find_one()
    assert stored["sources"] == ["rolling"] and "_text_payload" not in stored
    assert db.raw_articles.find_one()["payload"]  # the answer kept apart, with the source


def test_a_text_too_large_to_keep_is_left_out_flagged_and_counted(db, monkeypatch):
    import finews.storage.sources as sources
    from finews.storage.store import read_raw

    monkeypatch.setattr(sources, "MAX_KEPT_BYTES", 4_000)
    noisy = "".join(chr(0x4E00 + (i * 7919) % 20000) for i in range(5_000))
    counts, refused = PostStore(db).write_batch([_feed_post(100, payload=noisy, raw="<p>页面</p>")], [])
    assert counts["inserted"] == 1 and counts["payload_too_large"] == 1 and not refused
    kept = db.raw_articles.find_one()
    assert "payload" not in kept and "over the 4000-byte limit" in kept["payload_omitted"]
    assert read_raw(kept) == "<p>页面</p>"  # the page's source, small enough, is kept


def test_a_batch_written_again_after_failing_past_its_insert_counts_its_posts_as_inserted(db, monkeypatch):
    from pymongo.errors import AutoReconnect

    store = PostStore(db, retry_attempts=1)
    signing = store.near_duplicates.flag
    monkeypatch.setattr(store.near_duplicates, "flag", lambda *a, **k: (_ for _ in ()).throw(AutoReconnect("gone")))
    with pytest.raises(AutoReconnect):  # the outage hits after the posts were inserted: the batch is spooled
        store.write_batch([_post()], [])
    assert db.posts.count_documents({}) == 1 and db.write_journal.count_documents({}) == 1
    monkeypatch.setattr(store.near_duplicates, "flag", signing)
    assert store.write_batch([_post()], [])[0] == {"inserted": 1}  # the replay: stored by this run, not unchanged
    assert db.near_duplicate_index.count_documents({}) == 1
    store.repair()  # as a replay does first: the failed attempt's journal entry is finished
    assert db.write_journal.count_documents({}) == 0
    assert store.write_batch([_post()], [])[0] == {"unchanged": 1}
