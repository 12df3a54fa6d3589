import pytest

from finews.replica.postfile import parse_post_file, read_post_file
from tests.conftest import POSTS, REFERENCE, corpus_posts


def test_reference_post_file():
    post = read_post_file(REFERENCE)
    assert post.title == "《河北省制造业高质量发展“十四五”规划》出台 实施八项行动 构建现代化制造业体系"
    assert post.date == "2022-03-01 16:46:38 +0800"
    assert post.category == "hebeiribao"
    assert post.tags == ["河北日报新闻"]
    assert post.link == "http://finews.zning.xyz/html_News/NewsShare.html?infoCode=NW202203012292975846"
    assert post.stem == "NW202203012292975846"


def test_odd_posts_read_as_they_are():
    empty = read_post_file(POSTS / "-202205262391921712.md")
    assert (empty.title, empty.date, empty.link, empty.file_date) == ("", "+0800", "", None)
    init = read_post_file(POSTS / "2021-12-01-init.md")
    assert (init.title, init.link, init.tags) == ("开站大吉", "", ["站长消息"])


def test_crlf_files_keep_their_line_ends_and_still_parse():
    crlf = [p for p in corpus_posts() if "\r\n" in p.raw]
    assert len(crlf) == 3
    assert all(p.title and p.link for p in crlf)


def test_every_corpus_file_parses():
    posts = corpus_posts()
    assert len(posts) == 55
    assert sum(1 for p in posts if p.link) == 53


@pytest.mark.parametrize("text", ["no front matter", "---\n- a list\n---\nbody", '---\ntitle: "unclosed\n---\nbody'])
def test_bad_front_matter_raises(text):
    with pytest.raises(ValueError):
        parse_post_file(text, "bad.md")


@pytest.mark.parametrize("name, data, published", [
    ("2022-03-05-nofm.md", "标题\n\n正文\n".encode(), True),
    ("2022-03-06-blank.md", b'\n---\ntitle: "x"\n---\nbody\n', True),
    ("2022-03-07-empty.md", b"", True),
    ("2022-03-08-badyaml.md", b'---\ntitle: "unclosed\n---\nbody\n', False),
    ("2022-03-09-binary.md", b"\x00\x01\x02" * 100, False),
    ("2022-03-10-gbk.md", '---\ntitle: "标题"\n---\n正文\n'.encode("gbk"), False),
    ("nodate.md", b"no front matter\n", False),
    ("-202205262391921712.md", b'---\ntitle: ""\ndate:  +0800\n---\n<>\n', False),
])
def test_post_sources_are_read_as_jekyll_publishes_them(tmp_path, caplog, name, data, published):
    from finews.replica.postfile import read_post_source

    path = tmp_path / name
    path.write_bytes(data)
    post = read_post_source(path)
    assert (post is not None) == published
    if post is not None and not data.startswith(b"---"):
        assert not post.has_front_matter and post.body == data.decode() and post.file_date
    if post is None:
        assert f"post file {name} left out" in caplog.text
