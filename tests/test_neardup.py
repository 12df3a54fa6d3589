"""Near duplicates on real corpus text, flagged through a real database."""

from itertools import combinations

from bson import Binary
from pymongo import monitoring

from finews.core.clean import clean_article
from finews.core.minhash import THRESHOLD, band_keys, shingles, signature, similarity
from finews.core.pages import parse_post_page
from finews.storage.db import NEAR_DUPLICATE_INDEX, connect
from finews.storage.neardup import BUCKETS, BUILT, NearDuplicateIndex, add_to_buckets, build_buckets

PAIR = ("202112082206781916", "202112082206672930")  # the same story under two codes


def _text(site, code):
    return clean_article(parse_post_page(site.post_page(site.share_entry(code))).body_html).body_text


def test_the_corpus_pair_is_similar_and_unrelated_posts_are_not(site):
    a, b = (signature(_text(site, code)) for code in PAIR)
    assert similarity(a, b) >= THRESHOLD
    unrelated = signature(_text(site, "NW202203012292975846"))
    assert similarity(a, unrelated) < 0.2


def test_shingles_ignore_punctuation_and_spacing():
    assert shingles("离岸人民币，升至 6.35。") == shingles("离岸人民币升至6.35")
    assert shingles("") == set() and signature("，。 ") is None


def test_flagging_marks_both_posts_and_is_idempotent(db, site):
    posts = [{"_id": "NW" + c, "info_code": "NW" + c, "body_text": _text(site, c)} for c in PAIR]
    posts.append({"_id": "NW202203012292975846", "info_code": "NW202203012292975846",
                  "body_text": _text(site, "NW202203012292975846")})
    db.bare_posts.insert_many([dict(p) for p in posts])  # only the fields flagging reads
    index = NearDuplicateIndex(db, posts="bare_posts")
    assert index.flag(posts[:1]) == 0  # nothing to compare with yet
    assert index.flag(posts[1:]) == 1
    assert index.flag(posts) == 1
    flagged = {d["_id"]: d.get("near_duplicates") for d in db.bare_posts.find()}
    assert flagged == {"NW" + PAIR[0]: ["NW" + PAIR[1]], "NW" + PAIR[1]: ["NW" + PAIR[0]],
                       "NW202203012292975846": None}


def _corpus_texts(site) -> dict[str, str]:
    texts = {}
    for entry in site.entries:
        text = clean_article(parse_post_page(site.post_page(entry)).body_html).body_text
        if text:
            texts[entry.post.name.removesuffix(".md")] = text
    return texts


def test_flags_through_the_buckets_are_the_lsh_decision_on_the_whole_corpus(db, site):
    texts = _corpus_texts(site)
    sigs = {name: signature(text) for name, text in texts.items()}
    expected = {(a, b) for a, b in combinations(sorted(texts), 2)
                if set(band_keys(sigs[a])) & set(band_keys(sigs[b])) and similarity(sigs[a], sigs[b]) >= THRESHOLD}
    docs = [{"_id": name, "info_code": name, "body_text": text} for name, text in sorted(texts.items())]
    db.bare_posts.insert_many([dict(d) for d in docs])
    index = NearDuplicateIndex(db, posts="bare_posts")
    for start in range(0, len(docs), 7):  # pairs within a batch and across batches
        index.flag(docs[start:start + 7])
    flagged = {tuple(sorted((d["_id"], other))) for d in db.bare_posts.find({"near_duplicates": {"$exists": True}})
               for other in d["near_duplicates"]}
    assert flagged == expected and len(expected) >= 5  # the cross-code pair and the twin files


def _old_style_signature(db, code, text):
    """A signature as stored before buckets existed: no bucket documents."""
    values = signature(text)
    db[NEAR_DUPLICATE_INDEX].insert_one({"_id": code, "lsh": band_keys(values),
                                         "minhash": Binary(values.astype("uint32").tobytes())})


def test_a_database_stored_before_buckets_is_migrated_on_first_use(db, site):
    a, b = ("NW" + code for code in PAIR)
    _old_style_signature(db, a, _text(site, PAIR[0]))
    _old_style_signature(db, "NW202203012292975846", _text(site, "NW202203012292975846"))
    db.bare_posts.insert_many([{"_id": a}, {"_id": b}])
    index = NearDuplicateIndex(db, posts="bare_posts")
    assert index.flag([{"info_code": b, "body_text": _text(site, PAIR[1])}]) == 1
    assert db.bare_posts.find_one({"_id": b})["near_duplicates"] == [a]
    assert db[BUCKETS].find_one({"_id": BUILT})["signatures"] == 2
    stored_keys = {key for doc in db[NEAR_DUPLICATE_INDEX].find() for key in doc["lsh"]}
    assert {bucket["_id"] for bucket in db[BUCKETS].find({"_id": {"$ne": BUILT}})} == stored_keys
    assert build_buckets(db[NEAR_DUPLICATE_INDEX], db[BUCKETS], chunk=1) == 3  # again, in slices: harmless
    buckets = list(db[BUCKETS].find({"codes": {"$exists": True}}))
    assert all(len(bucket["codes"]) == len(set(bucket["codes"])) for bucket in buckets)


