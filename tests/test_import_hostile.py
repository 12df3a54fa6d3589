"""``finews import`` of a dump written by an attacker: every line is checked
before any is written, a bad line is one line and exit 2, and nothing MongoDB
would read as an operator or a path reaches ``posts``. ``finews stats`` and
``finews export`` stay total over times an older finews stored."""

import json
import os
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from finews.cli import main
from finews.storage import importing
from finews.storage.importing import BadDump, check_dump, import_dump
from finews.storage.store import PostStore
from tests.conftest import ROOT

# Two posts as ``finews export --format jsonl`` writes them (copied from a real export).
FIRST = {
    "_id": "NW202112082206704122", "info_code": "NW202112082206704122", "kind": "rolling",
    "title": "华尔街最高！大摩上调苹果目标价至200美元", "published_at": "2021-12-08T02:19:17Z",
    "media": "东财滚动", "category": "emnews", "tags": ["东财滚动新闻"],
    "body_html": "<p>摩根士丹利分析师维持了对苹果的“增持”评级。</p>",
    "body_text": "摩根士丹利分析师维持了对苹果的“增持”评级。",
    "url": "http://127.0.0.1/2021-12-08-202112082206704122.md",
    "source_url": "http://finance.eastmoney.com/news/1344,202112082206704122.html", "images": [],
    "content_hash": "7b409f25897717dbcf588ed7b3439b341f9ca6a7813bf92805fab6f6844d8dad", "version": 1,
    "first_seen_at": "2022-12-05T08:01:06.085000Z", "crawled_at": "2022-12-05T08:01:06.085000Z",
    "schema_version": 2, "time_source": "page",
}
SECOND = FIRST | {
    "_id": "NW202203012292975846", "info_code": "NW202203012292975846", "kind": "media",
    "title": "《河北省制造业高质量发展“十四五”规划》印发", "published_at": "2022-03-01T08:46:38Z",
    "media": "河北日报", "category": "hebeiribao", "tags": ["河北日报新闻"],
    "body_html": "<p>近日，河北省政府办公厅印发规划。</p>", "body_text": "近日，河北省政府办公厅印发规划。",
    "url": "http://127.0.0.1/2022-03-01-NW202203012292975846.md", "source_url": "",
    "content_hash": "a" * 64, "version": 3, "sources": ["mirror", "media"],
    "updated_at": "2022-12-06T00:00:00Z", "near_duplicates": ["NW202112082206704122"],
}


def _line(doc) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode("utf-8") + b"\n"


def _dump(tmp_path, second: bytes, name="dump.jsonl"):
    """A dump whose first line is a good post and whose second is ``second``."""
    path = tmp_path / name
    path.write_bytes(_line(FIRST) + second)
    return path


def _stored(db) -> int:
    """Documents in every collection the import writes to."""
    return sum(db[name].count_documents({}) for name in db.list_collection_names() if not name.startswith("system."))


@pytest.fixture
def finews(monkeypatch, mongo_uri, db, capsys):
    """``finews ARGS`` in this process against the test database: (exit code, stdout, stderr)."""
    monkeypatch.setenv("MONGO_URI", mongo_uri)
    monkeypatch.setenv("MONGO_DATABASE", db.name)

    def run(*args):
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err
    return run


def _refused(finews, db, path, expected: str):
    """The dump is refused as a whole: exit 2, one line naming line 2, nothing written."""
    with pytest.raises(BadDump) as raised:
        check_dump(path)
    assert "line 2: " in str(raised.value) and expected in str(raised.value)
    code, out, err = finews("import", str(path))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "line 2: " in err and "Traceback" not in err
    assert _stored(db) == 0


