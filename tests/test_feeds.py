"""The list feeds: parsing feed answers, the replica's feeds, the original post files."""

import json
import urllib.request

import pytest

from finews.core.feeds import FEEDS, NotOriginal, article_text, original_post, parse_feed, parse_text
from finews.core.pages import PageError
from finews.replica.faults import FaultPlan
from finews.replica.feeds import feed_answer, text_json
from finews.replica.server import ReplicaServer
from tests.conftest import POSTS


def _feed(site, name, count=100, fault=None):
    feed = FEEDS[name]
    body, _ = feed_answer(site, feed.path, feed.query.format(count=count), fault)
    return body


def qualifying_files():
    """Corpus files written by the original's last version: a date with
    +0800, back links to //finews.withounder.com, rolling news starting ``> ``."""
    import re

    from finews.replica.postfile import read_post_file


    chosen = []
    for path in sorted(POSTS.glob("*.md")):
        post = read_post_file(path)
        if (re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0800", post.date)
                and "](//finews.withounder.com/)" in post.body
                and (post.category != "emnews" or post.body.startswith("> "))):
            chosen.append(path)
    return chosen


def test_replica_feeds_list_every_post_newest_first_under_the_real_keys(site):
    rolling = json.loads(_feed(site, "rolling"))["records"]
    media = json.loads(_feed(site, "media"))["nodeList"]
    market = [json.loads(_feed(site, f"market{n}"))["record"] for n in (37, 38, 39)]
    assert {r["id"] for r in rolling} >= {"202204212352070339", "202112082206672930"}
    assert all(set(r) == {"title", "digest", "id", "infoCode", "url_w", "showtime"} for r in rolling)
    assert all(set(r) >= {"from", "infocode", "title", "showtime"} for r in media)
    assert [r["showtime"] for r in media] == sorted((r["showtime"] for r in media), reverse=True)
    reference = next(r for r in media if r["infocode"] == "NW202203012292975846")
    assert (reference["from"], reference["showtime"]) == ("河北日报", "2022-03-01 16:46:38")
    assert [r["showtime"] for r in rolling] == sorted((r["showtime"] for r in rolling), reverse=True)
    listed = [r["infoCode"] for feed in market for r in feed]
    assert listed and len(listed) == len(set(listed)) < len(media)
    assert set(listed) <= {r["infocode"] for r in media}
    assert len(json.loads(_feed(site, "media", count=3))["nodeList"]) == 3


def test_feed_parser_keeps_good_items_and_rejects_bad_ones_with_reasons(site):
    page = parse_feed("rolling", _feed(site, "rolling"))
    assert page.rejects == []
    item = next(i for i in page.items if i.site_code == "202204212352070339")
    assert (item.info_code, item.text_id, item.media, item.time_text) == (
        "NW202204212352070339", "NW202204212352070339", "东财滚动", "2022-04-21 16:33:43")

    damaged = json.dumps({"nodeList": [
        {"from": "河北日报", "infocode": "NW202203012292975846", "title": "ok", "showtime": "2022-03-01 16:46:38"},
        {"from": "河北日报", "infocode": "NW202203012292975846", "title": "no time"},
        {"from": "河北日报", "infocode": "NOPE", "title": "x", "showtime": "2022-03-01 16:46:38"},
        {"from": "河北日报", "infocode": "NW202203012292975847", "title": "x", "showtime": "yesterday"},
        "not an object",
    ]})
    page = parse_feed("media", damaged)
    assert [i.title for i in page.items] == ["ok"]
    assert [r.reason for r in page.rejects] == ["missing_field", "bad_info_code", "bad_date", "bad_item"]
    assert "showtime" in page.rejects[0].detail


@pytest.mark.parametrize("fault, reason", [
    ("feed_bad_json", "bad_json"), ("feed_html_error", "bad_json"), ("feed_no_items", "feed_no_items")])
def test_damaged_feed_answers_say_why(site, fault, reason):
    with pytest.raises(PageError) as error:
        parse_feed("media", _feed(site, "media", fault=fault))
    assert error.value.reason == reason


def test_items_missing_fields_do_not_spoil_their_feed(site):
    whole = parse_feed("rolling", _feed(site, "rolling"))
    damaged = parse_feed("rolling", _feed(site, "rolling", fault="feed_missing_fields"))
    missing = [r for r in damaged.rejects if r.reason == "missing_field"]
    assert len(missing) == len(json.loads(_feed(site, "rolling"))["records"][::3])
    assert len(damaged.items) + len(damaged.rejects) == len(whole.items) + len(whole.rejects)


def test_text_answer_carries_both_keys_for_twins(site):
    payload = parse_text(text_json(site, "NW202204212352227421"))
    assert payload["content"] != payload["text"]
    assert payload["content"].startswith("<p>俄罗斯总统新闻秘书佩斯科夫")
    assert "\r\n" in payload["text"]  # CR LF as in the post file
    with pytest.raises(PageError) as error:
        article_text("media", {"text": "  "})
    assert error.value.reason == "empty_text"


def test_original_files_rebuilt_from_the_replica_feeds_equal_the_corpus(site):
    """Offline half of the round trip: feed item + text answer -> file bytes."""
    built = {}
    for name in FEEDS:
        for item in parse_feed(name, _feed(site, name)).items:
            try:
                file_name, text = original_post(name, item.fields, parse_text(text_json(site, item.text_id)))
            except NotOriginal:
                continue  # a date whose format is not known (rolling news of 2021-12-08 before 12:58)
            built.setdefault(file_name, set()).add(text.encode("utf-8"))
    files = qualifying_files()
    assert len(files) == 21
    assert [p.name for p in files if p.read_bytes() not in built.get(p.name, set())] == []


