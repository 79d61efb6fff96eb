"""The gallery: ``/`` (to ``/gallery``), ``/gallery`` (search, per manufacturer, the
newest activated uploads) and ``/gallery/<manufacturer>/<product id>``, pages made by
``gallery.py`` from the catalog."""

from __future__ import annotations

import threading
import time
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from image_assets.delivery.catalog_view import activated_uploads
from image_assets.delivery.gallery import index_page, product_page
from image_assets.delivery.responses import text
from image_assets.delivery.settings import DeliverySettings


def gallery_routes(settings: DeliverySettings) -> list[Route]:
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
            return text(404, "no catalog configured")
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
            return text(404, "no catalog configured")
        reader = settings.catalog
        manufacturer = request.path_params["manufacturer"]
        product_id = request.path_params["product_id"]
        found = (await run_in_threadpool(reader.get)).find(manufacturer, product_id)
        if found is None:
            return text(404, f"no product {manufacturer}/{product_id}")
        return HTMLResponse(
            product_page(found, list(settings.rendition_specs)),
            headers={"Cache-Control": "no-cache"},
        )

    async def home(request: Request) -> Response:
        return RedirectResponse("/gallery", status_code=307)

    return [
        Route("/", home, methods=["GET", "HEAD"]),
        Route("/gallery", gallery, methods=["GET", "HEAD"]),
        Route("/gallery/{manufacturer}/{product_id:path}", product, methods=["GET", "HEAD"]),
    ]
