"""Serve a ReplicaSite over HTTP on loopback: both hosts on one port."""

from __future__ import annotations

import json
import logging
import random
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from finews.core.slugs import ROLLING_NEWS_SLUG
from finews.replica.faults import OFFSITE_HOST, FaultPlan
from finews.replica.feeds import FEED_FAULTS, FEED_PATHS, feed_answer, text_json
from finews.replica.site import ReplicaSite

logger = logging.getLogger(__name__)

HTML = "text/html; charset=utf-8"
JSON = "application/json; charset=utf-8"


class ReplicaHandler(BaseHTTPRequestHandler):
    server: ReplicaServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle's algorithm the body
    # waits for the client's delayed ACK (about 40 ms per keep-alive request).
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self.fault = self.server.fault_for(self.path)
        if self.fault in ("status500", "status503", "status429"):
            return self._fail(int(self.fault[-3:]))
        if self.fault == "timeout":
            self.server.stopping.wait(self.server.faults.hang_seconds)
            self.close_connection = True
            return None
        if self.fault == "redirect_offsite":
            self.send_response(HTTPStatus.FOUND)
            self.send_header("Location", f"http://{OFFSITE_HOST}{self.path}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        if self.fault == "garbage":
            return self._write(bytes(random.Random(self.path).randrange(256) for _ in range(2048)),
                               HTTPStatus.OK, "application/octet-stream")
        if self.fault == "slow":
            self.server.stopping.wait(self.server.faults.slow_seconds)
        return self._route()

    def _route(self) -> None:
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        path = unquote(parts.path)
        site = self.server.site
        page = _int(query.get("page", ["1"])[0])
        if path in ("/", "/index.html"):
            return self._send(site.home())
        if path in ("/categories/", "/categories/index.html"):
            return self._send(site.categories_page())
        if path == "/feed.xml":
            return self._send(site.feed(self.server.url), "application/atom+xml; charset=utf-8")
        if path in (f"/{ROLLING_NEWS_SLUG}/", f"/{ROLLING_NEWS_SLUG}/index.html"):
            return self._send(site.rolling_news() if page == 1 else None)
        if path.startswith("/category/") and path.endswith(".html"):
            return self._send(site.listing(path[len("/category/"):-len(".html")], page))
        if path == "/html_News/NewsShare.html":
            return self._send(site.share_page(_first(query, "infoCode")))
        if path == "/NewsData/GetNewsText.do":
            return self._send(text_json(site, _first(query, "id")), JSON)
        if path in FEED_PATHS:
            return self._send(*feed_answer(site, path, query, getattr(self, "fault", None)))
        entry = site.post_at(path)
        return self._send(site.post_page(entry) if entry else None)

    def do_POST(self) -> None:
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
            return self._write(b"not found\n", HTTPStatus.NOT_FOUND, "text/plain")
        fault = getattr(self, "fault", None)
        if fault == "gbk":
            body = body.replace('<meta charset="utf-8">', '<meta charset="gbk">')
            declared = self.server.faults.variant(self.path, 0)
            content_type = content_type.replace("utf-8", "gbk") if declared else content_type.split(";")[0]
            return self._write(body.encode("gbk", errors="xmlcharrefreplace"), HTTPStatus.OK, content_type)
        if fault == "truncate":
            cut = body[: max(1, len(body) // 2)]
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", content_type)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(cut.encode("utf-8"))
            self.close_connection = True
            return None
        if fault == "oversize":
            padding = "<!-- " + "x" * self.server.faults.oversize_bytes + " -->"
            body = body.replace("</body>", padding + "</body>", 1)
        return self._write(body.encode("utf-8"), HTTPStatus.OK, content_type)

    def _fail(self, status: int) -> None:
        retry_after = {"Retry-After": str(self.server.faults.retry_after)} if status in (429, 503) else {}
        self._write(f"{status}\n".encode(), status, "text/plain", retry_after)

    def _write(self, payload: bytes, status: int, content_type: str, headers: dict | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, fmt: str, *args) -> None:
        logger.debug("%s %s", self.address_string(), fmt % args)


class ReplicaServer(ThreadingHTTPServer):
    """The replica on ``host:port`` (port 0 picks a free one)."""

    daemon_threads = True

    def __init__(self, site: ReplicaSite, host: str = "127.0.0.1", port: int = 0,
                 faults: FaultPlan | None = None):
        super().__init__((host, port), ReplicaHandler)
        self.site = site
        self.faults = faults or FaultPlan()
        self.attempts: dict[str, int] = {}
        self.faults_served: dict[str, int] = {}
        self._attempts_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.stopping = threading.Event()

    def handle_error(self, request, client_address) -> None:
        """A client that gave up (a timeout fault does that) is not an error."""
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            logger.debug("client %s went away", client_address)
            return
        super().handle_error(request, client_address)

    def fault_for(self, path: str) -> str | None:
        """Count the request (``attempts``: how often each path was asked for)
        and draw its fault; robots.txt is always served."""
        if path.startswith(("/robots.txt", "/_admin")):
            return None
        with self._attempts_lock:
            attempt = self.attempts.get(path, 0)
            self.attempts[path] = attempt + 1
            fault = self.faults.choose(path, attempt) if self.faults else None
            if fault in FEED_FAULTS and not path.startswith(FEED_PATHS):
                fault = None  # feed fault modes only damage the list feeds
            if fault:
                self.faults_served[fault] = self.faults_served.get(fault, 0) + 1
        return fault

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        assert isinstance(host, str)  # an AF_INET address (only a Unix socket's is bytes)
        return f"http://{host}:{port}"

    def start(self) -> ReplicaServer:
        """Serve from a background thread (for tests and the demo)."""
        self._thread = threading.Thread(target=self.serve_forever, name="replica", daemon=True)
        self._thread.start()
        return self

    def grow(self, per_second: float) -> threading.Thread:
        """Keep adding synthesized posts at a steady rate while serving."""

        def add_forever():
            while not self.stopping.wait(1.0 / per_second if per_second < 1 else 1.0):
                self.site.synthesize(max(1, int(per_second)))

        thread = threading.Thread(target=add_forever, name="replica-grow", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self.stopping.set()
        self.shutdown()
        self.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> ReplicaServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _first(query: dict[str, list[str]], key: str) -> str:
    return query.get(key, [""])[0]


def _int(text: str) -> int:
    return int(text) if text.isdigit() and int(text) > 0 else 1
