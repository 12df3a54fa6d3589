import pytest
from scrapy.exceptions import DropItem

from crawler.items import PostItem
from pipelines.dedupe import DedupePipeline


def test_second_copy_of_a_code_is_dropped():
    dedupe = DedupePipeline()
    dedupe.process_item(PostItem(info_code="NW202204212352227421", kind="media"))
    with pytest.raises(DropItem):
        dedupe.process_item(PostItem(info_code="NW202204212352227421", kind="media"))
    with pytest.raises(DropItem):
        dedupe.process_item(PostItem(info_code="NW202204212352227421", kind="rolling"))


def test_media_twin_after_rolling_twin_passes():
    dedupe = DedupePipeline()
    dedupe.process_item(PostItem(info_code="NW202204212352227421", kind="rolling"))
    media = PostItem(info_code="NW202204212352227421", kind="media")
    assert dedupe.process_item(media) is media
    assert dict(media) == {"info_code": "NW202204212352227421", "kind": "media"}  # not made a reject


def test_rejects_are_never_deduplicated():
    dedupe = DedupePipeline()
    for _ in range(3):
        reject = PostItem(url="http://x/a", reject_reason="http_404")
        assert dedupe.process_item(reject) is reject
        assert dict(reject) == {"url": "http://x/a", "reject_reason": "http_404"}
