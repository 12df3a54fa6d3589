from datetime import UTC, datetime

import pytest

from crawler.items import PostItem
from finews.core.normalize import Rejected, normalize_post
from pipelines.clean import CleanPipeline
from pipelines.normalize import NormalizePipeline


def _fields(**overrides):
    fields = {
        "url": "http://127.0.0.1:9/hebeiribao/2022/03/01/NW202203012292975846.html",
        "title": " 标题 ", "time_text": "2022-03-01 16:46:38", "body_html": "<p>正文</p>",
        "body_text": "正文", "source_url": "http://finews.zning.xyz/html_News/NewsShare.html?infoCode=NW202203012292975846",
        "tags": ["河北日报新闻"], "category": "hebeiribao", "images": ["/pic.jpg"],
    }
    return fields | overrides


def test_normalized_fields():
    post = normalize_post(_fields())
    assert post["info_code"] == "NW202203012292975846"
    assert post["kind"] == "media"
    assert post["title"] == "标题"
    assert post["published_at"] == datetime(2022, 3, 1, 8, 46, 38, tzinfo=UTC)
    assert (post["media"], post["category"], post["tags"]) == ("河北日报", "hebeiribao", ["河北日报新闻"])
    assert post["images"] == ["http://127.0.0.1:9/pic.jpg"]
    assert len(post["content_hash"]) == 64


def test_share_page_posts_get_category_and_tags_from_the_media_name():
    post = normalize_post(_fields(category="", tags=[], media="央视新闻客户端", raw_code="NW202204212352227421"))
    assert (post["category"], post["tags"]) == ("yangshixinwenkehuduan", ["央视新闻客户端新闻"])
    rolling = normalize_post(_fields(category="", tags=[], media="东财滚动", raw_code="202204212352227421"))
    assert (rolling["info_code"], rolling["kind"], rolling["category"]) == ("NW202204212352227421", "rolling", "emnews")


def test_content_hash_follows_content_only():
    a = normalize_post(_fields())
    assert normalize_post(_fields(url="http://elsewhere/x.html"))["content_hash"] == a["content_hash"]
    assert normalize_post(_fields(body_html="<p>改</p>"))["content_hash"] != a["content_hash"]


@pytest.mark.parametrize("overrides, reasons", [
    ({"title": "", "time_text": " +0800", "source_url": ""}, ["missing_title", "missing_date", "missing_link"]),
    ({"source_url": "http://finance.eastmoney.com/news/1,12345.html"}, ["missing_link"]),
    ({"raw_code": "NW12"}, ["bad_info_code"]),
    ({"body_text": "  "}, ["empty_body"]),
])
def test_rejections_name_every_problem(overrides, reasons):
    with pytest.raises(Rejected) as rejected:
        normalize_post(_fields(**overrides))
    assert rejected.value.reasons == reasons


def test_pipelines_mark_rejects_and_let_them_flow_on():
    item = PostItem(url="http://x/emnews/-1.html", title="", time_text="", raw_html="<p>正文</p>", source_url="")
    item = NormalizePipeline().process_item(CleanPipeline().process_item(item))
    assert item["reject_reason"] == "missing_title"
    assert item["reject_detail"] == "missing_title, missing_date, missing_link"