BAD_VALUES = {
    # times an older finews stored or a dump could claim; in_range's bounds are [1990-01-01, 2100-01-01) UTC
    "year_9999": ({"published_at": "9999-12-31T23:59:59Z"}, "outside the stored range"),
    "year_1": ({"published_at": "0001-01-01T00:00:00Z"}, "outside the stored range"),
    "overflow_to_utc": ({"published_at": "9999-12-31T23:00:00-05:00"}, "outside the stored range"),
    "before_1990": ({"published_at": "1989-12-31T23:59:59Z"}, "outside the stored range"),
    "from_2100": ({"published_at": "2100-01-01T00:00:00Z"}, "outside the stored range"),
    "bookkeeping_time": ({"crawled_at": "9999-12-31T23:59:59Z"}, "crawled_at"),
    "not_iso": ({"published_at": "yesterday"}, "not an ISO time"),
    "time_as_number": ({"published_at": 1646124398}, "not an ISO time"),
    "time_as_null": ({"updated_at": None}, "updated_at is null"),
    # types of the post model
    "title_number": ({"title": 5}, "title is an integer, not a string"),
    "title_empty": ({"title": ""}, "title is empty"),
    "title_object": ({"title": {"zh": "x"}}, "title is an object"),
    "tags_string": ({"tags": "河北日报新闻"}, "tags is a string"),
    "tags_numbers": ({"tags": ["ok", 2]}, "tags item 2 is an integer"),
    "images_nested": ({"images": [[[]]]}, "images item 1 is a list"),
    "version_string": ({"version": "1"}, "version is a string"),
    "version_boolean": ({"version": True}, "version is a boolean"),
    "version_float": ({"version": 1.5}, "version is a number"),
    "version_9_bytes": ({"version": 2 ** 63}, "over 8 bytes"),
    "version_zero": ({"version": 0}, "below 1"),
    "kind": ({"kind": "evil"}, "kind 'evil' is not one of"),
    "code": ({"info_code": "NW1"}, "info_code 'NW1' does not match"),
    "code_newline": ({"info_code": "NW202203012292975846\n"}, "does not match"),
    "hash": ({"content_hash": "abc"}, "content_hash is shorter than 64"),
    "lone_surrogate": ({"body_text": "正文\ud800"}, "body_text holds a lone surrogate"),
    "surrogate_in_list": ({"tags": ["\udfff"]}, "tags[0] holds a lone surrogate"),
}


