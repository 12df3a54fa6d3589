"""One post model (finews/core/model.py): the item, the write projection, the
validator and docs/schema.md come from it, and older posts survive a new
required field."""

import os
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from itemadapter import ItemAdapter
from pymongo.errors import WriteError

from crawler.items import PostItem
from finews.cli import docs
from finews.core import model
from finews.core.normalize import normalize_post
from finews.storage.schema import POST_PROPERTIES, apply_validator, migrate
from finews.storage.store import PostStore
from pipelines.mongo import _post_doc
from tests.conftest import ROOT

CODE = "NW202203012292975846"


def _crawled(code=CODE, body="<p>正文</p>", **extra):
    return normalize_post({
        "url": f"http://127.0.0.1:9/hebeiribao/2022/03/01/{code}.html", "title": "标题",
        "time_text": "2022-03-01 16:46:38", "body_html": body, "body_text": body.strip("<p>/"), "raw_code": code,
        "tags": ["河北日报新闻"], "category": "hebeiribao", **extra,
    })


def _old_shaped(code: str, **overrides) -> dict:
    """A post as finews stored it before schema_version, time_source and sources existed."""
    now = datetime(2022, 3, 2, tzinfo=UTC)
    post = _crawled(code)
    del post["time_source"]
    return post | {"_id": code, "version": 1, "first_seen_at": now, "crawled_at": now} | overrides


def test_docs_schema_table_is_the_one_the_model_renders():
    fields = docs.TABLES["fields"]
    text = (ROOT / "docs" / "schema.md").read_text(encoding="utf-8")
    assert fields.begin in text and fields.end in text, "docs/schema.md lost its generated-table markers"
    table = text.split(fields.begin, 1)[1].split(fields.end, 1)[0]
    assert table == model.markdown_table(), "run: python -m finews.cli.docs --write-docs"


