"""Publish what the original published: newslist crawl of the replica's
feeds, then ``finews export --format jekyll``, byte for byte."""

import os
import subprocess
import sys

from finews.replica.server import ReplicaServer
from finews.replica.site import ReplicaSite
from tests.conftest import CORPUS, ROOT
from tests.test_feeds import qualifying_files


def test_every_qualifying_corpus_file_comes_back_byte_for_byte(crawl, db, mongo_uri, tmp_path):
    with ReplicaServer(ReplicaSite.from_folder(CORPUS)) as server:
        crawl("newslist", f"site={server.url}")
    out = tmp_path / "site"
    env = {**os.environ, "MONGO_URI": mongo_uri, "MONGO_DATABASE": db.name}
    result = subprocess.run([sys.executable, "-m", "finews.cli", "export", "--format", "jekyll", str(out)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    files = qualifying_files()
    assert len(files) == 21
    differing = [p.name for p in files
                 if not (out / "_posts" / p.name).exists() or (out / "_posts" / p.name).read_bytes() != p.read_bytes()]
    assert differing == []
    # CR LF inside articles came back too.
    assert sum(b"\r\n" in p.read_bytes() for p in files) == 3
    # One file per feed item: both twins of an article listed by two feeds.
    exported = {p.name for p in (out / "_posts").glob("*.md")}
    assert {"2022-04-21-202204212352227421.md", "2022-04-21-NW202204212352227421.md"} <= exported
    assert db.posts.count_documents({"_id": "NW202204212352227421"}) == 1
    assert len(exported) == len({(d["feed"] != "rolling", d["item"].get("id") or d["item"].get("infocode")
                                  or d["item"]["infoCode"]) for d in db.feed_items.find()})
