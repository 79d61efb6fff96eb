"""The HTTP client against real servers on 127.0.0.1."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler

import pytest

from image_assets.demo.serving import serve
from image_assets.retry import retry_after_seconds
from image_assets.scraping.http import (
    FetchError,
    HttpClient,
    HttpSettings,
    RefusedURL,
    Validators,
    check_url,
)

Script = Callable[[BaseHTTPRequestHandler], None]


@pytest.fixture
def scripted_server() -> Iterator[tuple[str, dict[str, Script], list[str]]]:
    """A server whose paths answer with scripted handlers; records every request path."""
    routes: dict[str, Script] = {}
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            seen.append(self.path)
            routes.get(self.path, _not_found)(self)

        def log_message(self, *args):
            pass

    with serve(Handler) as server:
        yield server.url, routes, seen


def _send(handler, status: int, body: bytes = b"", **headers: str) -> None:
    handler.send_response(status)
    for name, value in headers.items():
        handler.send_header(name.replace("_", "-"), value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def _not_found(handler):
    _send(handler, 404, b"nope")


def _client(**overrides) -> HttpClient:
    settings = {
        "allowed_private_networks": ("127.0.0.0/8",),
        "backoff_base": 0.01,
        "respect_robots": True,
        **overrides,
    }
    return HttpClient(HttpSettings(**settings), sleep=lambda s: None)


def test_retries_503_then_succeeds(scripted_server):
    base, routes, _seen = scripted_server
    answers = iter([503, 503, 200])
    routes["/flaky"] = lambda h: _send(h, next(answers), b"ok")
    result = _client().fetch(f"{base}/flaky")
    assert result.content == b"ok" and result.attempts == 3


def test_429_honours_retry_after(scripted_server):
    base, routes, _ = scripted_server
    answers = iter([(429, {"Retry_After": "7"}), (200, {})])
    sleeps: list[float] = []

    def handler(h):
        status, headers = next(answers)
        _send(h, status, b"x", **headers)

    routes["/limited"] = handler
    client = HttpClient(
        HttpSettings(allowed_private_networks=("127.0.0.0/8",)), sleep=sleeps.append
    )
    assert client.fetch(f"{base}/limited").content == b"x"
    assert sleeps == [7.0]


def test_gives_up_with_a_reason(scripted_server):
    base, routes, seen = scripted_server
    routes["/down"] = lambda h: _send(h, 500, b"boom")
    with pytest.raises(FetchError, match=r"HTTP 500 after 4 attempts"):
        _client(max_retries=3).fetch(f"{base}/down")
    assert seen.count("/down") == 4


def test_conditional_get_304(scripted_server):
    base, routes, _ = scripted_server

    def handler(h):
        if h.headers.get("If-None-Match") == '"v1"':
            _send(h, 304)
        else:
            _send(h, 200, b"body", ETag='"v1"')

    routes["/page"] = handler
    client = _client()
    first = client.fetch(f"{base}/page")
    assert first.validators.etag == '"v1"' and not first.not_modified
    second = client.fetch(f"{base}/page", Validators(etag='"v1"'))
    assert second.not_modified and second.content == b""


def test_robots_disallow_is_refused_and_fetched_once(scripted_server):
    base, routes, seen = scripted_server
    routes["/robots.txt"] = lambda h: _send(h, 200, b"User-agent: *\nDisallow: /private/\n")
    routes["/ok"] = lambda h: _send(h, 200, b"fine")
    client = _client()
    with pytest.raises(RefusedURL, match=r"robots\.txt"):
        client.fetch(f"{base}/private/x")
    assert client.fetch(f"{base}/ok").content == b"fine"
    assert seen.count("/robots.txt") == 1 and "/private/x" not in seen


def test_redirect_loop_is_bounded(scripted_server):
    base, routes, _ = scripted_server
    routes["/loop"] = lambda h: _send(h, 302, Location="/loop")
    with pytest.raises(FetchError, match="too many redirects"):
        _client(max_redirects=3).fetch(f"{base}/loop")


def test_max_bytes(scripted_server):
    base, routes, _ = scripted_server
    routes["/big"] = lambda h: _send(h, 200, b"x" * 5000)
    with pytest.raises(FetchError, match="too large"):
        _client().fetch(f"{base}/big", max_bytes=1000)


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/x.jpg",
        "http://127.0.0.1:9/x",
        "http://[::1]/x",
        "gopher://example.com/",
    ],
)
def test_ssrf_guard_refuses_private_and_odd_urls(url):
    with pytest.raises(RefusedURL):
        check_url(url)


def test_only_listed_private_networks_are_allowed():
    check_url("http://127.0.0.1:8000/x", ["127.0.0.0/8"])
    with pytest.raises(RefusedURL, match=r"private address 10\.0\.0\.1"):
        check_url("http://10.0.0.1/x.jpg", ["127.0.0.0/8"])
    with pytest.raises(RefusedURL, match="link-local"):
        check_url("http://169.254.169.254/", ["127.0.0.0/8"])


def test_redirect_to_private_address_is_refused(scripted_server):
    base, routes, _ = scripted_server
    routes["/hop"] = lambda h: _send(h, 302, Location="http://169.254.169.254/latest/")
    with pytest.raises(RefusedURL):
        _client().fetch(f"{base}/hop")


def test_retry_after_parsing():
    assert retry_after_seconds("5") == 5.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412480.0) == 0.0
    assert retry_after_seconds("soon") is None


def test_per_host_concurrency_limit_is_respected(scripted_server):
    from concurrent.futures import ThreadPoolExecutor

    base, routes, _ = scripted_server
    state = {"now": 0, "max": 0}
    lock = threading.Lock()

    def slow(h):
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        time.sleep(0.05)
        with lock:
            state["now"] -= 1
        _send(h, 200, b"ok")

    for i in range(24):
        routes[f"/img/{i}"] = slow
    client = _client(per_host_concurrency=3, respect_robots=False)
    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(lambda i: client.fetch(f"{base}/img/{i}"), range(24)))
    assert all(r.content == b"ok" for r in results)
    assert state["max"] == 3


def test_request_rate_spaces_out_request_starts():
    from image_assets.scraping.http import _HostState

    state = _HostState(threading.Semaphore(4))
    delays = [state.reserve_slot(0.5) for _ in range(4)]
    assert delays[0] == pytest.approx(0, abs=0.05)
    assert delays[1:] == pytest.approx([0.5, 1.0, 1.5], abs=0.05)


def test_read_timeout_is_a_recorded_reason(scripted_server):
    base, routes, _ = scripted_server

    def stall(h):
        time.sleep(0.5)
        _send(h, 200, b"late")

    routes["/stall"] = stall
    with pytest.raises(FetchError, match="timed out after 2 attempts"):
        _client(read_timeout=0.1, max_retries=1, respect_robots=False).fetch(f"{base}/stall")


def test_dns_rebinding_is_refused_at_connect_time(scripted_server, monkeypatch):
    """The name resolves to a public address for the check, then to a private one."""
    import socket as socket_module

    base, routes, seen = scripted_server
    port = int(base.rsplit(":", 1)[1])
    routes["/secret"] = lambda h: _send(h, 200, b"internal")
    real = socket_module.getaddrinfo
    answers = iter(["93.184.215.14", "127.0.0.1", "127.0.0.1", "127.0.0.1"])

    def rebinding(host, *args, **kwargs):
        if host == "rebind.example":
            address = next(answers)
            return [(socket_module.AF_INET, socket_module.SOCK_STREAM, 6, "", (address, port))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket_module, "getaddrinfo", rebinding)
    client = HttpClient(HttpSettings(respect_robots=False), sleep=lambda s: None)
    with pytest.raises(RefusedURL, match=r"private address 127\.0\.0\.1"):
        client.fetch(f"http://rebind.example:{port}/secret")
    assert "/secret" not in seen


def test_a_request_rate_with_robots_txt_and_threads_finishes(scripted_server):
    """The README's own example (``requests_per_second``) once hung forever: robots.txt was
    loaded under the lock that the rate clock takes again."""
    base, routes, seen = scripted_server
    routes["/robots.txt"] = lambda h: _send(h, 200, b"User-agent: *\nDisallow: /private\n")
    for i in range(12):
        routes[f"/p{i}"] = lambda h, i=i: _send(h, 200, b"page %d" % i)
    waits: list[float] = []  # the rate clock's waits, recorded instead of slept
    settings = HttpSettings(
        allowed_private_networks=("127.0.0.0/8",),
        requests_per_second=2.0,
        per_host_concurrency=4,
    )
    client = HttpClient(settings, sleep=waits.append)
    urls = [f"{base}/p{i}" for i in range(12)]
    bodies: dict[str, bytes] = {}

    def fetch(batch: list[str]) -> None:
        for url in batch:
            bodies[url] = client.fetch(url).content

    # daemon threads: a deadlock fails the join below instead of hanging the suite
    threads = [threading.Thread(target=fetch, args=(urls[i::6],), daemon=True) for i in range(6)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 20
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), "the crawl hung"
    assert [bodies[url] for url in urls] == [b"page %d" % i for i in range(12)]
    assert seen.count("/robots.txt") == 1
    # the rate still holds: 13 requests (robots.txt first) get slots 0.5 s apart
    assert len(waits) == 12 and max(waits) > 12 * 0.5 * 0.8
    with pytest.raises(RefusedURL, match="robots"):
        client.fetch(f"{base}/private/x")


def test_a_products_json_that_answers_html_names_the_url_and_what_came_back(scripted_server):
    from image_assets.scraping.crawl import CatalogUnavailable, crawl_vendor
    from image_assets.scraping.registry import parse_registry
    from image_assets.storage import MemoryBlobStore

    base, routes, _ = scripted_server
    page = b"<!DOCTYPE html>\n<html><body>Please log in</body></html>"
    routes["/products.json?limit=250&page=1"] = lambda h: _send(
        h, 200, page, Content_Type="text/html; charset=utf-8"
    )
    vendor = parse_registry(
        f"vendors: [{{key: s, name: S, allow_private_networks: [127.0.0.0/8],"
        f" catalog: {{kind: shopify, base_url: '{base}'}}}}]"
    ).get("s")
    with (
        HttpClient(HttpSettings(allowed_private_networks=("127.0.0.0/8",))) as client,
        pytest.raises(CatalogUnavailable) as info,
    ):
        crawl_vendor(vendor, client, MemoryBlobStore())
    message = str(info.value)
    assert f"{base}/products.json?limit=250&page=1 answered text/html; charset=utf-8" in message
    assert "'<!DOCTYPE html> <html><body>Please log in" in message
    assert "products.json is not JSON" in message and "\n" not in message