def test_a_revised_post_leaves_the_buckets_of_its_old_text(db, site):
    a, b = ("NW" + code for code in PAIR)
    db.bare_posts.insert_many([{"_id": a}, {"_id": b}])
    index = NearDuplicateIndex(db, posts="bare_posts")
    index.flag([{"info_code": a, "body_text": _text(site, PAIR[0])}])
    index.flag([], revised=[{"info_code": a, "body_text": _text(site, "NW202203012292975846")}])
    assert index.flag([{"info_code": b, "body_text": _text(site, PAIR[1])}]) == 0
    assert db[BUCKETS].count_documents({"codes": a}) == 14 == len(db[NEAR_DUPLICATE_INDEX].find_one({"_id": a})["lsh"])


def test_a_bucket_another_writer_created_is_merged_and_reported(db):
    assert add_to_buckets(db[BUCKETS], {"0:ab": {"X"}}) == set()
    assert add_to_buckets(db[BUCKETS], {"0:ab": {"Y"}, "1:cd": {"Y"}}) == {"0:ab"}
    assert {d["_id"]: sorted(d["codes"]) for d in db[BUCKETS].find()} == {"0:ab": ["X", "Y"], "1:cd": ["Y"]}


def test_a_bucket_believed_there_but_gone_is_written_again(db):
    # ``existing`` buckets are updated without upsert; one gone meanwhile is upserted after all
    db[BUCKETS].insert_one({"_id": "0:ab", "codes": ["X"]})
    assert add_to_buckets(db[BUCKETS], {"0:ab": {"Y"}, "1:cd": {"Y"}}, existing={"0:ab", "1:cd"}) == {"0:ab", "1:cd"}
    assert {d["_id"]: sorted(d["codes"]) for d in db[BUCKETS].find()} == {"0:ab": ["X", "Y"], "1:cd": ["Y"]}


class _Commands(monitoring.CommandListener):
    def __init__(self):
        self.seen = []

    def started(self, event):
        if event.command_name == "find":
            self.seen.append((event.command.get("find"), event.command.get("filter")))

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass


def test_a_story_like_no_stored_one_costs_no_read(db, site, mongo_uri):
    """The common case, a new story, must not pay for lookups: one insert of
    signatures, one of buckets, nothing read, however large the archive."""
    listener = _Commands()
    with connect(mongo_uri, event_listeners=[listener]) as client:
        index = NearDuplicateIndex(client[db.name], posts="bare_posts")
        index.flag([{"info_code": "NW" + PAIR[0], "body_text": _text(site, PAIR[0])}])
        listener.seen.clear()
        pairs = index.flag([{"info_code": "NW202203012292975846", "body_text": _text(site, "NW202203012292975846")},
                            {"info_code": "NW" + PAIR[1], "body_text": _text(site, PAIR[1])}])
    assert pairs == 1  # the twin found its stored pair ...
    assert [collection for collection, _ in listener.seen] == [BUCKETS, NEAR_DUPLICATE_INDEX]  # read once
    listener.seen.clear()
    with connect(mongo_uri, event_listeners=[listener]) as client:
        NearDuplicateIndex(client[db.name], posts="bare_posts").flag(
            [{"info_code": "NW202112082206000001", "body_text": "全新的一篇报道，与已存的文章毫无相似之处。" * 5}])
    assert listener.seen == [(BUCKETS, {"_id": BUILT})]  # only whether the buckets are built, once


def test_migrate_drops_the_unread_lsh_index_and_builds_the_buckets(db, site, mongo_uri, monkeypatch, capsys):
    from finews.cli import main

    db[NEAR_DUPLICATE_INDEX].create_index("lsh", name="lsh")  # as the previous design created it
    _old_style_signature(db, "NW" + PAIR[0], _text(site, PAIR[0]))
    monkeypatch.setenv("MONGO_URI", mongo_uri)
    monkeypatch.setenv("MONGO_DATABASE", db.name)
    assert main(["migrate"]) == 0
    assert "near-duplicate buckets built" in capsys.readouterr().out
    assert "lsh" not in db[NEAR_DUPLICATE_INDEX].index_information()
    assert db[BUCKETS].find_one({"_id": BUILT})["signatures"] == 1
    assert db[BUCKETS].count_documents({"codes": "NW" + PAIR[0]}) == 14
