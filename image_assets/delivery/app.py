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
- Work: one line of requests per process (``admission``): renders run in
  threads, ``max_concurrent_renders`` at once (one per core), the rest wait in
  arrival order up to ``max_waiting_renders``, past which the answer is 503 with
  ``Retry-After``: memory stays bounded whatever the request rate. No result is
  stored unless a :class:`DiskCache` is given (a CDN in front caches).
- Layout: the routes live in ``routes/`` (images, uploads, gallery); this module
  only assembles them.
- Direct uploads (``POST /uploads``, ``PUT /uploads/incoming/<name>``): see
  ``delivery/direct_upload.py``.
- Logs: one line per request in the common log format; the secret is never
  logged (it is only ever an argument to the signature check).
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from image_assets.delivery.responses import CommonLog, access_log, text
from image_assets.delivery.routes.gallery import gallery_routes
from image_assets.delivery.routes.images import image_routes
from image_assets.delivery.routes.uploads import upload_routes
from image_assets.delivery.settings import DeliverySettings, DirectUploadSettings
from image_assets.delivery.sources import Sources

__all__ = ["CommonLog", "DeliverySettings", "DirectUploadSettings", "access_log", "create_app"]


def create_app(settings: DeliverySettings) -> ASGIApp:
    """The routes of each area, assembled; every answer logged and marked nosniff."""

    async def health(request: Request) -> Response:
        return text(200, "ok")

    app = Starlette(
        routes=[
            *gallery_routes(settings),
            *image_routes(settings, Sources(settings.source, settings.activated)),
            Route("/healthz", health, methods=["GET", "HEAD"]),
            *upload_routes(settings),
        ],
        exception_handlers={404: _not_routed, 405: _not_routed},
    )
    return CommonLog(app)


async def _not_routed(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 (no route matched), as one line like every other error."""
    status = getattr(exc, "status_code", 404)
    headers = getattr(exc, "headers", None)  # a 405 keeps its Allow
    return text(status, "no such page" if status == 404 else "method not allowed", headers)