@pytest.mark.parametrize("change, expected", BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_a_value_the_model_refuses_on_line_2_stores_nothing(finews, db, tmp_path, change, expected):
    second = json.dumps(SECOND | change, ensure_ascii=True).encode("ascii") + b"\n"  # surrogates as \ud800 escapes
    _refused(finews, db, _dump(tmp_path, second), expected)


BAD_KEYS = {
    "where": ({"$where": "sleep(1000)"}, "key '$where' refused"),
    "dotted": ({"a.b": 1}, "key 'a.b' refused"),
    "nul": ({"a\0b": 1}, "refused"),
    "operator_in_a_list": ({"tags": [{"$gt": ""}]}, "key 'tags[0].$gt' refused"),
    "extended_json_date": ({"published_at": {"$date": "2022-03-01T08:46:38Z"}}, "key 'published_at.$date' refused"),
    "dotted_deep": ({"images": [{"a": [{"x.y": 1}]}]}, "x.y' refused"),
    "unknown_field": ({"extra": "x"}, "field 'extra' is not in the post model"),
    # the store's own transient keys: a listing would be taken for a feed page, the post lost
    "feed_listing": ({"_feed_listing": {"feed": "rolling", "url": "x", "items": []}}, "'_feed_listing' is not in"),
    "sources": ({"_sources": ["evil"]}, "'_sources' is not in"),
    "raw_article": ({"raw_article": "<p>x</p>"}, "'raw_article' is not in"),
}


@pytest.mark.parametrize("change, expected", BAD_KEYS.values(), ids=BAD_KEYS.keys())
def test_keys_mongodb_reads_as_operators_or_paths_are_refused(finews, db, tmp_path, change, expected):
    _refused(finews, db, _dump(tmp_path, _line(SECOND | change)), expected)


BAD_LINES = {
    "array": (b"[1, 2, 3]\n", "not a post (a list"),
    "string": (b'"hello"\n', "not a post (a string"),
    "null": (b"null\n", "not a post (null"),
    "50000_brackets": (b"[" * 50_000 + b"\n", "nested too deeply"),
    "50000_closed": (b"[" * 50_000 + b"]" * 50_000 + b"\n", "nested too deeply"),
    "50000_objects": (b'{"a":' * 50_000 + b"1" + b"}" * 50_000 + b"\n", "nested too deeply"),
    "5000_digits": (b'{"version": ' + b"1" * 5000 + b"}\n", "not JSON"),
    "half_line": ('{"title": "半行\n'.encode(), "not JSON"),
    "invalid_utf8": (b'{"title": "\xff\xfe"}\n', "not UTF-8 text (byte 0xff at byte 12)"),
    "nul_bytes": (b"\0" * 100 + b"\n", "not JSON"),
}


@pytest.mark.parametrize("second, expected", BAD_LINES.values(), ids=BAD_LINES.keys())
def test_a_line_that_is_no_post_is_one_line_and_exit_2(finews, db, tmp_path, second, expected):
    _refused(finews, db, _dump(tmp_path, second), expected)


def test_a_line_longer_than_any_post_is_refused_before_it_is_parsed(finews, db, tmp_path, monkeypatch):
    """The real bound is 96 MiB (six JSON bytes per byte of a 16 MiB document);
    a small one shows the check without writing 100 MB."""
    monkeypatch.setattr(importing, "MAX_LINE_BYTES", 2000)
    _refused(finews, db, _dump(tmp_path, b'{"title": "' + b"x" * 5000 + b'"}\n'), "longer than")


def test_a_file_that_is_no_dump_is_one_line_and_exit_2(finews, db, tmp_path):
    bom = tmp_path / "bom.jsonl"
    bom.write_bytes(b"\xef\xbb\xbf" + _line(FIRST))
    for path, expected in ((tmp_path, "cannot read"), (tmp_path / "missing.jsonl", "cannot read"),
                           (bom, "line 1: not JSON (Unexpected UTF-8 BOM")):
        code, _, err = finews("import", str(path))
        assert code == 2 and err.count("\n") == 1 and expected in err, err
    assert _stored(db) == 0


def test_crlf_line_ends_blank_lines_and_an_empty_file_import(finews, db, tmp_path):
    """CRLF is JSON whitespace (an editor on Windows), a blank line holds no
    post, and an empty file is the export of an empty selection: none is bad."""
    path = tmp_path / "crlf.jsonl"
    path.write_bytes(_line(FIRST).replace(b"\n", b"\r\n") + b"\r\n  \n" + _line(SECOND).replace(b"\n", b"\r\n"))
    code, out, _ = finews("import", str(path))
    assert code == 0 and "inserted=2" in out
    second = db.posts.find_one({"_id": SECOND["_id"]})
    assert second["published_at"] == datetime(2022, 3, 1, 8, 46, 38, tzinfo=UTC)
    assert second["version"] == 3 and second["sources"] == ["mirror", "media"]
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    assert finews("import", str(empty))[:2] == (0, f"imported 0 posts from {empty}: nothing\n")


def test_a_file_changed_after_its_check_is_one_line_and_exit_2(finews, db, tmp_path, monkeypatch):
    """A line made bad between the check and the write: the write pass stops
    there with one line (the posts before it are written), never a traceback."""
    path = tmp_path / "dump.jsonl"
    path.write_bytes(_line(FIRST) + _line(SECOND))
    checked = importing.check_dump

    def check_then_spoil(file):
        total = checked(file)
        path.write_bytes(_line(FIRST) + _line(SECOND | {"$where": "1"}))
        return total

    monkeypatch.setattr(importing, "check_dump", check_then_spoil)
    code, _, err = finews("import", str(path), "--batch", "1")
    assert code == 2 and err.count("\n") == 1 and "line 2: key '$where' refused" in err and "changed" in err
    assert [doc["_id"] for doc in db.posts.find()] == [FIRST["_id"]]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2 ** 70), 2 ** 70) | st.floats(allow_nan=True)
    | st.text(max_size=20)
    | st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat().replace("+00:00", "Z"))
    | st.sampled_from(["", "$where", "a.b", "\ud800", "NW202203012292975846", "9999-12-31T23:59:59Z", "media"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.text(max_size=5) | st.sampled_from(["$gt", "a.b", "\0", "\udc00"]), inner, max_size=3),
    max_leaves=8)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(field=st.sampled_from([*FIRST, "sources", "near_duplicates", "updated_at", "$set", "x.y", "extra"]),
       value=JSON)
