from datetime import UTC, datetime

import pytest

from finews.core.dates import parse_published


@pytest.mark.parametrize("text", [
    "2022-03-01 16:46:38 +0800", "2022-03-01 16:46:38", "(GMT+8, Asia/Shanghai, CST) 2022-03-01 16:46:38",
    "2022-03-01T16:46:38+08:00", "2022-03-01T08:46:38Z",
])
def test_site_times_are_shanghai_and_stored_as_utc(text):
    assert parse_published(text) == datetime(2022, 3, 1, 8, 46, 38, tzinfo=UTC)


def test_other_shapes_go_through_dateparser():
    assert parse_published("2022年3月1日 16:46") == datetime(2022, 3, 1, 8, 46, tzinfo=UTC)


@pytest.mark.parametrize("text", ["", None, " +0800", "+0800", "not a date", "2022-13-45 99:99:99"])
def test_no_date_is_none(text):
    assert parse_published(text) is None
