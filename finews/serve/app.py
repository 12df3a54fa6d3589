"""``finews serve``: the mirror's site, Atom feeds, a JSON API and a run
dashboard, read from MongoDB on every request (read-only).

Routes: ``/``, ``/categories/``, ``/emnews/``, ``/category/<slug>.html``,
each post at its Jekyll URL (``finews.serve.source``: rendered by the
replica's renderer from the exported post files), ``/feed.xml`` and
``/feed/<slug>.xml`` (``finews.serve.atom``), ``/api/...``
(``finews.serve.api``), ``/dashboard/`` (``finews.serve.dashboard``). Every
response carries a Content-Security-Policy that forbids scripts (the site's
layout has inline ones; they are not run) and ``nosniff``.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

from finews.core.pages import MIRROR_HOST, MIRROR_URL
from finews.core.slugs import ROLLING_NEWS_SLUG
from finews.serve import atom, dashboard
from finews.serve.api import Api
from finews.serve.source import REMOVALS_EVERY, StoredSite

logger = logging.getLogger(__name__)

HTML = "text/html; charset=utf-8"
JSON = "application/json; charset=utf-8"
ATOM = "application/atom+xml; charset=utf-8"
CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'none'; object-src 'none'; base-uri 'none'; "
                           "form-action 'none'; frame-ancestors 'none'; img-src http: https: data:; "
                           "style-src 'self' 'unsafe-inline'")
_MIRROR_LINK = re.compile(r'="(?:https?:)?//' + re.escape(MIRROR_HOST) + r'/')
SECURITY_HEADERS = {"Content-Security-Policy": CONTENT_SECURITY_POLICY, "X-Content-Type-Options": "nosniff",
                    "Referrer-Policy": "no-referrer"}
_CATEGORY_FEED = re.compile(r"^/feed/([^/]+)\.xml$")


class ServeHandler(BaseHTTPRequestHandler):
    server: ServeServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_GET(self, head: bool = False) -> None:
        try:
            status, body, content_type = self.server.answer(self.path)
        except Exception:
            logger.exception("serving %s failed", self.path[:200])
            status, body, content_type = 500, "internal error\n", "text/plain; charset=utf-8"
        self._write(status, body, content_type, head=head)

    def do_HEAD(self) -> None:
        self.do_GET(head=True)

    def _refuse(self) -> None:
        self._write(405, "read-only: GET and HEAD only\n", "text/plain; charset=utf-8", {"Allow": "GET, HEAD"})

    do_POST = do_PUT = do_DELETE = do_PATCH = _refuse

    def _write(self, status: int, body: str, content_type: str, extra: dict | None = None, head: bool = False):
        payload = body.encode("utf-8")
        self.send_response(status)
        for name, value in {**SECURITY_HEADERS, **(extra or {})}.items():
            self.send_header(name, value)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if not head:
            self.wfile.write(payload)

    def log_message(self, fmt: str, *args) -> None:
        logger.debug("%s %s", self.address_string(), fmt % args)


class ServeServer(ThreadingHTTPServer):
    """``finews serve`` on ``host:port`` (port 0 picks a free one)."""

    daemon_threads = True

    def __init__(self, db, host: str = "127.0.0.1", port: int = 0, spool_folder: Path | None = None,
                 base_url: str | None = None, removals_every: float = REMOVALS_EVERY):
        super().__init__((host, port), ServeHandler)
        self.db = db
        self.site = StoredSite(db, removals_every=removals_every)
        self.api = Api(db, self._page_of)
        self.spool_folder = spool_folder
        self._base_url = base_url
        self._thread: threading.Thread | None = None
        self._feeds: dict[str, str] = {}
        self._feeds_state: tuple[int, int] | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def base_url(self) -> str:
        """Where the feeds' links point: this server (or ``base_url``)."""
        return self._base_url or self.url

    def _page_of(self, post: dict) -> str | None:
        entry = self.site.entry_of(post)
        return entry.path if entry else None

    def answer(self, target: str) -> tuple[int, str, str]:
        parts = urlsplit(target)
        path = unquote(parts.path)
        if path.startswith("/api/"):
            status, document = self.api.answer(parts.path, parts.query)
            return status, json.dumps(document, ensure_ascii=False) + "\n", JSON
        if path in ("/dashboard", "/dashboard/"):
            return 200, dashboard.render(self.db, self.spool_folder), HTML
        site = self.site.site()
        if path in ("/", "/index.html"):
            return self._page(site.home())
        if path in ("/categories/", "/categories/index.html"):
            return self._page(site.categories_page())
        if path in (f"/{ROLLING_NEWS_SLUG}/", f"/{ROLLING_NEWS_SLUG}/index.html"):
            return self._page(site.rolling_news())
        if path == "/feed.xml":
            return 200, self._feed(path, lambda: atom.feed(site.entries, self.base_url)), ATOM
        feed = _CATEGORY_FEED.match(path)
        if feed:
            slug = feed.group(1)
            entries = site.by_category.get(slug)
            if not entries:
                return self._page(None)
            return 200, self._feed(path, lambda: atom.feed(entries, self.base_url, path, category=slug)), ATOM
        if path.startswith("/category/") and path.endswith(".html"):
            return self._page(site.listing(path[len("/category/"):-len(".html")]))
        entry = site.post_at(path)
        return self._page(site.post_page(entry) if entry else None)

    def _feed(self, path: str, make: Callable[[], str]) -> str:
        """A feed made once per state of the site (it sorts every post)."""
        state = (self.site.builds, self.site.updates)
        if self._feeds_state != state:
            self._feeds, self._feeds_state = {}, state
        if path not in self._feeds:
            self._feeds[path] = make()
        return self._feeds[path]

    def _page(self, body: str | None) -> tuple[int, str, str]:
        if body is None:
            return 404, "not found\n", "text/plain; charset=utf-8"
        return 200, self._own_links(body), HTML

    def _own_links(self, body: str) -> str:
        """The site's pages link to the mirror by its absolute address (header,
        canonical and back links, as the real site does); served as itself,
        those links lead to this server's pages. Served with ``base_url`` set
        to the mirror's address, the pages are left as the real site has them."""
        if self.base_url == MIRROR_URL:
            return body
        return _MIRROR_LINK.sub('="/', body)

    def handle_error(self, request, client_address) -> None:
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return
        super().handle_error(request, client_address)

    def start(self) -> ServeServer:
        self._thread = threading.Thread(target=self.serve_forever, name="finews-serve", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.site.close()
        self.shutdown()
        self.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> ServeServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