def test_feeds_over_http_with_faults_and_growth(site):
    from finews.replica.site import ReplicaSite

    grown = ReplicaSite.from_folder()
    plan = FaultPlan.parse("feed_html_error=1.0")
    with ReplicaServer(grown, faults=plan) as server, \
            urllib.request.urlopen(server.url + FEEDS["media"].url("", 5), timeout=10) as response:
            assert response.headers["Content-Type"].startswith("text/html")
    with ReplicaServer(grown) as server:
        url = server.url + FEEDS["media"].url("", 100)
        before = json.loads(urllib.request.urlopen(url, timeout=10).read())["nodeList"]
        request = urllib.request.Request(server.url + "/_admin/add?n=2", method="POST")
        added = json.loads(urllib.request.urlopen(request, timeout=10).read())["codes"]
        after = json.loads(urllib.request.urlopen(url, timeout=10).read())["nodeList"]
    assert len(after) == len(before) + 2
    assert set(added) <= {r["infocode"] for r in after}


@pytest.mark.parametrize("scale", [0, 600])
def test_feeds_give_the_newest_items_of_the_corpus_and_of_scale_mode(site, scale):
    from finews.replica.feeds import entry_row, feed_rows
    from finews.replica.site import ReplicaSite

    served = ReplicaSite.scaled(scale) if scale else site
    for name, feed in FEEDS.items():
        every = sorted((row for e in served.entries if (row := entry_row(e.post, name))),
                       key=lambda row: row[feed.time_field], reverse=True)
        assert feed_rows(served, name, 20) == every[:20], name
    assert len(feed_rows(served, "media", 100)) == (100 if scale else 13)


def test_feed_fault_modes_touch_only_the_feeds():
    from finews.replica.site import ReplicaSite

    with ReplicaServer(ReplicaSite.from_folder(), faults=FaultPlan.parse("feed_bad_json=1.0")) as server:
        page = urllib.request.urlopen(server.url + "/category/hebeiribao.html", timeout=10).read()
        text_url = server.url + "/NewsData/GetNewsText.do?id=NW202203012292975846"
        text = urllib.request.urlopen(text_url, timeout=10).read()
        feed = urllib.request.urlopen(server.url + FEEDS["media"].url("", 5), timeout=10).read()
        served = dict(server.faults_served)
    assert b"hebeiribao" in page and json.loads(text)["text"]
    with pytest.raises(PageError):
        parse_feed("media", feed.decode("utf-8"))
    assert served == {"feed_bad_json": 1}


def _corpus_file(name: str) -> tuple[str, str, str, str, str]:
    """(title, date, front matter's tags, body before the article link, the link)
    of a corpus post file, by plain string handling."""
    text = (POSTS / name).read_bytes().decode("utf-8")
    _, front, body = text.split("---\n", 2)
    lines = dict(line.split(": ", 1) for line in front.splitlines())
    link_at = body.rindex("\n\n<http")
    return (lines["title"].strip('"'), lines["date"], lines["tags"], body[:link_at],
            body[link_at + 3:body.index(">", link_at)])


def test_hand_written_feed_items_rebuild_their_files_and_match_the_real_pages():
    """The round trip with an oracle outside the replica: feed items and text
    answers written here in the original pipeline's field names (the site
    contract: media ``nodeList[]`` of ``from, infocode, title, showtime``;
    rolling ``records[]`` of ``title, digest, id, infoCode, url_w, showtime``;
    ``GetNewsText.do`` answering ``text`` or ``content``) from the post files'
    own words, rebuilt into the files byte for byte; and each title and time
    is the one the real Jekyll page of that file shows."""
    from tests.test_real_site import SHOWN, SITE

    reference = "2022-03-01-NW202203012292975846.md"
    title, date, tags, article, link = _corpus_file(reference)
    assert (tags, link) == ("河北日报新闻",
                            "http://finews.zning.xyz/html_News/NewsShare.html?infoCode=NW202203012292975846")
    media_feed = json.dumps({"nodeList": [{"from": "河北日报", "infocode": "NW202203012292975846", "title": title,
                                           "showtime": date.removesuffix(" +0800"), "simtitle": "", "simdigest": ""}]},
                            ensure_ascii=False)
    (item,) = parse_feed("media", media_feed).items
    name, text = original_post("media", item.fields, parse_text(json.dumps({"text": article}, ensure_ascii=False)))
    assert (name, text.encode("utf-8")) == (reference, (POSTS / reference).read_bytes())

    rolling = "2022-04-21-202204212352227421.md"
    title, date, tags, body, link = _corpus_file(rolling)
    digest_line, article = body.split("\n\n", 1)
    rolling_feed = json.dumps({"records": [{"title": title, "digest": digest_line.removeprefix("> "),
                                            "id": "202204212352227421", "infoCode": "NW202204212352227421",
                                            "url_w": link, "showtime": date.removesuffix(" +0800")}]},
                              ensure_ascii=False)
    (item,) = parse_feed("rolling", rolling_feed).items
    name, text = original_post("rolling", item.fields, parse_text(json.dumps({"content": article}, ensure_ascii=False)))
    assert (name, text.encode("utf-8")) == (rolling, (POSTS / rolling).read_bytes())

    for page, (title, date) in {"hebeiribao/2022/03/01/NW202203012292975846.html": _corpus_file(reference)[:2],
                                "emnews/2022/04/21/202204212352227421.html": _corpus_file(rolling)[:2]}.items():
        html = (SITE / page).read_text(encoding="utf-8")
        assert SHOWN.search(html).group(1) == date.removesuffix(" +0800")
        assert f"<title>{title}" in html