def test_markdown_command_prints_the_table():
    out = subprocess.run([sys.executable, "-m", "finews.cli.docs", "--markdown", "fields"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout == model.markdown_table()
    assert "| `schema_version` | int | yes" in out.stdout


def test_write_docs_renews_every_table_between_its_markers(tmp_path):
    """``--write-docs PATH`` rewrites the fields and the reasons tables and
    nothing else; a file without the markers is refused, left as it was."""
    original = (ROOT / "docs" / "schema.md").read_text(encoding="utf-8")
    stale = original
    for table in docs.TABLES.values():
        stale = stale.replace(table.render(), "| stale |\n")
    assert stale != original
    path = tmp_path / "schema.md"
    path.write_text(stale, encoding="utf-8")
    assert docs.main(["--write-docs", str(path)]) == 0
    assert path.read_text(encoding="utf-8") == original
    path.write_text("no markers\n", encoding="utf-8")
    assert docs.main(["--write-docs", str(path)]) == 2
    assert path.read_text(encoding="utf-8") == "no markers\n"


def test_item_projection_and_validator_come_from_the_model():
    assert set(model.CRAWLED_FIELDS) <= set(PostItem.fields)
    assert set(POST_PROPERTIES) == set(model.FIELDS)
    normalized = _crawled()
    assert set(normalized) == set(model.CRAWLED_FIELDS)
    item = PostItem(spider="category", **normalized)
    doc = _post_doc(ItemAdapter(item))
    assert {k: doc[k] for k in model.CRAWLED_FIELDS} == normalized


def test_an_optional_field_without_a_value_is_not_written():
    values = dict.fromkeys(model.REQUIRED, "x")
    assert "time_source" not in model.written(values)
    assert model.written(values | {"time_source": "feed"})["time_source"] == "feed"


def test_every_required_field_added_after_version_1_has_a_default():
    for field in model.POST_FIELDS:
        assert field.since <= model.SCHEMA_VERSION
        if field.required and field.since > 1:
            assert field.default is not None, f"{field.name}: older posts need a default"


def test_every_write_carries_the_current_schema_version(db):
    store = PostStore(db)
    store.write_posts([_crawled()])
    assert db.posts.find_one()["schema_version"] == model.SCHEMA_VERSION
    store.write_posts([_crawled(body="<p>第二版</p>")])
    assert db.posts.find_one()["schema_version"] == model.SCHEMA_VERSION


def test_posts_stored_before_schema_version_keep_taking_updates_and_migrate_upgrades_them(db):
    old_codes = [f"NW2022030122929758{n:02d}" for n in range(3)]
    db.posts.insert_many([_old_shaped(code) for code in old_codes], bypass_document_validation=True)
    store = PostStore(db)
    # An unchanged re-fetch writes only crawled_at, leaving the post old-shaped: accepted.
    assert store.write_posts([_crawled(old_codes[0])]) == {"unchanged": 1}
    assert "schema_version" not in db.posts.find_one({"_id": old_codes[0]})
    assert db.posts.update_one({"_id": old_codes[1]}, {"$set": {"crawled_at": datetime.now(UTC)}}).modified_count
    # A changed re-fetch revises it to the current shape.
    assert store.write_posts([_crawled(old_codes[2], body="<p>改过</p>")]) == {"updated": 1}
    assert db.posts.find_one({"_id": old_codes[2]})["schema_version"] == model.SCHEMA_VERSION

    assert migrate(db) == {2: 2}
    assert migrate(db) == {}
    for post in db.posts.find():
        assert post["schema_version"] == model.SCHEMA_VERSION
    # The same old post under a strict validator could not even take crawled_at.
    db.posts.insert_one(_old_shaped(CODE), bypass_document_validation=True)
    db.command("collMod", "posts", validationLevel="strict")
    with pytest.raises(WriteError):
        db.posts.update_one({"_id": CODE}, {"$set": {"crawled_at": datetime.now(UTC)}})


def test_a_new_required_field_never_breaks_older_posts(db, monkeypatch):
    """What adding a required field does: a version 3 with ``region`` (default ``cn``)."""
    PostStore(db).write_posts([_crawled(CODE)])  # a version 2 post
    db.posts.insert_one(_old_shaped("NW202203012292975800", region="hk"), bypass_document_validation=True)
    region = model.Field("region", "string", True, False, "where", since=3, default="cn")
    monkeypatch.setattr(model, "POST_FIELDS", (*model.POST_FIELDS, region))
    monkeypatch.setattr(model, "SCHEMA_VERSION", 3)
    apply_validator(db)

    with pytest.raises(WriteError):  # the validator now requires it of new posts
        db.posts.insert_one(_old_shaped("NW202203012292975801", schema_version=3))
    store = PostStore(db)
    assert store.write_posts([_crawled(CODE)]) == {"unchanged": 1}  # older posts still take updates
    assert store.write_posts([_crawled("NW202203012292975802")])["inserted"] == 1  # new ones get the default
    assert db.posts.find_one({"_id": "NW202203012292975802"})["region"] == "cn"

    assert migrate(db) == {2: 1, 3: 2}
    regions = {p["_id"]: (p["region"], p["schema_version"]) for p in db.posts.find()}
    assert regions == {CODE: ("cn", 3), "NW202203012292975800": ("hk", 3), "NW202203012292975802": ("cn", 3)}


@pytest.mark.slow  # a process of its own, or a scale: kept out of the fast suite's time
def test_migrate_command_upgrades_older_posts(db, mongo_uri):
    db.posts.insert_one(_old_shaped(CODE), bypass_document_validation=True)
    env = {**os.environ, "MONGO_URI": mongo_uri, "MONGO_DATABASE": db.name}
    out = subprocess.run([sys.executable, "-m", "finews.cli", "migrate"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "upgraded: to 2=1" in out.stdout
    assert db.posts.find_one()["schema_version"] == model.SCHEMA_VERSION


def test_the_model_and_the_reasons_are_domain_code():
    """Importable without Scrapy, Twisted or pymongo (a subprocess: this one has them loaded)."""
    check = ("import sys, finews.core.model, finews.core.reasons; "
             "print(sorted(m for m in ('scrapy', 'twisted', 'pymongo', 'bson') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr
