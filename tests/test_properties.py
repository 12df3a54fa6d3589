"""Property-based tests: garbled HTML, JSON and front matter never raise out
of a parser or a pipeline; a bad page becomes a reject with a reason."""

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crawler.items import PostItem
from finews.core.clean import clean_article
from finews.core.dates import parse_published
from finews.core.infocode import info_code_from_url, normalize_info_code
from finews.core.pages import (
    PageError,
    category_listing_urls,
    decode_page,
    parse_listing,
    parse_post_page,
    parse_share_text,
    share_page_title,
)
from finews.replica.postfile import parse_post_file
from pipelines.clean import CleanPipeline
from pipelines.dedupe import DedupePipeline
from pipelines.normalize import NormalizePipeline
from tests.conftest import REFERENCE, corpus_posts

REAL = REFERENCE.read_text(encoding="utf-8")
TAGS = ["<p>", "</p>", "<section>", "</section>", "<h1>", "</h1>", "<small>", "</small>", "<div class='wrapper'>",
        "<!--", "-->", "<script>", "<a href='javascript:x'>", "</a>", "<", ">", "&", "&#x0;", "\x00", "<![CDATA[",
        '<span id="stock_1.6">', '<!-- EM_StockImg_Start -->', "<svg onload=x>", "<math>", "<table>", "<br>"]
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def garbled_html(draw):
    """Real page text cut, spliced and sprinkled with markup fragments."""
    pages = [REAL] + [p.raw for p in corpus_posts()[:8]]
    base = draw(st.sampled_from(pages))
    start = draw(st.integers(0, len(base)))
    end = draw(st.integers(start, len(base)))
    pieces = [base[start:end]]
    for _ in range(draw(st.integers(0, 8))):
        pieces.insert(draw(st.integers(0, len(pieces))), draw(st.sampled_from(TAGS) | st.text(max_size=30)))
    return "".join(pieces)


html_inputs = garbled_html() | st.text(max_size=500)


@SETTINGS
@given(html_inputs)
def test_post_page_parser_only_ever_raises_page_error(text):
    try:
        page = parse_post_page(text)
    except PageError as error:
        assert error.reason
    else:
        assert isinstance(page.title, str) and isinstance(page.body_html, str)


@SETTINGS
@given(html_inputs)
def test_listing_home_and_share_title_never_raise(text):
    assert isinstance(parse_listing(text, "http://127.0.0.1/").links, list)
    assert isinstance(category_listing_urls(text, "http://127.0.0.1/"), list)
    assert isinstance(share_page_title(text), str)


@SETTINGS
@given(html_inputs)
def test_cleaning_never_raises_and_never_leaves_script(text):
    article = clean_article(text)
    assert "<script" not in article.body_html.lower()
    assert "javascript:" not in article.body_html.lower()


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=40),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
                               st.sampled_from(["text", "content", "title", "showtime", "medianame", "data", "x"]),
                               inner, max_size=5), max_leaves=12)


@SETTINGS
@given(st.one_of(json_values.map(json.dumps), st.text(max_size=200), garbled_html()))
def test_share_json_parser_only_ever_raises_page_error(text):
    try:
        result = parse_share_text(text)
    except PageError as error:
        assert error.reason in {"bad_json", "empty_article"}
    else:
        assert result.body_html


@SETTINGS
@given(st.binary(max_size=400), st.sampled_from([None, "text/html", "text/html; charset=gbk", "application/json",
                                                 "image/png", "text/html; charset=nonsense"]))
def test_decoding_any_bytes_gives_text_or_a_reason(body, content_type):
    try:
        assert isinstance(decode_page(body, content_type, expect_html=False), str)
    except PageError as error:
        assert error.reason == "not_text"


front_matter = st.builds(
    lambda title, date, extra, body: f'---\ntitle: {title}\ndate: {date}\n{extra}\n---\n{body}',
    st.text(max_size=30), st.text(max_size=30), st.text(max_size=40), st.text(max_size=100))


@SETTINGS
@given(st.one_of(front_matter, st.text(max_size=300)))
def test_front_matter_parser_only_ever_raises_value_error(text):
    try:
        post = parse_post_file(text, "x.md")
    except ValueError:
        return
    assert isinstance(post.title, str) and isinstance(post.tags, list)


@SETTINGS
@given(st.text(max_size=60))
def test_codes_and_dates_never_raise(text):
    normalize_info_code(text)
    info_code_from_url(text)
    parse_published(text)


@SETTINGS
@given(st.fixed_dictionaries({}, optional={
    "url": st.text(max_size=40), "title": st.text(max_size=40), "time_text": st.text(max_size=30),
    "raw_html": html_inputs, "source_url": st.text(max_size=60), "raw_code": st.text(max_size=25),
    "category": st.text(max_size=20), "tags": st.lists(st.text(max_size=10), max_size=3),
    "media": st.text(max_size=10)}))
def test_pipelines_never_raise_and_reject_with_a_reason(fields):
    item = PostItem(spider="category", **fields)
    item = NormalizePipeline().process_item(CleanPipeline().process_item(item))
    if item.get("reject_reason"):
        assert item["reject_detail"]
    else:
        assert item["info_code"].startswith("NW") and item["title"] and item["published_at"]
        DedupePipeline().process_item(item)
