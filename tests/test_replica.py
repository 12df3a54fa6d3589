"""The replica over real HTTP."""

import urllib.error
import urllib.request

import pytest


def _get(replica, path):
    with urllib.request.urlopen(replica.url + path, timeout=10) as response:
        return response.status, response.headers["Content-Type"], response.read().decode("utf-8")


@pytest.mark.parametrize("path", [
    "/", "/feed.xml", "/emnews/", "/category/hebeiribao.html",
    "/category/21shijijingjibaodao%2021caijingAPP.html",
    "/hebeiribao/2022/03/01/NW202203012292975846.html",
    "/html_News/NewsShare.html?infoCode=NW202203012292975846",
    "/NewsData/GetNewsText.do?id=202112082206672930",
])
def test_every_kind_of_page_is_served(replica, path):
    status, _, body = _get(replica, path)
    assert status == 200 and body


def test_feed_has_rfc3339_shanghai_times(replica):
    _, content_type, body = _get(replica, "/feed.xml")
    assert "atom" in content_type
    assert "<published>2022-05-31T18:03:41+08:00</published>" in body


@pytest.mark.parametrize("path", ["/nope.html", "/category/nope.html", "/NewsData/GetNewsText.do?id=NW209901012292975846"])
def test_unknown_pages_are_404(replica, path):
    with pytest.raises(urllib.error.HTTPError) as error:
        _get(replica, path)
    assert error.value.code == 404


def test_share_host_answers_for_either_twin_code(site):
    assert site.share_entry("NW202112082206672930").post.raw_code == "202112082206672930"
    assert site.share_entry("NW202204212352227421").post.category == "yangshixinwenkehuduan"
    assert site.share_entry("202204212352227421").post.category == "emnews"


def test_scale_mode_synthesizes_distinct_posts():
    from finews.replica.site import ReplicaSite

    site = ReplicaSite.scaled(1200, page_size=10)
    codes = [e.post.raw_code for e in site.entries]
    assert len(codes) == len(set(codes)) == 1200
    assert len(site.by_category) >= 20
    months = {e.post.date[:7] for e in site.entries}
    assert len(months) >= 6
    assert 'class="next"' in site.listing(site.entries[0].post.category)
    again = ReplicaSite.scaled(1200)
    assert [e.post.raw for e in again.entries[:5]] == [e.post.raw for e in site.entries[:5]]


def test_admin_add_grows_the_site_while_serving():
    import json
    from finews.replica.server import ReplicaServer
    from finews.replica.site import ReplicaSite

    with ReplicaServer(ReplicaSite.scaled(50)) as server:
        request = urllib.request.Request(server.url + "/_admin/add?n=7", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            added = json.loads(response.read())
        assert added["added"] == 7 and len(set(added["codes"])) == 7
        assert len(server.site.entries) == 57
        status, _, _ = _get(server, f"/html_News/NewsShare.html?infoCode={added['codes'][0]}")
        assert status == 200
