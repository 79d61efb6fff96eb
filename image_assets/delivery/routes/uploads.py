"""Direct uploads: ``POST /uploads`` grants a signed PUT (or an S3 POST policy) to a
client holding the upload token; ``PUT /uploads/incoming/<name>`` receives the
body into the incoming area (see ``direct_upload.py``)."""

from __future__ import annotations

import hmac
import json
import os
import re
import secrets
from pathlib import Path
from typing import Any

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from image_assets.delivery.direct_upload import (
    GrantRefused,
    check_put,
    check_request,
    put_grant,
    s3_grant,
)
from image_assets.delivery.responses import text
from image_assets.delivery.settings import DeliverySettings


def upload_routes(settings: DeliverySettings) -> list[Route]:
    async def grant(request: Request) -> Response:
        uploads = settings.uploads
        if uploads is None:
            return text(404, "direct uploads are not enabled (IMAGE_ASSETS_UPLOAD_TOKEN)")
        offered = request.headers.get("authorization", "").removeprefix("Bearer ").encode()
        if not hmac.compare_digest(offered, uploads.token.encode()):
            return text(401, "a valid upload token is required (Authorization: Bearer ...)")
        declared = request.headers.get("content-length", "")
        if declared and (not declared.isdigit() or int(declared) > GRANT_REQUEST_BYTES):
            return text(413, f"a grant request is JSON of at most {GRANT_REQUEST_BYTES} bytes")
        try:
            raw_body = b""
            async for chunk in request.stream():
                raw_body += chunk
                if len(raw_body) > GRANT_REQUEST_BYTES:
                    return text(
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
            return text(exc.status, str(exc))
        except (ValueError, KeyError, TypeError, RecursionError):
            return text(400, "send JSON with filename, content_type and size")
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
            return text(404, "signed PUT uploads are not enabled here")
        name = request.path_params["name"]
        if not UPLOAD_NAME.match(name):
            return text(400, "not an upload name")
        try:
            limit = check_put(
                uploads.key,
                name,
                dict(request.query_params),
                request.headers.get("content-type", ""),
            )
        except GrantRefused as exc:
            return text(exc.status, str(exc))
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            return text(413, f"over the {limit}-byte limit of this upload")
        try:
            stored = await receive(request, uploads.incoming_dir, name, limit, uploads.idle_seconds)
        except GrantRefused as exc:
            return text(exc.status, str(exc))
        return JSONResponse({"name": name, "bytes": stored}, status_code=201)

    stores: list[Any] = []  # made on the first erasure

    async def erase_upload(request: Request) -> Response:
        """Every file of one upload removed (``uploads/lifecycle.erase``), its results
        dropped from the disk cache; the audit row stays, ``deleted``."""
        uploads = settings.uploads
        if uploads is None or settings.upload_stores is None:
            return text(404, "direct uploads are not enabled (IMAGE_ASSETS_UPLOAD_TOKEN)")
        token = settings.admin_token or uploads.token
        offered = request.headers.get("authorization", "").removeprefix("Bearer ").encode()
        if not hmac.compare_digest(offered, token.encode()):
            return text(
                401, "a valid token is required to erase uploads (Authorization: Bearer ...)"
            )
        from image_assets.uploads.lifecycle import UploadError, erase

        if not stores:
            stores.append(settings.upload_stores())
        try:
            done = await run_in_threadpool(erase, stores[0], request.path_params["upload_id"])
        except UploadError as exc:
            status = {"invalid": 400, "unknown": 404, "busy": 409}.get(exc.reason, 400)
            return text(status, str(exc))
        forgotten = 0
        if settings.cache is not None and done.public_id:
            forgotten = settings.cache.forget(done.public_id)
        return JSONResponse(
            {
                "upload_id": done.row.key,
                "status": done.row.status,
                "deleted_at": done.row.deleted_at,
                "already_deleted": done.already,
                "files_removed": len(done.removed),
                "cached_results_removed": forgotten,
            }
        )

    return [
        Route("/uploads", grant, methods=["POST"]),
        Route("/uploads/incoming/{name}", put, methods=["PUT"]),
        Route("/uploads/{upload_id}", erase_upload, methods=["DELETE"]),
    ]


GRANT_REQUEST_BYTES = 16 * 1024
UPLOAD_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,80}\.(jpg|png|webp|avif|gif|tif|bmp)$")


async def receive(
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
