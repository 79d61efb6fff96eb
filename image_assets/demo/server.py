"""A small threaded HTTP server for the demo sites, on 127.0.0.1.

It behaves like a well-run web server where the pipeline cares: ETag and
Last-Modified on every response, 304 for conditional requests, 404 for
unknown paths, robots.txt. Bodies are generated on first request and cached.
"""

from __future__ import annotations

import hashlib
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from image_assets.demo.serving import BackgroundServer
from image_assets.demo.sites import LAST_MODIFIED, DemoSites, build_sites


class _Handler(BaseHTTPRequestHandler):
    server: DemoHTTPServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # as real servers do; avoids 40 ms delayed-ACK stalls

    def do_GET(self) -> None:
        self._respond(include_body=True)

    def do_HEAD(self) -> None:
        self._respond(include_body=False)

    def _respond(self, include_body: bool) -> None:
        entry = self.server.body(self.path)
        if entry is None:
            payload = b"<html><body><h1>404 Not Found</h1></body></html>"
            self.send_response(404)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if include_body:
                self.wfile.write(payload)
            return
        content_type, body, etag = entry
        self.server.count(self.path)
        if self.headers.get("If-None-Match") == etag or (
            "If-None-Match" not in self.headers
            and self.headers.get("If-Modified-Since") == LAST_MODIFIED
        ):
            self.send_response(304)
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", LAST_MODIFIED)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", LAST_MODIFIED)
        self.send_header("Cache-Control", "max-age=300")
        self.end_headers()
        if include_body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: the pipeline's own logs tell the story


class DemoHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, host: str, port: int):
        super().__init__((host, port), _Handler)
        self.sites: DemoSites = build_sites(f"http://{host}:{self.server_address[1]}")
        self._cache: dict[str, tuple[str, bytes, str]] = {}
        self._lock = threading.Lock()
        self.requests: dict[str, int] = {}

    @property
    def base_url(self) -> str:
        return self.sites.base_url

    def handle_error(self, request, client_address) -> None:
        """Clients hanging up early (a refused image, a timeout) are normal; stay quiet."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def body(self, path: str) -> tuple[str, bytes, str] | None:
        route = self.sites.routes.get(path)
        if route is None:
            return None
        with self._lock:
            cached = self._cache.get(path)
        if cached is None:
            body = route.body()
            etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
            cached = (route.content_type, body, etag)
            with self._lock:
                self._cache[path] = cached
        return cached

    def count(self, path: str) -> None:
        with self._lock:
            self.requests[path] = self.requests.get(path, 0) + 1


class DemoServer:
    """Run the demo sites in a background thread; use as a context manager."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.httpd = DemoHTTPServer(host, port)
        self._background = BackgroundServer(self.httpd, name="demo-sites")

    @property
    def base_url(self) -> str:
        return self.httpd.base_url

    def start(self) -> DemoServer:
        self._background.start()
        return self

    def stop(self) -> None:
        self._background.stop()

    def __enter__(self) -> DemoServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
