"""``GET|HEAD /image/upload/...``: parse, check the signature, take a place in the
render line, read the source, answer 304, a cached body, the probed master or a
render (``render.py``)."""

from __future__ import annotations

import functools
import hashlib

from PIL import Image
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from image_assets.delivery.admission import LineFull, RenderLine
from image_assets.delivery.grammar import Component, DeliveryRequest, GrammarError, parse_path
from image_assets.delivery.render import (
    AVIF_SPEED,
    RenderRefused,
    expand,
    output_format,
    output_quality,
    render,
)
from image_assets.delivery.responses import access_log, etags, text
from image_assets.delivery.settings import DeliverySettings
from image_assets.delivery.signing import signature_valid
from image_assets.delivery.sources import UPLOADS, Sources
from image_assets.formats import mime_type
from image_assets.imaging.decode import ImageRefused, probe
from image_assets.machine import usable_cores

IMMUTABLE = "public, max-age=31536000, immutable"
UNVERSIONED = "public, max-age=3600"
# A user's upload can be erased on request (DELETE /uploads/{id}); copies a CDN or a
# browser keeps of its renditions outlive that by at most this long.
UPLOAD_CACHE = "public, max-age=86400"


def image_routes(settings: DeliverySettings, sources: Sources) -> list[Route]:
    line = RenderLine(max(1, settings.max_concurrent_renders), settings.max_waiting_renders)
    cores = usable_cores()

    async def image(request: Request) -> Response:
        raw = request.scope.get("raw_path") or request.url.path.encode()
        path = raw.decode("latin-1").split("?", 1)[0]
        try:
            wanted = parse_path(path, settings.limits)
            chain = expand(wanted.components, settings.named)
        except GrammarError as exc:
            return text(400, str(exc))
        must_sign = settings.strict and wanted.components and not wanted.named_only
        if (wanted.signature is not None or must_sign) and not signature_valid(
            wanted.signature,
            wanted.signed_text,
            settings.secret or "",
            settings.signature_algorithm,
        ):
            return text(403, "invalid or missing URL signature")
        try:
            async with line.place():
                return await answer(request, wanted, chain)
        except LineFull as full:
            return text(
                503,
                "every render slot is busy and the line is full; try again",
                {"Retry-After": str(full.retry_after)},
            )

    async def answer(
        request: Request, wanted: DeliveryRequest, chain: tuple[Component, ...]
    ) -> Response:
        """The answer to a request that has its place in line (``admission``)."""
        try:
            source = await run_in_threadpool(sources.read, wanted.public_id)
        except KeyError:
            return text(404, f"no image {wanted.public_id}")
        except Exception as exc:  # the store itself failed (S3 5xx, a broken mount)
            access_log.warning("store read failed: %s", type(exc).__name__)
            return text(503, "the image store is unavailable; try again", {"Retry-After": "5"})
        data = source.data
        fmt, negotiated = output_format(
            chain, wanted.extension, request.headers.get("accept", ""), source.format
        )
        # A strong ETag names the bytes: everything that changes them is in it.
        effort = {"webp": settings.webp_effort, "avif": AVIF_SPEED}.get(fmt, "")
        etag = (
            '"'
            + hashlib.sha256(
                f"{source.sha256}|{'/'.join(c.text() for c in chain)}|{fmt}|"
                f"{output_quality(chain)}|{effort}".encode()
            ).hexdigest()[:32]
            + '"'
        )
        if wanted.public_id.startswith(UPLOADS):
            cache_control = UPLOAD_CACHE  # an upload may be erased: no year-long copies
        else:
            cache_control = IMMUTABLE if wanted.version is not None else UNVERSIONED
        headers = {"ETag": etag, "Cache-Control": cache_control}
        if negotiated:
            headers["Vary"] = "Accept"
        matches = etags(request.headers.get("if-none-match", ""))
        if etag in matches or "*" in matches:  # "*": any current version of it
            return Response(status_code=304, headers=headers)
        body = settings.cache.get(wanted.public_id, etag) if settings.cache else None
        if body is None and not chain and fmt == source.format:
            # the master itself, its stored bytes, once the same probe as any render
            # says they are the image they claim to be (a tampered store must not hand
            # out a page as image/jpeg)
            try:
                probed = await run_in_threadpool(probe, data, settings.decode_limits)
            except ImageRefused as exc:
                return text(400, str(exc))
            if probed.format.lower() != source.format:
                return text(400, f"stored image is {probed.format}, not {source.format}")
            body = data
        if body is None:
            try:
                async with line.slot():
                    # a lone render gets every core for libvips; under load, one each
                    threads = cores if line.alone else 1
                    rendered = await run_in_threadpool(
                        functools.partial(
                            render,
                            data,
                            chain,
                            fmt,
                            limits=settings.limits,
                            decode_limits=settings.decode_limits,
                            overlay_source=lambda public_id: sources.read(public_id).data,
                            webp_effort=settings.webp_effort,
                            threads=threads,
                        )
                    )
            except (RenderRefused, ImageRefused) as exc:
                return text(400, str(exc))
            except (ArithmeticError, Image.DecompressionBombError) as exc:  # a geometry the
                # grammar let through but no image can have: the request's fault, not ours
                access_log.warning("render refused: %s: %s", type(exc).__name__, exc)
                return text(400, "these transformations cannot be rendered")
            body = rendered.data
            if settings.cache:
                settings.cache.put(wanted.public_id, etag, body)
        return Response(body, media_type=mime_type(fmt), headers=headers)

    return [Route("/image/upload/{rest:path}", image, methods=["GET", "HEAD"])]
