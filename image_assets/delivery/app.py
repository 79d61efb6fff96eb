"""The delivery service: an ASGI app (Starlette) answering Cloudinary-style URLs.

``GET|HEAD /image/upload/[s--SIG--/]<transformations>/[v123/]<public_id>.<ext>``

- Sources are the masters the `self` CDN backend holds (a folder or a bucket),
  by public id, and activated uploads (``uploads/<name>``); nothing else is
  reachable (originals stay in the private image store, unactivated uploads in
  the private area, and keys are validated before any read).
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
- Direct uploads (``POST /uploads``, ``PUT /uploads/incoming/<name>``): see
  ``delivery/direct_upload.py``.
- Logs: one line per request in the common log format; the secret is never
  logged (it is only ever an argument to the signature check).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import anyio
from PIL import Image
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from image_assets.cdn.local import StoredCdn
from image_assets.delivery.cache import DiskCache
from image_assets.delivery.catalog_view import CatalogReader, activated_uploads
from image_assets.delivery.direct_upload import (
    GRANT_SECONDS,
    IDLE_SECONDS,
    MAX_BYTES,
    GrantRefused,
    check_put,
    check_request,
    put_grant,
    s3_grant,
)
from image_assets.delivery.gallery import index_page, product_page
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
from image_assets.delivery.sources import Sources
from image_assets.formats import mime_type
from image_assets.imaging.config import RenditionSpec
from image_assets.imaging.decode import DecodeLimits, ImageRefused, probe
from image_assets.imaging.encoding import DEFAULT_WEBP_EFFORT
from image_assets.storage import BlobStore

access_log = logging.getLogger("image_assets.delivery.access")
IMMUTABLE = "public, max-age=31536000, immutable"
UNVERSIONED = "public, max-age=3600"


@dataclass(frozen=True)
class DirectUploadSettings:
    """Direct uploads: clients authenticate with ``token``; ``key`` signs PUT grants and
    never leaves the server. Exactly one of ``incoming_dir`` (local) and ``s3``
    (client, bucket, incoming prefix) says where files go."""

    token: str
    key: bytes
    base_url: str
    incoming_dir: Path | None = None
    s3: tuple[Any, str, str] | None = None
    max_bytes: int = MAX_BYTES
    seconds: int = GRANT_SECONDS
    idle_seconds: float = IDLE_SECONDS

    def __repr__(self) -> str:
        return f"DirectUploadSettings(incoming_dir={self.incoming_dir}, s3={bool(self.s3)})"


@dataclass(frozen=True)
class DeliverySettings:
    source: StoredCdn
    activated: BlobStore | None = None  # the public area of activated uploads
    secret: str | None = None
    signature_algorithm: Literal["sha1", "sha256"] = "sha1"
    strict: bool = False
    named: Mapping[str, Component] = field(default_factory=dict)
    limits: Limits = DEFAULT_LIMITS
    decode_limits: DecodeLimits = field(default_factory=DecodeLimits)
    max_concurrent_renders: int = 4
    webp_effort: int = DEFAULT_WEBP_EFFORT
    cache: DiskCache | None = None
    uploads: DirectUploadSettings | None = None
    catalog: CatalogReader | None = None  # the gallery's data (clean_kits, image_metadata)
    rendition_specs: tuple[RenditionSpec, ...] = ()  # the gallery's srcset candidates

    def __repr__(self) -> str:  # the secret stays out of every repr and log
        return f"DeliverySettings(source={self.source!r}, strict={self.strict})"


def create_app(settings: DeliverySettings) -> ASGIApp:
    renders = anyio.CapacityLimiter(max(1, settings.max_concurrent_renders))
    sources = Sources(settings.source, settings.activated)

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
            source = await run_in_threadpool(sources.read, wanted.public_id)
        except KeyError:
            return _text(404, f"no image {wanted.public_id}")
        except Exception as exc:  # the store itself failed (S3 5xx, a broken mount)
            access_log.warning("store read failed: %s", type(exc).__name__)
            return _text(503, "the image store is unavailable; try again", {"Retry-After": "5"})
        data = source.data
        fmt, negotiated = output_format(
            chain, wanted.extension, request.headers.get("accept", ""), source.format
        )
        # A strong ETag names the bytes: everything that changes them is in it.
        effort = settings.webp_effort if fmt == "webp" else ""
        etag = (
            '"'
            + hashlib.sha256(
                f"{source.sha256}|{'/'.join(c.text() for c in chain)}|{fmt}|"
                f"{output_quality(chain)}|{effort}".encode()
            ).hexdigest()[:32]
            + '"'
        )
        headers = {
            "ETag": etag,
            "Cache-Control": IMMUTABLE if wanted.version is not None else UNVERSIONED,
        }
        if negotiated:
            headers["Vary"] = "Accept"
        matches = _etags(request.headers.get("if-none-match", ""))
        if etag in matches or "*" in matches:  # "*": any current version of it
            return Response(status_code=304, headers=headers)
        body = settings.cache.get(etag) if settings.cache else None
        if body is None and not chain and fmt == source.format:
            # the master itself, its stored bytes, once the same probe as any render
            # says they are the image they claim to be (a tampered store must not hand
            # out a page as image/jpeg)
            try:
                probed = await run_in_threadpool(probe, data, settings.decode_limits)
            except ImageRefused as exc:
                return _text(400, str(exc))
            if probed.format.lower() != source.format:
                return _text(400, f"stored image is {probed.format}, not {source.format}")
            body = data
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
                        overlay_source=lambda public_id: sources.read(public_id).data,
                        webp_effort=settings.webp_effort,
                    )
            except (RenderRefused, ImageRefused) as exc:
                return _text(400, str(exc))
            except (ArithmeticError, Image.DecompressionBombError) as exc:  # a geometry the
                # grammar let through but no image can have: the request's fault, not ours
                access_log.warning("render refused: %s: %s", type(exc).__name__, exc)
                return _text(400, "these transformations cannot be rendered")
            body = rendered.data
            if settings.cache:
                settings.cache.put(etag, body)
        return Response(body, media_type=mime_type(fmt), headers=headers)

    async def health(request: Request) -> Response:
        return _text(200, "ok")

    async def grant(request: Request) -> Response:
        uploads = settings.uploads
        if uploads is None:
            return _text(404, "direct uploads are not enabled (IMAGE_ASSETS_UPLOAD_TOKEN)")
        offered = request.headers.get("authorization", "").removeprefix("Bearer ").encode()
        if not hmac.compare_digest(offered, uploads.token.encode()):
            return _text(401, "a valid upload token is required (Authorization: Bearer ...)")
        declared = request.headers.get("content-length", "")
        if declared and (not declared.isdigit() or int(declared) > GRANT_REQUEST_BYTES):
            return _text(413, f"a grant request is JSON of at most {GRANT_REQUEST_BYTES} bytes")
        try:
            raw_body = b""
            async for chunk in request.stream():
                raw_body += chunk
                if len(raw_body) > GRANT_REQUEST_BYTES:
                    return _text(
                        413, f"a grant request is JSON of at most {GRANT_REQUEST_BYTES} bytes"
                    )
            asked = json.loads(raw_body)
            if not isinstance(asked, dict):
                raise TypeError("not an object")
            name = check_request(
                str(asked["filename"]),
                str(asked["content_type"]),
                asked["size"],
                uploads.max_bytes,
            )
        except GrantRefused as exc:
            return _text(exc.status, str(exc))
        except (ValueError, KeyError, TypeError, RecursionError):
            return _text(400, "send JSON with filename, content_type and size")
        if uploads.s3 is not None:
            client, bucket, prefix = uploads.s3
            given = s3_grant(
                client,
                bucket,
                prefix,
                name,
                asked["content_type"],
                uploads.max_bytes,
                uploads.seconds,
            )
        else:
            given = put_grant(
                uploads.key,
                uploads.base_url,
                name,
                asked["content_type"],
                uploads.max_bytes,
                uploads.seconds,
            )
        return JSONResponse(given.as_json(), status_code=201)

    async def put(request: Request) -> Response:
        uploads = settings.uploads
        if uploads is None or uploads.incoming_dir is None:
            return _text(404, "signed PUT uploads are not enabled here")
        name = request.path_params["name"]
        if not UPLOAD_NAME.match(name):
            return _text(400, "not an upload name")
        try:
            limit = check_put(
                uploads.key,
                name,
                dict(request.query_params),
                request.headers.get("content-type", ""),
            )
        except GrantRefused as exc:
            return _text(exc.status, str(exc))
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            return _text(413, f"over the {limit}-byte limit of this upload")
        try:
            stored = await _receive(
                request, uploads.incoming_dir, name, limit, uploads.idle_seconds
            )
        except GrantRefused as exc:
            return _text(exc.status, str(exc))
        return JSONResponse({"name": name, "bytes": stored}, status_code=201)

    uploads_seen: dict[str, Any] = {"at": 0.0, "ids": []}
    uploads_lock = threading.Lock()

    def newest_uploads() -> list[str]:
        """The activated uploads, listed at most every 10 s (a bucket listing per page
        view would cost more than the page)."""
        with uploads_lock:
            if time.monotonic() - uploads_seen["at"] > 10:
                uploads_seen["ids"] = activated_uploads(settings.activated)
                uploads_seen["at"] = time.monotonic()
            return list(uploads_seen["ids"])

    async def gallery(request: Request) -> Response:
        if settings.catalog is None:
            return _text(404, "no catalog configured")
        reader = settings.catalog

        def build() -> str:
            return index_page(
                reader.get(),
                list(settings.rendition_specs),
                query=request.query_params.get("q", "")[:200],
                manufacturer=request.query_params.get("m", "")[:200],
                uploads=newest_uploads(),
            )

        return HTMLResponse(await run_in_threadpool(build), headers={"Cache-Control": "no-cache"})

    async def product(request: Request) -> Response:
        if settings.catalog is None:
            return _text(404, "no catalog configured")
        reader = settings.catalog
        manufacturer = request.path_params["manufacturer"]
        product_id = request.path_params["product_id"]
        found = (await run_in_threadpool(reader.get)).find(manufacturer, product_id)
        if found is None:
            return _text(404, f"no product {manufacturer}/{product_id}")
        return HTMLResponse(
            product_page(found, list(settings.rendition_specs)),
            headers={"Cache-Control": "no-cache"},
        )

    async def home(request: Request) -> Response:
        return RedirectResponse("/gallery", status_code=307)

    app = Starlette(
        routes=[
            Route("/", home, methods=["GET", "HEAD"]),
            Route("/gallery", gallery, methods=["GET", "HEAD"]),
            Route("/gallery/{manufacturer}/{product_id:path}", product, methods=["GET", "HEAD"]),
            Route("/image/upload/{rest:path}", image, methods=["GET", "HEAD"]),
            Route("/healthz", health, methods=["GET", "HEAD"]),
            Route("/uploads", grant, methods=["POST"]),
            Route("/uploads/incoming/{name}", put, methods=["PUT"]),
        ],
        exception_handlers={404: _not_routed, 405: _not_routed},
    )
    return CommonLog(app)


GRANT_REQUEST_BYTES = 16 * 1024
UPLOAD_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,80}\.(jpg|png|webp|avif|gif|tif|bmp)$")


async def _receive(
    request: Request, incoming: Path, name: str, limit: int, idle_seconds: float
) -> int:
    """Stream the body into a hidden partial file (the sensor ignores dot-files), never
    past ``limit`` nor through ``idle_seconds`` of silence, then give it its name
    without replacing anything."""
    incoming.mkdir(parents=True, exist_ok=True)
    partial = incoming / f".upload-{secrets.token_hex(8)}.part"
    size = 0
    body = request.stream()
    try:
        with partial.open("xb") as out:
            while True:
                with anyio.move_on_after(idle_seconds) as waited:
                    try:
                        chunk = await body.__anext__()
                    except StopAsyncIteration:
                        break
                if waited.cancelled_caught:
                    raise GrantRefused(
                        f"no bytes for {idle_seconds:g} s after {size}: upload abandoned", 408
                    )
                size += len(chunk)
                if size > limit:
                    raise GrantRefused(f"over the {limit}-byte limit of this upload", 413)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if size == 0:
            raise GrantRefused("empty upload")
        try:
            os.link(partial, incoming / name)  # fails if the name exists: nothing replaced
        except FileExistsError:
            raise GrantRefused(f"{name} was uploaded already", 409) from None
        return size
    finally:
        partial.unlink(missing_ok=True)


MAX_ERROR_CHARS = 300


def _text(status: int, message: str, headers: Mapping[str, str] | None = None) -> PlainTextResponse:
    """One line of text, at most :data:`MAX_ERROR_CHARS` (a hostile id is not echoed whole)."""
    line = (message.splitlines() or [""])[0]
    if len(line) > MAX_ERROR_CHARS:
        line = line[: MAX_ERROR_CHARS - 1] + "…"
    return PlainTextResponse(line + "\n", status_code=status, headers=dict(headers or {}))


async def _not_routed(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 (no route matched), as one line like every other error."""
    status = getattr(exc, "status_code", 404)
    headers = getattr(exc, "headers", None)  # a 405 keeps its Allow
    return _text(status, "no such page" if status == 404 else "method not allowed", headers)


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
                # every answer is what its Content-Type says: browsers must not sniff
                message = {
                    **message,
                    "headers": [
                        *message.get("headers", []),
                        (b"x-content-type-options", b"nosniff"),
                    ],
                }
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
