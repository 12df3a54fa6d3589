"""The change log: every insert and revision of a post once, in order, for
followers, with several writers, killed writers and spool replays.

The expected changes come from the stored posts themselves (a post at
version N was written N times: its versions 1..N), not from the change log.
"""

import json
import os
import subprocess
import sys
import threading
from urllib.error import HTTPError
from urllib.request import urlopen

import pytest

from finews.cli import main
from finews.core.exits import EXIT_USAGE
from finews.core.normalize import normalize_post
from finews.serve.app import ServeServer
from finews.storage.changes import CHANGES, COUNTERS, DONE, INSERT, PENDING, SEQUENCE, ChangeLog
from finews.storage.db import ensure_indexes
from finews.storage.store import PostStore, Spool


def _post(n: int, body: str = "正文"):
    code = f"NW2022030122929{n:05d}"
    return normalize_post({
        "url": f"http://127.0.0.1:9/x/{code}.html", "title": f"标题{n}", "time_text": "2022-03-01 16:46:38",
        "body_html": f"<p>{body}{n}</p>", "body_text": f"{body}{n}", "raw_code": code,
        "tags": ["河北日报新闻"], "category": "hebeiribao",
    })


def _written(db) -> list[tuple[str, int]]:
    """Every (code, version) the database says was written."""
    return sorted((post["_id"], version) for post in db.posts.find({}, {"version": 1})
                  for version in range(1, post["version"] + 1))


def _follow(db, after: int = 0) -> tuple[list[tuple[str, int]], int]:
    seen, position = [], after
    while True:
        changes, position = ChangeLog(db).read(position, limit=7)
        if not changes:
            return seen, position
        seen += [(c["info_code"], c["version"]) for c in changes]


def _slow_writer(db):
    """A store whose writes land but whose positions stay open (pending)
    until ``finish()``: a writer between its post write and its settle."""
    store, held = PostStore(db, near_duplicates=False), []
    settle = store.changes.settle
    store.changes.settle = lambda done, void: held.append((done, list(void)))

    def finish():
        for done, void in held:
            settle(done, void)

    return store, finish


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_every_insert_and_revision_is_read_once_in_order(db):
    ensure_indexes(db)
    first, second = PostStore(db, near_duplicates=False), PostStore(db, near_duplicates=False)
    first.write_posts([_post(n) for n in range(5)])
    second.write_posts([_post(n) for n in range(3, 8)])  # 3 and 4 are the first writer's: not changes
    second.write_posts([_post(1, body="改过")])
    first.write_posts([_post(1, body="又改过"), _post(9)])
    seen, position = _follow(db)
    assert sorted(seen) == _written(db)
    assert len(seen) == len(set(seen)) == 9 + 2  # posts 0–7 and 9; post 1 revised twice
    positions = [c["position"] for c in ChangeLog(db).read(0)[0]]
    assert positions == sorted(positions)
    assert ChangeLog(db).read(position) == ([], position)


def test_two_writers_at_once_lose_and_repeat_nothing(db):
    ensure_indexes(db)
    follower_seen, stop = [], threading.Event()

    def follow():
        position = 0
        while not stop.is_set():
            changes, position = ChangeLog(db).read(position)
            follower_seen.extend((c["info_code"], c["version"]) for c in changes)
        changes, position = ChangeLog(db).read(position)
        follower_seen.extend((c["info_code"], c["version"]) for c in changes)

    def write(offset):
        store = PostStore(db, near_duplicates=False)
        for start in range(0, 60, 6):
            store.write_posts([_post(n) for n in range(start, start + 6)])  # both write the same codes
            store.write_posts([_post(start + offset, body=f"版本{offset}")])

    reader = threading.Thread(target=follow)
    reader.start()
    writers = [threading.Thread(target=write, args=(offset,)) for offset in (1, 2)]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    reader.join()
    assert sorted(follower_seen) == _written(db)
    assert len(follower_seen) == len(set(follower_seen))


def test_a_change_still_being_written_holds_the_follower_back(db):
    ensure_indexes(db)
    store = PostStore(db, near_duplicates=False)
    store.write_posts([_post(1)])
    slow, finish = _slow_writer(db)
    slow.write_posts([_post(2)])  # written, its position not yet settled
    store.write_posts([_post(3)])  # written after, positioned after
    seen, position = _follow(db)
    assert seen == [(_post(1)["info_code"], 1)]
    finish()
    later, _ = _follow(db, position)
    assert later == [(_post(2)["info_code"], 1), (_post(3)["info_code"], 1)]


def test_a_killed_writers_open_changes_are_settled_by_the_next_store(db):
    ensure_indexes(db)
    killed = ChangeLog(db)
    killed.pid = _dead_pid()  # a writer on this host that is gone
    written, lost = _post(1)["info_code"], _post(2)["info_code"]
    killed.open([(written, 1, INSERT), (lost, 1, INSERT)])
    PostStore(db, near_duplicates=False).write_posts([_post(1)])  # its first post landed, the second never:
    db[CHANGES].delete_many({"code": written, "state": DONE})  # ... as the killed writer wrote it
    assert _follow(db)[0] == []
    PostStore(db).repair()  # what every crawl's start does
    seen, _ = _follow(db)
    assert seen == [(written, 1)]
    assert db[CHANGES].count_documents({"state": PENDING}) == 0


def test_a_live_writers_open_changes_are_left_alone(db):
    ensure_indexes(db)
    live = ChangeLog(db)
    live.open([(_post(1)["info_code"], 1, INSERT)])
    PostStore(db).repair()
    assert db[CHANGES].count_documents({"state": PENDING}) == 1