def test_any_value_is_a_bad_line_or_a_post_stored_or_rejected(db, tmp_path, field, value):
    """Whatever one field holds, the check refuses the line or the write takes
    it without an error: the post is stored (or a counted reject)."""
    path = tmp_path / "one.jsonl"
    path.write_bytes(json.dumps(SECOND | {field: value}).encode("ascii") + b"\n")
    for name in db.list_collection_names():
        db[name].delete_many({})
    try:
        check_dump(path)
    except BadDump:
        assert _stored(db) == 0
        return
    counts = import_dump(PostStore(db, retry_attempts=1), path)
    assert counts["inserted"] + sum(n for key, n in counts.items() if key.startswith("rejected/")) == 1
    for post in db.posts.find():
        assert not any(key.startswith("$") or "." in key for key in post)


def _stored_by_an_older_finews(db, times: dict[str, datetime]) -> None:
    """Posts as a database written by an older finews holds them, times unchecked."""
    for code, when in times.items():
        doc = FIRST | {"_id": code, "info_code": code, "published_at": when}
        for name in ("first_seen_at", "crawled_at"):
            doc[name] = datetime(2022, 12, 5, tzinfo=UTC)
        db.posts.insert_one(doc)


GOOD, FAR, EARLY = "NW202112082206704122", "NW202112082206704123", "NW202112082206704124"
OLD_TIMES = {GOOD: datetime(2021, 12, 8, 2, 19, 17, tzinfo=UTC),
             FAR: datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),  # a day of year 10000 in Shanghai
             EARLY: datetime(1, 1, 1, tzinfo=UTC)}


def test_stats_counts_a_stored_time_that_cannot_be_shown_apart(finews, db):
    _stored_by_an_older_finews(db, OLD_TIMES)
    code, out, err = finews("stats", "--days", "0")
    assert code == 0 and "Traceback" not in err
    assert "3 posts stored; 2 with a time out of range, not counted" in out
    days = [line.split() for line in out.splitlines() if line[:4].isdigit()]
    assert days == [["2021-12-08", "emnews", "1"]]


def test_export_skips_a_stored_time_that_cannot_be_shown(finews, db, tmp_path):
    _stored_by_an_older_finews(db, OLD_TIMES)
    dump = tmp_path / "posts.jsonl"
    code, _, err = finews("export", "--format", "jsonl", str(dump))
    assert code == 0 and "exported 1 posts" in err and "skipped 2" in err
    assert [json.loads(line)["_id"] for line in dump.read_text(encoding="utf-8").splitlines()] == [GOOD]
    assert check_dump(dump) == 1  # what export writes, import takes

    code, _, err = finews("export", "--format", "jekyll", str(tmp_path / "site"))
    assert code == 0 and "exported 1 posts" in err and "skipped 2" in err
    assert [p.name for p in (tmp_path / "site" / "_posts").iterdir()] == ["2021-12-08-202112082206704122.md"]


@pytest.mark.slow
def test_finews_import_of_an_impossible_time_on_line_2_is_exit_2_and_one_line(mongo_uri, db, tmp_path):
    path = _dump(tmp_path, _line(SECOND | {"published_at": "9999-12-31T23:59:59Z"}))
    env = {**os.environ, "MONGO_URI": mongo_uri, "MONGO_DATABASE": db.name}
    result = subprocess.run([sys.executable, "-m", "finews.cli", "import", str(path)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "line 2: published_at" in result.stderr
    assert "Traceback" not in result.stderr
    assert _stored(db) == 0
