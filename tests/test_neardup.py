"""Near duplicates on real corpus text, flagged through a real database."""

from finews.neardup import THRESHOLD, NearDuplicateIndex, shingles, signature, similarity
from finews.pages import parse_post_page
from pipelines.clean import clean_article

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
