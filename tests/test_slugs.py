import pytest

from finews.core.slugs import listing_path, media_from_tag, media_slug
from tests.conftest import corpus_posts


def test_every_corpus_category_is_the_slug_of_its_tag():
    """The site's own rule, checked on every real post that has a media tag."""
    for post in corpus_posts():
        if post.tags and post.tags[0].endswith("新闻"):
            assert media_slug(media_from_tag(post.tags[0])) == post.category, post.name


@pytest.mark.parametrize("name, slug", [
    ("河北日报", "hebeiribao"),
    ("21世纪经济报道 21财经APP", "21shijijingjibaodao 21caijingAPP"),
    ("安信国际证券(香港)", "anxinguojizhengquan(xianggang)"),
    ("东财滚动新闻", "emnews"),
    ("hebeiribao", "hebeiribao"),
])
def test_media_names_slug_like_the_site(name, slug):
    assert media_slug(name) == slug


def test_listing_paths_are_percent_encoded():
    assert listing_path("21shijijingjibaodao 21caijingAPP") == "/category/21shijijingjibaodao%2021caijingAPP.html"
    assert listing_path("emnews") == "/emnews/"
