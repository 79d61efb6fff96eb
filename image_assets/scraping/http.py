"""The one HTTP client for catalog pages and images.

Polite (descriptive User-Agent, robots.txt, a per-host concurrency limit),
patient (retries with exponential backoff and jitter on 429/5xx/timeouts,
honouring ``Retry-After``), cheap on re-runs (conditional GETs) and safe with
hostile URLs (http/https only, no private or link-local targets unless a vendor
allows them, re-checked on every redirect, bounded redirects and body size).

Every failure surfaces as :class:`FetchError` with a short ``reason`` that is
recorded on the page or product and a :class:`~image_assets.failures.FailureKind`;
callers never see raw httpx exceptions. Retries go through the shared helper
(``image_assets/retry.py``).
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx
from protego import Protego

from image_assets import __version__
from image_assets.failures import FailureKind
from image_assets.retry import (
    Backoff,
    RetriesExhausted,
    Transient,
    call_with_retries,
    retry_after_seconds,
)

DEFAULT_USER_AGENT = (
    f"image-assets/{__version__} (+https://github.com/image-assets/image-assets; catalog image bot)"
)
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


class FetchError(Exception):
    """A URL could not be fetched; ``reason`` is short and safe to record."""

    def __init__(self, url: str, reason: str, kind: FailureKind, status_code: int | None = None):
        super().__init__(f"{reason} ({url})")
        self.url = url
        self.reason = reason
        self.kind = kind
        self.status_code = status_code


class RefusedURL(FetchError):
    """The URL was refused before any request: bad scheme, private address, robots.txt."""

    def __init__(self, url: str, reason: str, kind: FailureKind = FailureKind.REFUSED_URL):
        super().__init__(url, reason, kind)


class AddressRefused(httpcore.ConnectError):
    """The connect-time guard refused the address a host name resolved to.

    httpx wraps it in its own ``ConnectError`` and keeps it as ``__cause__``.
    """


@dataclass(frozen=True)
class HttpSettings:
    user_agent: str = DEFAULT_USER_AGENT
    connect_timeout: float = 5.0
    read_timeout: float = 20.0
    max_retries: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    max_bytes: int = 64 * 1024 * 1024
    max_redirects: int = 5
    per_host_concurrency: int = 4
    requests_per_second: float | None = None
    respect_robots: bool = True
    allowed_private_networks: tuple[str, ...] = ()


@dataclass(frozen=True)
class Validators:
    """What a previous response said about its version (for conditional GETs)."""

    etag: str | None = None
    last_modified: str | None = None

    def headers(self) -> dict[str, str]:
        headers = {}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        return headers


@dataclass
class FetchResult:
    url: str
    final_url: str
    status_code: int
    content: bytes
    content_type: str | None
    validators: Validators
    not_modified: bool = False
    attempts: int = 1
    location: str | None = None
    retry_after: str | None = None
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names


def check_url(url: str, allowed_private_networks: Iterable[str] = ()) -> None:
    """Refuse URLs that could reach something other than a public web server.

    Only http/https. Every address the host resolves to must be public, or
    inside one of ``allowed_private_networks`` (CIDRs a vendor entry lists
    explicitly; the demo and tests list 127.0.0.0/8). Link-local addresses
    (169.254.0.0/16, the cloud metadata service), multicast, reserved and
    unspecified addresses are refused unless a listed network contains them.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise RefusedURL(url, f"refused scheme {parts.scheme or '(none)'!r}: only http/https")
    host = parts.hostname
    if not host:
        raise RefusedURL(url, "refused URL without a host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise RefusedURL(url, "refused URL with an invalid port") from None
    resolve_allowed(host, port, allowed_private_networks, url)


def resolve_allowed(
    host: str, port: int, allowed_private_networks: Iterable[str], url: str = ""
) -> list[str]:
    """Resolve ``host`` and return its addresses, refusing if any is not allowed."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError(
            url or host, f"cannot resolve host {host}: {exc}", FailureKind.DNS
        ) from None
    networks = [ipaddress.ip_network(n, strict=False) for n in allowed_private_networks]
    addresses = []
    for info in infos:
        text = str(info[4][0]).split("%", 1)[0]
        address = ipaddress.ip_address(text)
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        addresses.append(text)
        if any(address in network for network in networks):
            continue
        if address.is_link_local or address.is_multicast or address.is_unspecified:
            raise RefusedURL(url or host, f"refused link-local/multicast address {address}")
        if address.is_loopback or address.is_private or address.is_reserved:
            raise RefusedURL(url or host, f"refused private address {address} for host {host}")
    return addresses


class _GuardedBackend(httpcore.SyncBackend):
    """Connects only to addresses that pass the guard, checked at connect time.

    ``check_url`` runs before a request, but the connection resolves the name
    again; a DNS answer that changes in between (DNS rebinding) could point it
    at a private address. Here the address actually connected to is the one
    just validated. TLS still verifies the original host name.
    """

    def __init__(self, allowed_private_networks: Iterable[str]):
        super().__init__()
        self.allowed = tuple(allowed_private_networks)

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        try:
            address = resolve_allowed(host, port, self.allowed)[0]
        except RefusedURL as exc:
            raise AddressRefused(exc.reason) from None
        except FetchError as exc:
            raise httpcore.ConnectError(exc.reason) from None
        return super().connect_tcp(address, port, timeout, local_address, socket_options)


@dataclass
class _HostState:
    """Per-origin politeness: a concurrency semaphore, a request-rate clock, robots.txt.

    Two locks, never nested: ``robots_lock`` is held while robots.txt is fetched (that
    fetch itself takes a rate slot under ``clock_lock``), so one lock for both would
    deadlock the first request of a vendor with a request rate.
    """

    semaphore: threading.Semaphore
    robots: Protego | None = None
    robots_loaded: bool = False
    robots_lock: threading.Lock = field(default_factory=threading.Lock)
    clock_lock: threading.Lock = field(default_factory=threading.Lock)
    next_slot: float = 0.0

    def reserve_slot(self, interval: float) -> float:
        """Seconds to wait so that requests to this host start at least ``interval`` apart."""
        with self.clock_lock:
            now = time.monotonic()
            start = max(now, self.next_slot)
            self.next_slot = start + interval
            return start - now


class HttpClient:
    """Thread-safe client; share one per crawl so pooling and host limits apply."""

    def __init__(
        self,
        settings: HttpSettings | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.settings = settings or HttpSettings()
        self._sleep = sleep
        self._hosts: dict[str, _HostState] = {}
        self._hosts_lock = threading.Lock()
        s = self.settings
        self._client = httpx.Client(
            headers={"User-Agent": s.user_agent, "Accept-Encoding": "gzip, deflate"},
            timeout=httpx.Timeout(s.read_timeout, connect=s.connect_timeout),
            limits=httpx.Limits(
                max_connections=max(8, s.per_host_concurrency * 4),
                max_keepalive_connections=max(8, s.per_host_concurrency * 4),
            ),
            follow_redirects=False,
            trust_env=False,
        )
        # connect-time address check (no DNS rebinding); httpx exposes no hook for the
        # network backend, so it is set on the connection pool it created
        for transport in [self._client._transport]:
            transport._pool._network_backend = _GuardedBackend(s.allowed_private_networks)  # type: ignore[attr-defined]

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _host(self, url: str) -> _HostState:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        with self._hosts_lock:
            state = self._hosts.get(origin)
            if state is None:
                state = _HostState(threading.Semaphore(self.settings.per_host_concurrency))
                self._hosts[origin] = state
            return state

    def allowed_by_robots(self, url: str) -> bool:
        """Whether robots.txt of the URL's host lets our User-Agent fetch it (fetched once per host)."""
        if not self.settings.respect_robots:
            return True
        state = self._host(url)
        with state.robots_lock:  # one fetch of robots.txt per host; others wait for it
            if not state.robots_loaded:
                state.robots = self._load_robots(url)
                state.robots_loaded = True
        if state.robots is None:
            return True
        return state.robots.can_fetch(url, self.settings.user_agent)

    def _load_robots(self, url: str) -> Protego | None:
        robots_url = urljoin(url, "/robots.txt")
        try:
            result = self._get(robots_url, headers={}, max_bytes=512 * 1024)
        except FetchError:
            return None  # unreachable or missing robots.txt: everything is allowed
        if result.status_code != 200:
            return None
        return Protego.parse(result.content.decode("utf-8", "replace"))

    def fetch(
        self,
        url: str,
        validators: Validators | None = None,
        *,
        max_bytes: int | None = None,
    ) -> FetchResult:
        """GET ``url`` with retries; a 304 comes back as ``not_modified`` with empty content.

        Raises :class:`FetchError` (or :class:`RefusedURL`) with a recordable reason.
        """
        check_url(url, self.settings.allowed_private_networks)
        if not self.allowed_by_robots(url):
            raise RefusedURL(url, "disallowed by robots.txt", FailureKind.ROBOTS)
        headers = validators.headers() if validators else {}
        result = self._get(url, headers=headers, max_bytes=max_bytes or self.settings.max_bytes)
        if result.status_code == 304:
            result.not_modified = True
            return result
        if result.status_code != 200:
            raise FetchError(
                url, f"HTTP {result.status_code}", FailureKind.HTTP_STATUS, result.status_code
            )
        return result

    def _get(self, url: str, headers: dict[str, str], max_bytes: int) -> FetchResult:
        """GET with manual redirects (each hop re-checked) and retries."""
        s = self.settings
        current = url
        for _hop in range(s.max_redirects + 1):
            result = self._get_with_retries(current, headers, max_bytes)
            if result.status_code in REDIRECT_STATUSES:
                if not result.location:
                    raise FetchError(
                        url, f"HTTP {result.status_code} without Location", FailureKind.REDIRECTS
                    )
                current = urljoin(current, result.location)
                check_url(current, s.allowed_private_networks)
                continue
            result.url = url
            result.final_url = current
            return result
        raise FetchError(
            url, f"too many redirects (more than {s.max_redirects})", FailureKind.REDIRECTS
        )

    def _get_with_retries(self, url: str, headers: dict[str, str], max_bytes: int) -> FetchResult:
        s = self.settings
        state = self._host(url)

        def attempt(number: int) -> FetchResult:
            try:
                with state.semaphore:
                    if s.requests_per_second:
                        delay = state.reserve_slot(1.0 / s.requests_per_second)
                        if delay > 0:
                            self._sleep(delay)
                    result = self._get_once(url, headers, max_bytes)
            except httpx.TimeoutException:
                raise Transient("timed out", FailureKind.TIMEOUT) from None
            except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
                raise Transient(
                    f"connection broken: {type(exc).__name__}", FailureKind.CONNECTION
                ) from None
            except httpx.ConnectError as exc:
                if isinstance(exc.__cause__, AddressRefused):  # the connect-time address guard
                    raise RefusedURL(url, str(exc.__cause__)) from None
                raise Transient(
                    "connection refused or unreachable", FailureKind.CONNECTION
                ) from None
            result.attempts = number
            if result.status_code in RETRY_STATUSES:
                raise Transient(
                    f"HTTP {result.status_code}",
                    FailureKind.HTTP_STATUS,
                    wait=retry_after_seconds(result.retry_after),
                    status_code=result.status_code,
                )
            return result

        backoff = Backoff(max_retries=s.max_retries, base=s.backoff_base, maximum=s.backoff_max)
        try:
            return call_with_retries(attempt, backoff, sleep=self._sleep)
        except RetriesExhausted as exc:
            raise FetchError(url, str(exc), exc.last.kind, exc.last.status_code) from None

    def _get_once(self, url: str, headers: dict[str, str], max_bytes: int) -> FetchResult:
        with self._client.stream("GET", url, headers=headers) as response:
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise FetchError(
                    url,
                    f"response too large ({declared} bytes > {max_bytes})",
                    FailureKind.TOO_LARGE,
                )
            chunks: list[bytes] = []
            size = 0
            if response.status_code == 200:
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        raise FetchError(
                            url, f"response too large (> {max_bytes} bytes)", FailureKind.TOO_LARGE
                        )
                    chunks.append(chunk)
            return FetchResult(
                url=url,
                final_url=url,
                status_code=response.status_code,
                content=b"".join(chunks),
                content_type=response.headers.get("Content-Type"),
                validators=Validators(
                    etag=response.headers.get("ETag"),
                    last_modified=response.headers.get("Last-Modified"),
                ),
                location=response.headers.get("Location"),
                retry_after=response.headers.get("Retry-After"),
                headers={k.lower(): v for k, v in response.headers.items()},
            )
