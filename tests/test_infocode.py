import pytest

from finews.core.infocode import info_code_from_url, is_rolling_news_code, normalize_info_code
from tests.conftest import corpus_posts


@pytest.mark.parametrize("raw", ["202204212352227421", "NW202204212352227421", " nw202204212352227421 "])
def test_rolling_id_and_nw_code_are_one_key(raw):
    assert normalize_info_code(raw) == "NW202204212352227421"


@pytest.mark.parametrize("raw", ["", None, "NW2022", "XX202204212352227421", "2022042123522274210",
                                 "NW20220421235222742a", "NW209913012292975846", "<script>"])
def test_anything_else_is_not_a_code(raw):
    assert normalize_info_code(raw) is None


def test_codes_come_out_of_every_link_shape_in_the_corpus():
    links = {p.link: p.raw_code for p in corpus_posts() if p.link}
    assert links["http://finews.zning.xyz/html_News/NewsShare.html?infoCode=NW202203012292975846"] \
        == "NW202203012292975846"
    assert links["http://finance.eastmoney.com/news/11060,202112082206672930.html"] == "202112082206672930"
    share = "http://choicewzp1.eastmoney.com/html_News/NewsShare.html?infoCode=NW202205312398034850"
    assert info_code_from_url(share) == "NW202205312398034850"
    assert all(normalize_info_code(code) for code in links.values())


def test_rolling_news_is_told_by_its_bare_digits():
    assert is_rolling_news_code("202112082206672930")
    assert not is_rolling_news_code("NW202112082206672930")
