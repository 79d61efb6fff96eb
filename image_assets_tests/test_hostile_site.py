"""A vendor site full of faults and hostile values, crawled over real HTTP on 127.0.0.1.

Every fault must end in a clear recorded reason while the vendor's other
products still come through.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest

from image_assets.demo.images import ImageSpec, render_image
from image_assets.demo.serving import serve
from image_assets.scraping.cache import ValidatorCache
from image_assets.scraping.crawl import crawl_vendor, http_settings_for, parse_products
from image_assets.scraping.http import HttpClient, HttpSettings
from image_assets.scraping.registry import parse_registry
from image_assets.steps.originals import fetch_originals
from image_assets.storage import LocalBlobStore

JPEG = render_image(ImageSpec("hostile", 320, 240))


def _product(sku: str, images: list[str], name: str = "Kit") -> bytes:
    node = {"@type": "Product", "name": name, "sku": sku, "image": images}
    return f"<html><head><script type='application/ld+json'>{json.dumps(node)}</script></head></html>".encode()


class _Site:
    def __init__(self) -> None:
        self.hits: dict[str, int] = {}
        self.lock = threading.Lock()

    def hit(self, path: str) -> int:
        with self.lock:
            self.hits[path] = self.hits.get(path, 0) + 1
            return self.hits[path]


@pytest.fixture
def hostile_site() -> Iterator[tuple[str, _Site]]:
    site = _Site()
    pages = {
        "/shop": b"<html>"
        + b"".join(
            f"<a class='p' href='/p/{n}'>{n}</a>".encode()
            for n in [
                "good",
                "flaky",
                "slow",
                "truncated",
                "traversal",
                "unicode",
                "malformed",
                "empty",
                "redirect-private",
                "loop",
                "secret",
            ]
        )
        + b"</html>",
        "/p/good": _product("GOOD-1", ["/img/ok.jpg", "/img/limited.jpg"]),
        "/p/flaky": _product("FLAKY", ["/img/ok.jpg"]),
        "/p/traversal": _product(
            "../../etc/passwd",
            [
                "http://169.254.169.254/latest/meta-data/iam",
                "http://10.0.0.1/x.jpg",
                "file:///etc/passwd",
                "/img/ok.jpg",
            ],
        ),
        "/p/unicode": _product("Fusée 🚀 X", ["/img/ok.jpg"], name="Fus&eacute;e"),
        "/p/malformed": b'<script type=\'application/ld+json\'>{"@type": "Product", </script>',
        "/p/empty": b"<html><body>Nothing to see</body></html>",
        "/p/secret": _product("SECRET", []),
    }

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def send(self, status, body=b"", **headers):
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k.replace("_", "-"), v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            path = self.path
            count = site.hit(path)
            etag = f'"{hash(path) & 0xFFFF:x}"'
            if self.headers.get("If-None-Match") == etag:
                return self.send(304, ETag=etag)
            if path == "/robots.txt":
                return self.send(200, b"User-agent: *\nDisallow: /p/secret\n")
            if path == "/p/flaky" and count == 1:
                return self.send(503, b"busy")
            if path == "/p/slow":
                time.sleep(1.0)
                return self.send(200, b"late")
            if path == "/p/truncated":
                self.send_response(200)
                self.send_header("Content-Length", "5000")
                self.end_headers()
                self.wfile.write(b"<html>only part")
                self.wfile.flush()
                self.close_connection = True
                return None
            if path == "/p/redirect-private":
                return self.send(302, Location="http://169.254.169.254/latest/")
            if path == "/p/loop":
                return self.send(302, Location="/p/loop")
            if path == "/img/ok.jpg":
                return self.send(200, JPEG, Content_Type="image/jpeg", ETag=etag)
            if path == "/img/limited.jpg":
                if count == 1:
                    return self.send(429, b"slow down", Retry_After="1")
                return self.send(200, JPEG, Content_Type="image/jpeg", ETag=etag)
            if path in pages:
                return self.send(200, pages[path], Content_Type="text/html", ETag=etag)
            return self.send(404, b"not found")

    with serve(Handler) as server:
        yield server.url, site


def _vendor(base: str):
    return parse_registry(
        f"""
