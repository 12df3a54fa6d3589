"""What a crawl may fetch: one rule for the spiders' links and for the
downloader's requests and redirects, so that the two cannot disagree.

A URL is on the site when its scheme is http or https and its scheme, host
and port (80 and 443 when not written) are those of a configured base URL:
another scheme (``file:``, ``ftp:``, ``s3:``, ``data:``), another port of the
same host, a subdomain or a URL with credentials (``user@``) is not.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from scrapy.exceptions import IgnoreRequest
from w3lib.url import safe_url_string

DEFAULT_PORTS = {"http": 80, "https": 443}

Origin = tuple[str, str, int]


class Refused(IgnoreRequest):
    """A request given up on purpose; ``reason`` is its reject reason
    (``SiteSpider.failed`` reads it)."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def origin(url: str) -> Origin | None:
    """``(scheme, host, port)`` of an http(s) URL, read as a Request would
    send it; None for another scheme, no host, credentials or a bad port."""
    try:
        parts = urlsplit(safe_url_string(url.strip()))
        port = parts.port
    except ValueError:  # a port that is not a number, a host IDNA refuses
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname or "@" in parts.netloc:
        return None
    return scheme, parts.hostname.lower(), DEFAULT_PORTS[scheme] if port is None else port


def origins_of(spider) -> frozenset[Origin]:
    """The spider's configured base URLs: its ``site``, and for newslist its
    ``hosts`` (list feeds, market feeds, text site)."""
    bases = [getattr(spider, "site", ""), *(getattr(spider, "hosts", None) or {}).values()]
    return frozenset(o for o in map(origin, filter(None, bases)) if o is not None)


def on_site(url: str, origins: frozenset[Origin] | set[Origin]) -> bool:
    """Whether ``url`` may be fetched by a spider configured with ``origins``
    (without any, every http(s) URL may)."""
    target = origin(url)
    return target is not None and (not origins or target in origins)
