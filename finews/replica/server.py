"""Serve a ReplicaSite over HTTP on loopback: both hosts on one port."""

from __future__ import annotations

import json
import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from finews.replica.site import ReplicaSite
from finews.slugs import ROLLING_NEWS_SLUG

logger = logging.getLogger(__name__)

HTML = "text/html; charset=utf-8"
JSON = "application/json; charset=utf-8"


class ReplicaHandler(BaseHTTPRequestHandler):
    server: "ReplicaServer"
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        path = unquote(parts.path)
        site = self.server.site
        page = _int(query.get("page", ["1"])[0])
        if path == "/":
            return self._send(site.home())
        if path == "/feed.xml":
            return self._send(site.feed(self.server.url), "application/atom+xml; charset=utf-8")
        if path == f"/{ROLLING_NEWS_SLUG}/":
            return self._send(site.listing(ROLLING_NEWS_SLUG, page))
        if path.startswith("/category/") and path.endswith(".html"):
            return self._send(site.listing(path[len("/category/"):-len(".html")], page))
        if path == "/html_News/NewsShare.html":
            return self._send(site.share_page(_first(query, "infoCode")))
        if path == "/NewsData/GetNewsText.do":
            return self._send(site.share_json(_first(query, "id")), JSON)
        entry = site.post_at(path)
        return self._send(site.post_page(entry) if entry else None)

    def do_POST(self) -> None:  # noqa: N802
        """``POST /_admin/add?n=K`` adds K synthesized posts (scale tests)."""
        parts = urlsplit(self.path)
        if parts.path != "/_admin/add":
            return self._send(None)
        count = _int(parse_qs(parts.query).get("n", ["1"])[0])
        added = self.server.site.synthesize(count)
        codes = [entry.post.raw_code for entry in added]
        return self._send(json.dumps({"added": len(codes), "codes": codes}), JSON)

    def _send(self, body: str | None, content_type: str = HTML) -> None:
        if body is None:
            payload, status, content_type = b"not found\n", HTTPStatus.NOT_FOUND, "text/plain"
        else:
            payload, status = body.encode("utf-8"), HTTPStatus.OK
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, fmt: str, *args) -> None:
        logger.debug("%s " + fmt, self.address_string(), *args)


class ReplicaServer(ThreadingHTTPServer):
    """The replica on ``host:port`` (port 0 picks a free one)."""

    daemon_threads = True

    def __init__(self, site: ReplicaSite, host: str = "127.0.0.1", port: int = 0):
        super().__init__((host, port), ReplicaHandler)
        self.site = site
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "ReplicaServer":
        """Serve from a background thread (for tests and the demo)."""
        self._thread = threading.Thread(target=self.serve_forever, name="replica", daemon=True)
        self._thread.start()
        return self

    def grow(self, per_second: float) -> threading.Thread:
        """Keep adding synthesized posts at a steady rate while serving."""

        def add_forever():
            while not self._stopping.wait(1.0 / per_second if per_second < 1 else 1.0):
                self.site.synthesize(max(1, int(per_second)))

        thread = threading.Thread(target=add_forever, name="replica-grow", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stopping.set()
        self.shutdown()
        self.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> "ReplicaServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _first(query: dict[str, list[str]], key: str) -> str:
    return query.get(key, [""])[0]


def _int(text: str) -> int:
    return int(text) if text.isdigit() and int(text) > 0 else 1