vendors:
  - key: hostile
    name: Hostile
    allow_private_networks: [127.0.0.0/8]
    http: {{read_timeout: 0.3}}
    catalog: {{kind: jsonld, start_urls: ["{base}/shop"], product_links: "a.p"}}
"""
    ).get("hostile")


def test_every_fault_is_recorded_and_the_rest_comes_through(hostile_site, tmp_path):
    base, site = hostile_site
    vendor = _vendor(base)
    store = LocalBlobStore(tmp_path)
    settings = http_settings_for(vendor, HttpSettings(max_retries=2, backoff_base=0.01))
    with HttpClient(settings) as client:
        crawl = crawl_vendor(vendor, client, store)
        products, problems = parse_products(vendor, crawl.pages, store)
        by_url = {p.url.removeprefix(base): p for p in crawl.pages}
        assert by_url["/p/flaky"].status == "fetched"  # 503 then 200
        assert "timed out after 3 attempts" in by_url["/p/slow"].reason
        assert "connection broken" in by_url["/p/truncated"].reason
        assert "link-local" in by_url["/p/redirect-private"].reason
        assert "too many redirects" in by_url["/p/loop"].reason
        assert by_url["/p/secret"].reason == "disallowed by robots.txt"
        assert by_url["/p/secret"].failure == "robots"
        assert "/p/secret" not in site.hits
        stats = crawl.stats  # robots.txt's wish is its own count, not a failure
        assert stats.robots == 1 and stats.refused == 1  # the redirect to a link-local address
        assert stats.failed == sum(1 for p in crawl.pages if p.status == "failed")
        assert any("malformed JSON-LD" in p for p in problems)
        assert any("/p/empty: no product found" in p for p in problems)

        ids = {p.product_id: p for p in products}
        assert set(ids) == {"good-1", "flaky", "etc-passwd", "fusee-x"}
        assert ids["fusee-x"].name == "Fusée"

        images, stats = fetch_originals(
            products, client, store, ValidatorCache(store, "cache.json"), say=lambda m: None
        )
    reasons = {
        (i.product_id, i.source_url.removeprefix(base)): (i.status, i.reason) for i in images
    }
    assert reasons[("etc-passwd", "http://169.254.169.254/latest/meta-data/iam")][1].startswith(
        "refused link-local"
    )
    assert "private address 10.0.0.1" in reasons[("etc-passwd", "http://10.0.0.1/x.jpg")][1]
    assert "refused scheme 'file'" in reasons[("etc-passwd", "file:///etc/passwd")][1]
    assert reasons[("etc-passwd", "/img/ok.jpg")][0] == "ok"
    assert reasons[("good-1", "/img/limited.jpg")][0] == "ok"  # 429 + Retry-After, then 200
    assert stats.failed == 3 and sum(1 for i in images if i.status == "ok") == 5
    # nothing was written outside the store root
    assert all(p.resolve().is_relative_to(tmp_path) for p in tmp_path.rglob("*"))


def test_second_crawl_is_answered_by_304s(hostile_site, tmp_path):
    base, _site = hostile_site
    vendor = _vendor(base)
    store = LocalBlobStore(tmp_path)
    settings = http_settings_for(vendor, HttpSettings(max_retries=0))
    with HttpClient(settings) as client:
        first = crawl_vendor(vendor, client, store)
        second = crawl_vendor(vendor, client, store)
    fetched_first = {p.url for p in first.pages if p.status == "fetched"}
    assert len(fetched_first) == 6
    # everything fetched before is answered 304; only the page that 503'd the first time is new
    assert {p.url for p in second.pages if p.status == "not_modified"} == fetched_first
    assert [p.url.removeprefix(base) for p in second.pages if p.status == "fetched"] == ["/p/flaky"]
    products_first, _ = parse_products(vendor, first.pages, store)
    products_second, _ = parse_products(vendor, second.pages, store)
    assert {p.product_id for p in products_second} == {p.product_id for p in products_first} | {
        "flaky"
    }
