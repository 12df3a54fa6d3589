"""The replica over real HTTP."""

import urllib.error
import urllib.request

import pytest


def _get(replica, path):
    with urllib.request.urlopen(replica.url + path, timeout=10) as response:
        return response.status, response.headers["Content-Type"], response.read().decode("utf-8")


@pytest.mark.parametrize("path", [
    "/", "/categories/", "/feed.xml", "/emnews/", "/category/hebeiribao.html",
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


@pytest.mark.parametrize("path", ["/nope.html", "/category/nope.html",
                                  "/NewsData/GetNewsText.do?id=NW209901012292975846",
                                  # the real site has no page for these (and the dateless file is not published)
                                  "/category/sitenews.html", "/category/emnews.html", "/emnews/?page=2",
                                  "/emnews/-202205262391921712.html"])
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


def test_synthesized_posts_are_written_by_the_one_post_writer():
    """Synthesized posts come from ``write_post``, as exported ones do: Liquid
    in a borrowed corpus paragraph is written so that Jekyll prints it."""
    import re

    from finews.core.jekyll import LIQUID_BRACE, liquid_output
    from finews.replica.postfile import PostFile
    from finews.replica.synth import PostSynthesizer

    paragraph = "<p>" + "新闻正文" * 10 + "{{ site.time }}{% include x.html %}</p>"
    corpus = [PostFile(name="2022-03-01-NW202203012292975846.md", title="标题", date="2022-03-01 16:46:38 +0800",
                       category="hebeiribao", tags=["河北日报新闻"], body=paragraph)]
    post = PostSynthesizer(corpus).make(0)
    assert LIQUID_BRACE in post.body and not re.search(r"\{[{%]", post.body.replace(LIQUID_BRACE, ""))
    assert "{{ site.time }}{% include x.html %}</p>" in liquid_output(post.body)
    assert post.raw.endswith("\n---\n" + post.body)


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


def test_malformed_post_files_do_not_stop_the_replica(tmp_path):
    """Issue 9 item 5, against a real ``finews replica`` process: files without
    front matter are served as Jekyll serves them; unreadable ones are left out,
    each with a warning naming the file."""
    import shutil
    import subprocess
    import sys

    from finews.storage.db import free_port
    from tests.conftest import CORPUS, ROOT

    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    posts = corpus / "posts"
    (posts / "2022-03-05-nofm.md").write_text("标题行\n\n正文\n", encoding="utf-8")
    (posts / "2022-03-06-blankfirst.md").write_text(
        '\n---\nlayout: post\ntitle: "x"\ndate: 2022-03-06 10:00:00 +0800\ncategories: hebeiribao\n---\n正文\n',
        encoding="utf-8")
    (posts / "2022-03-07-empty.md").write_bytes(b"")
    left_out = {
        "2022-03-08-badyaml.md": b'---\ntitle: "unclosed\n---\nbody\n',
        "2022-03-09-listyaml.md": b"---\n- a\n- b\n---\nbody\n",
        "2022-03-10-binary.md": bytes(range(256)) * 4,
        "2022-03-11-gbk.md": '---\ntitle: "标题"\ndate: 2022-03-11 10:00:00 +0800\n---\n正文\n'.encode("gbk"),
        "nodate.md": b"no front matter and no date\n",
    }
    for name, data in left_out.items():
        (posts / name).write_bytes(data)
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "finews.cli", "replica", "--posts", str(corpus),
                                "--port", str(port)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        banner = process.stdout.readline()
        assert "Serving 57 posts" in banner, (banner, process.stderr.read() if process.poll() is not None else "")
        base = f"http://127.0.0.1:{port}"

        def get(path):
            try:
                with urllib.request.urlopen(base + path, timeout=10) as response:
                    return response.status, response.read().decode("utf-8")
            except urllib.error.HTTPError as error:
                return error.code, ""

        status, page = get("/2022/03/05/nofm.html")
        assert status == 200 and "<h1>Nofm</h1>" in page and "<p>标题行</p>" in page
        status, page = get("/2022/03/06/blankfirst.html")
        assert status == 200 and "<h1>Blankfirst</h1>" in page and "<hr />\n<p>layout: post" in page
        assert get("/2022/03/07/empty.html")[0] == 200
        assert get("/hebeiribao/2022/03/01/NW202203012292975846.html")[0] == 200
        assert get("/2022/03/08/2022-03-08-badyaml.html")[0] == 404
        status, home = get("/")
        assert status == 200 and home.count("<li>") == 57 and "/2022/03/05/nofm.html" in home
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    for name in left_out:
        assert f"post file {name} left out" in stderr
    assert "Traceback" not in stderr
