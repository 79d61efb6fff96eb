"""The delivery service: an ASGI app (Starlette) answering Cloudinary-style URLs.

``GET|HEAD /image/upload/[s--SIG--/]<transformations>/[v123/]<public_id>.<ext>``

- Sources are the masters the `self` CDN backend holds (a folder or a bucket),
  by public id; nothing else is reachable (originals stay in the private image
  store, and keys are validated before any read).
- Signed URLs: with ``strict`` every transformation must carry a valid
  ``s--...--`` (named transformations and untransformed masters excepted); a
  signature that is present but wrong is refused whatever ``strict`` says.
- HTTP: the format's Content-Type, a strong ETag over (source bytes,
  transformation, format, quality) and 304 on If-None-Match, HEAD,
  ``Cache-Control: public, max-age=31536000, immutable`` on versioned URLs,
  ``Vary: Accept`` when ``f_auto`` chose the format. Errors are one line of
  text: 400 (the reason), 403 (signature), 404 (no such image).
- Work: rendering runs in threads, at most ``max_concurrent_renders`` at once,
  so memory stays bounded whatever the request rate; no result is stored
  unless a :class:`DiskCache` is given (a CDN in front caches).
- Logs: one line per request in the common log format; the secret is never
  logged (it is only ever an argument to the signature check).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import anyio
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from image_assets.cdn.local import StoredCdn
from image_assets.delivery.cache import DiskCache
from image_assets.delivery.grammar import (
    DEFAULT_LIMITS,
    Component,
    GrammarError,
    Limits,
    parse_path,
)
from image_assets.delivery.render import (
    RenderRefused,
    expand,
    output_format,
    output_quality,
    render,
)
from image_assets.delivery.signing import signature_valid
from image_assets.formats import mime_type
from image_assets.imaging.decode import DecodeLimits, ImageRefused

access_log = logging.getLogger("image_assets.delivery.access")
IMMUTABLE = "public, max-age=31536000, immutable"
UNVERSIONED = "public, max-age=3600"


@dataclass(frozen=True)
class DeliverySettings:
    source: StoredCdn
    secret: str | None = None
    signature_algorithm: Literal["sha1", "sha256"] = "sha1"
    strict: bool = False
    named: Mapping[str, Component] = field(default_factory=dict)
    limits: Limits = DEFAULT_LIMITS
    decode_limits: DecodeLimits = field(default_factory=DecodeLimits)
    max_concurrent_renders: int = 4
    cache: DiskCache | None = None

    def __repr__(self) -> str:  # the secret stays out of every repr and log
        return f"DeliverySettings(source={self.source!r}, strict={self.strict})"


def create_app(settings: DeliverySettings) -> ASGIApp:
    renders = anyio.CapacityLimiter(max(1, settings.max_concurrent_renders))

    async def image(request: Request) -> Response:
        raw = request.scope.get("raw_path") or request.url.path.encode()
        path = raw.decode("latin-1").split("?", 1)[0]
        try:
            wanted = parse_path(path, settings.limits)
            chain = expand(wanted.components, settings.named)
        except GrammarError as exc:
            return _text(400, str(exc))
        must_sign = settings.strict and wanted.components and not wanted.named_only
        if (wanted.signature is not None or must_sign) and not signature_valid(
            wanted.signature,
            wanted.signed_text,
            settings.secret or "",
            settings.signature_algorithm,
        ):
            return _text(403, "invalid or missing URL signature")
        try:
            asset, data = await run_in_threadpool(settings.source.read, wanted.public_id)
        except KeyError:
            return _text(404, f"no image {wanted.public_id}")
        fmt, negotiated = output_format(
            chain, wanted.extension, request.headers.get("accept", ""), asset.format
        )
        etag = (
            '"'
            + hashlib.sha256(
                f"{asset.sha256}|{'/'.join(c.text() for c in chain)}|{fmt}|"
                f"{output_quality(chain)}".encode()
            ).hexdigest()[:32]
            + '"'
        )
        headers = {
            "ETag": etag,
            "Cache-Control": IMMUTABLE if wanted.version is not None else UNVERSIONED,
        }
        if negotiated:
            headers["Vary"] = "Accept"
        if etag in _etags(request.headers.get("if-none-match", "")):
            return Response(status_code=304, headers=headers)
        body = settings.cache.get(etag) if settings.cache else None
        if body is None and not chain and fmt == asset.format:
            body = data  # the master itself: its stored bytes, not a re-encode
        if body is None:
            try:
                async with renders:
                    rendered = await run_in_threadpool(
                        render,
                        data,
                        chain,
                        fmt,
                        limits=settings.limits,
                        decode_limits=settings.decode_limits,
                        overlay_source=lambda public_id: settings.source.read(public_id)[1],
                    )
            except (RenderRefused, ImageRefused) as exc:
                return _text(400, str(exc))
            body = rendered.data
            if settings.cache:
                settings.cache.put(etag, body)
        return Response(body, media_type=mime_type(fmt), headers=headers)

    async def health(request: Request) -> Response:
        return _text(200, "ok")

    app = Starlette(
        routes=[
            Route("/image/upload/{rest:path}", image, methods=["GET", "HEAD"]),
            Route("/healthz", health, methods=["GET", "HEAD"]),
        ]
    )
    return CommonLog(app)


def _text(status: int, message: str) -> PlainTextResponse:
    return PlainTextResponse(message.splitlines()[0] + "\n", status_code=status)


def _etags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}


class CommonLog:
    """One line per request in the common log format (host ident user [time] "request"
    status bytes)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status, size = 500, 0

        async def record(message: Message) -> None:
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                size += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            client = (scope.get("client") or ("-", 0))[0]
            target = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
            when = time.strftime("%d/%b/%Y:%H:%M:%S %z")
            access_log.info(
                '%s - - [%s] "%s %s HTTP/%s" %d %s',
                client,
                when,
                scope["method"],
                target,
                scope.get("http_version", "1.1"),
                status,
                size if size else "-",
            )
