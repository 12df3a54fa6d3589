"""``finews import``: a JSONL dump loaded back through the store's bulk path."""

import json

import pytest

from finews.cli import main
from finews.core.clean import clean_article
from finews.core.normalize import Rejected, normalize_post
from finews.core.pages import parse_post_page
from finews.storage.store import PostStore


def _corpus_posts(site) -> list[dict]:
    docs = []
    for entry in site.entries:
        page = parse_post_page(site.post_page(entry))
        article = clean_article(page.body_html)
        post = entry.post
        try:
            docs.append(normalize_post({"url": f"http://127.0.0.1/{post.name}", "title": post.title,
                                        "time_text": post.date, "source_url": post.link, "tags": post.tags,
                                        "category": post.category,
                                        "body_html": article.body_html, "body_text": article.body_text}))
        except Rejected:
            continue  # a post the crawl rejects too (no article link)
    return docs


@pytest.fixture
def using(monkeypatch, mongo_uri):
    """Point the CLI at a database of the test server."""
    monkeypatch.setenv("MONGO_URI", mongo_uri)

    def use(name):
        monkeypatch.setenv("MONGO_DATABASE", name)
    return use


def test_export_then_import_into_a_fresh_database_gives_the_same_posts(db, site, tmp_path, using, capsys):
    counts, refused = PostStore(db).write_batch(_corpus_posts(site), [])
    assert counts["inserted"] == db.posts.count_documents({}) > 40 and not refused
    assert db.posts.count_documents({"near_duplicates": {"$exists": True}}) >= 2  # the corpus' twin stories
    dump = tmp_path / "posts.jsonl"
    using(db.name)
    assert main(["export", str(dump)]) == 0

    fresh = db.client[db.name + "_imported"]
    try:
        using(fresh.name)
        assert main(["import", str(dump), "--batch", "20"]) == 0
        assert f"inserted={counts['inserted']}" in capsys.readouterr().out
        original = {p["_id"]: p for p in db.posts.find()}
        imported = {p["_id"]: p for p in fresh.posts.find()}
        assert imported == original
        assert fresh.near_duplicate_index.count_documents({}) == db.near_duplicate_index.count_documents({})

        assert main(["import", str(dump)]) == 0  # twice: nothing new
        out = capsys.readouterr().out
        assert "inserted" not in out and "updated" not in out and f"unchanged={len(original)}" in out
        again = {p["_id"]: {k: v for k, v in p.items() if k != "crawled_at"} for p in fresh.posts.find()}
        assert again == {code: {k: v for k, v in p.items() if k != "crawled_at"} for code, p in original.items()}
    finally:
        db.client.drop_database(fresh.name)


def test_a_bad_file_is_one_line_and_exit_2_and_stores_nothing(db, site, tmp_path, using, capsys):
    using(db.name)
    good = _corpus_posts(site)[0]
    dump = tmp_path / "bad.jsonl"
    dump.write_text(json.dumps(good, default=str, ensure_ascii=False) + "\n" + '{"title": "半行\n', encoding="utf-8")
    assert main(["import", str(dump)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "line 2: not JSON" in err and "Traceback" not in err
    assert db.posts.count_documents({}) == 0  # checked before anything is written

    dump.write_text('{"info_code": "NW202203012292975846"}\n', encoding="utf-8")
    assert main(["import", str(dump)]) == 2
    assert "line 1: not a finews post (no " in capsys.readouterr().err

    assert main(["import", str(tmp_path / "missing.jsonl")]) == 2
    assert "cannot read" in capsys.readouterr().err