def test_a_position_taken_and_never_marked_is_filled_and_a_late_writer_moves_on(db):
    ensure_indexes(db)
    PostStore(db, near_duplicates=False).write_posts([_post(1)])
    db[COUNTERS].update_one({"_id": SEQUENCE}, {"$inc": {"seq": 2}})  # a writer killed after taking 2, 3
    PostStore(db, near_duplicates=False).write_posts([_post(4)])
    assert _follow(db)[0] == [(_post(1)["info_code"], 1)]
    PostStore(db).repair()
    seen, position = _follow(db)
    assert seen == [(_post(1)["info_code"], 1), (_post(4)["info_code"], 1)]
    # A slow writer took the next position; a resolve filled it before the writer could mark it.
    db[COUNTERS].update_one({"_id": SEQUENCE}, {"$inc": {"seq": 1}})
    PostStore(db).repair()
    late = ChangeLog(db)
    taken, reserve = iter([[position + 1]]), late._reserve
    late._reserve = lambda count: next(taken, None) or reserve(count)
    moved = late.open([(_post(6)["info_code"], 1, INSERT)])
    assert moved[0] > position + 1
    late.settle({moved[0]: 1}, [])
    assert [code for code, _ in _follow(db, position)[0]] == [_post(6)["info_code"]]


def test_a_replayed_spool_batch_is_a_change_once(db, tmp_path):
    ensure_indexes(db)
    store = PostStore(db, near_duplicates=False)
    spool = Spool(tmp_path / "spool")
    spool.append([_post(1), _post(2)], [])
    spool.append([_post(2), _post(3)], [])
    spool.replay(store)
    spool.replay(PostStore(db, near_duplicates=False))
    seen, _ = _follow(db)
    assert sorted(seen) == _written(db) == sorted((_post(n)["info_code"], 1) for n in (1, 2, 3))


def test_posts_stored_before_the_change_log_get_a_position_once(db):
    ensure_indexes(db)
    store = PostStore(db, near_duplicates=False)
    store.write_posts([_post(n) for n in range(3)])
    store.write_posts([_post(1, body="改过")])
    db[CHANGES].drop()  # written by a finews without the change log
    db[COUNTERS].drop()
    log = ChangeLog(db)
    assert log.backfill() == 3
    assert log.backfill() == 0
    seen, _ = _follow(db)
    assert sorted(code for code, _ in seen) == sorted(p["_id"] for p in db.posts.find())
    assert db[CHANGES].count_documents({"state": DONE}) == 3


@pytest.fixture
def cli_env(monkeypatch, mongo_uri, db):
    for name in [name for name in os.environ if name.startswith(("FINEWS_", "MONGO_"))]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MONGO_URI", mongo_uri)
    monkeypatch.setenv("MONGO_DATABASE", db.name)
    return monkeypatch


def test_finews_follow_prints_each_change_and_resumes_after_a_position(cli_env, db, capsys):
    ensure_indexes(db)
    store = PostStore(db, near_duplicates=False)
    store.write_posts([_post(1), _post(2)])
    store.write_posts([_post(2, body="改过")])
    assert main(["follow", "--once"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    one, two = _post(1)["info_code"], _post(2)["info_code"]
    assert [(c["info_code"], c["version"], c["op"]) for c in lines] == [
        (one, 1, "insert"), (two, 1, "insert"), (two, 2, "revise")]
    assert [c["position"] for c in lines] == sorted(c["position"] for c in lines)
    store.write_posts([_post(3)])
    assert main(["follow", "--once", "--after", str(lines[-1]["position"]), "--format", "text"]) == 0
    assert capsys.readouterr().out.split()[1:4] == ["insert", _post(3)["info_code"], "v1"]


@pytest.mark.parametrize("argv", [["--after", "-1"], ["--poll", "0"]])
def test_finews_follow_refuses_bad_arguments_in_one_line(cli_env, capsys, argv):
    assert main(["follow", "--once", *argv]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "finews follow" in err


def test_finews_migrate_positions_posts_stored_before_the_change_log(cli_env, db, capsys):
    PostStore(db, near_duplicates=False).write_posts([_post(1), _post(2)])
    db[CHANGES].drop()
    db[COUNTERS].drop()
    assert main(["migrate"]) == 0
    assert "2 posts given a change position" in capsys.readouterr().out
    assert main(["follow", "--once"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2


def _api(server, path: str) -> tuple[int, dict]:
    try:
        with urlopen(server.url + path, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_api_gives_every_change_once_page_by_page_and_holds_at_an_open_one(db):
    ensure_indexes(db)
    first, second = PostStore(db, near_duplicates=False), PostStore(db, near_duplicates=False)
    first.write_posts([_post(n) for n in range(6)])
    second.write_posts([_post(n) for n in range(4, 9)])
    second.write_posts([_post(2, body="改过")])
    slow, finish = _slow_writer(db)
    slow.write_posts([_post(20)])  # a writer still at work
    first.write_posts([_post(21)])
    with ServeServer(db) as server:
        seen, after = [], 0
        while True:
            status, page = _api(server, f"/api/changes?after={after}&limit=3")
            assert status == 200
            if not page["changes"]:
                break
            seen += [(c["info_code"], c["version"]) for c in page["changes"]]
            after = page["next"]
        held = {_post(20)["info_code"], _post(21)["info_code"]}
        assert sorted(seen) == sorted(w for w in _written(db) if w[0] not in held)
        assert len(seen) == len(set(seen))
        finish()
        status, page = _api(server, f"/api/changes?after={after}")
        assert [c["info_code"] for c in page["changes"]] == [_post(20)["info_code"], _post(21)["info_code"]]
        for bad in ("-1", "x", "1e3", "%24gt", "9" * 19):
            status, answer = _api(server, f"/api/changes?after={bad}")
            assert status == 400 and "after" in answer["error"], bad
