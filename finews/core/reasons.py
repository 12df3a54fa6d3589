"""Why a page did not become a stored post: every reason, declared once.

Each reason says whether it is retried before it becomes a reject, and what
it counts as: a page that could not be fetched or read (``FETCH``: the run is
``partial``), a page that was read and is not a valid post (``INVALID``), or
a valid post the database could not keep (``STORE``). A reason is a ``str``
(``Reason.NOT_TEXT == "not_text"``): it is what ``rejects.reason``, the
``finews/rejected/<reason>`` stats, ``crawl_runs.failures_by_reason`` and the
run summary show. ``http_<status>`` and ``fetch_<Error>`` are families.
The reasons table of docs/schema.md is generated from this list
(``python -m finews.cli.docs --write-docs``; a test compares them).

Domain code: no Scrapy, no pymongo.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from enum import StrEnum

from finews.core import retry

FETCH, INVALID, STORE = "fetch", "invalid", "store"
KINDS = {FETCH: "could not be fetched or read (the run is partial)",
         INVALID: "read, and not a valid post",
         STORE: "a valid post the database could not keep"}
RETRIED, ONCE = True, False


class Reason(StrEnum):
    """name, kind, retried, meaning."""

    kind: str
    retried: bool
    meaning: str

    # Fetching and reading a page.
    HTTP = "http_", FETCH, RETRIED, (
        f"the server answered `http_<status>`, e.g. `http_404`; {retry.spoken_codes(retry.HTTP.codes)} are retried "
        f"first (`RETRY_HTTP_CODES`, {'/'.join(map(str, retry.HTTP.retry_after_codes))} after their `Retry-After`)")
    FETCH_ERROR = "fetch_", FETCH, RETRIED, (
        "the request failed with `fetch_<Error>`, e.g. `fetch_TimeoutError`, `fetch_ConnectionRefusedError`, after "
        "Scrapy's retries")
    OFFSITE = "offsite", FETCH, ONCE, "a request to a host other than the configured ones, refused"
    REDIRECT_OFFSITE = "redirect_offsite", FETCH, RETRIED, (
        "the page redirects off the configured hosts; asked again, then given up")
    NOT_TEXT = "not_text", FETCH, RETRIED, "a binary body (a content type that is not text, or NUL bytes)"
    TRUNCATED = "truncated", FETCH, RETRIED, "HTML cut off before `</html>`"
    BAD_JSON = "bad_json", FETCH, RETRIED, (
        "a JSON answer (share text, list feed, `GetNewsText.do`) that does not parse or is not an object")
    EMPTY_PAGE = "empty_page", FETCH, RETRIED, "a post page with an empty body"
    ROBOTS_FORBIDDEN = "robots_forbidden", FETCH, ONCE, (
        "the host's robots.txt forbids the page (`ROBOTSTXT_OBEY`); not fetched")
    REDIRECT_LOOP = "redirect_loop", FETCH, ONCE, "the page redirects back to a URL of its own redirect chain"
    TOO_MANY_REDIRECTS = "too_many_redirects", FETCH, ONCE, (
        "the page still redirects after `REDIRECT_MAX_TIMES` (20) redirects")
    DOWNLOAD_TOO_LARGE = "download_too_large", FETCH, ONCE, (
        "the body is over `DOWNLOAD_MAXSIZE` (8 MiB by default) as sent, or once decompressed (a gzip bomb); not read")
    IGNORED = "ignored", FETCH, ONCE, "a request Scrapy dropped without a reason of ours; not fetched"
    DROPPED = "dropped", FETCH, ONCE, "the scheduler refused the request (not in a shared crawl): the page was not read"
    # A page read, and not a post.
    NO_POST_SECTION = "no_post_section", INVALID, ONCE, "a post page without its `<section>`"
    NO_TITLE_HEADING = "no_title_heading", INVALID, ONCE, "a post page without its `<h1>` title"
    NO_FRONT_MATTER = "no_front_matter", INVALID, ONCE, (
        "a page published from a post file without front matter: the title is the file name and the front matter "
        "shows as text")
    EMPTY_ARTICLE = "empty_article", INVALID, ONCE, "a share text answer without an article (`text` or `content`)"
    MISSING_TITLE = "missing_title", INVALID, ONCE, "no title (post page, listing or feed item)"
    MISSING_DATE = "missing_date", INVALID, ONCE, "no publication time that parses"
    MISSING_LINK = "missing_link", INVALID, ONCE, (
        "no infoCode: no article link, no code in the file name or the request")
    DATE_OUT_OF_RANGE = "date_out_of_range", INVALID, ONCE, (
        "a publication time outside the stored range (1990-01-01 to 2100-01-01 UTC, `finews.core.dates`)")
    BAD_INFO_CODE = "bad_info_code", INVALID, ONCE, (
        "a code that is not an infoCode (`NW` + 18 digits, or an 18-digit rolling id)")
    EMPTY_BODY = "empty_body", INVALID, ONCE, "the cleaned article has no text"
    # newslist: a list feed and its items.
    FEED_NO_ITEMS = "feed_no_items", INVALID, RETRIED, "a feed answer without its items list"
    BAD_ITEM = "bad_item", INVALID, ONCE, "a feed item that is not an object"
    MISSING_FIELD = "missing_field", INVALID, ONCE, "a feed item without a required field"
    BAD_DATE = "bad_date", INVALID, ONCE, "a feed item whose time does not parse"
    MISSING_MEDIA = "missing_media", INVALID, ONCE, "a media feed item that names no media"
    EMPTY_TEXT = "empty_text", INVALID, ONCE, "the text answer has no article under the feed's key"
    # Anything a parser or pipeline step did not expect.
    ITEM_ERROR = "item_error", FETCH, ONCE, (
        "reading or processing this one page or item raised an error no check foresaw; `detail` names it; the rest "
        "of the run goes on, and it is partial")
    # Storing.
    TOO_LARGE = "too_large", STORE, ONCE, (
        "the cleaned post is over `MONGO_MAX_DOCUMENT_BYTES` (12 MiB by default) of BSON; `detail` gives its size "
        "and its `body_html`/`body_text` lengths; not stored, not truncated")
    WRITE_REFUSED = "write_refused", STORE, ONCE, (
        "the server refused the post itself (e.g. the validator); `detail` has its error")

    def __new__(cls, name: str, kind: str, retried: bool, meaning: str) -> Reason:
        member = str.__new__(cls, name)
        member._value_ = name
        member.kind, member.retried, member.meaning = kind, retried, meaning
        return member

    @property
    def family(self) -> bool:
        """``http_<status>`` and ``fetch_<Error>`` name many reasons."""
        return self.endswith("_")


def http(status: int) -> str:
    return f"{Reason.HTTP}{status}"


def fetch_error(error: BaseException) -> str:
    return f"{Reason.FETCH_ERROR}{type(error).__name__}"


def lookup(name: str) -> Reason | None:
    """The declared reason of an emitted one (a family for ``http_404``)."""
    declared = next((r for r in Reason if r == name), None)
    if declared is not None:
        return declared
    return next((r for r in Reason if r.family and name.startswith(r) and len(name) > len(r)), None)


# Prefixes (for str.startswith) of the reasons that leave a run partial.
FETCH_FAILURES = tuple(str(r) for r in Reason if r.kind == FETCH)
# Reasons asked again before they become a reject.
RETRIED_REASONS = frozenset(str(r) for r in Reason if r.retried)


def by_kind(failures: Mapping[str, int]) -> dict[str, int]:
    """Failure counts by reason, summed by kind (an undeclared reason: ``unknown``)."""
    kinds: Counter[str] = Counter()
    for name, count in failures.items():
        reason = lookup(name)
        kinds[reason.kind if reason else "unknown"] += count
    return dict(kinds)


def markdown_table() -> str:
    """The reasons table of docs/schema.md."""
    rows = ["| reason | counts as | retried | meaning |", "|---|---|---|---|"]
    for reason in Reason:
        name = f"{reason}<status>" if reason is Reason.HTTP else f"{reason}<Error>" if reason.family else reason
        rows.append(f"| `{name}` | {reason.kind} | {'yes' if reason.retried else 'no'} | {reason.meaning} |")
    return "\n".join(rows) + "\n"
