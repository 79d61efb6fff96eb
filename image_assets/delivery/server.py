"""``image-assets serve``: the delivery service on uvicorn, configured from the environment.

uvicorn (with uvloop and httptools, already what ``dagster-webserver`` runs on)
is the server: mature, the ASGI reference, and fast enough that rendering, not
HTTP, is where the time goes; a request spends milliseconds in the server and
tens of milliseconds in decode, resize and encode. Worker processes give the
renders both cores.

Environment (where the data lives: ``image_assets.settings``, read as the Dagster
code location reads it):
- ``IMAGE_ASSETS_PROFILE`` ``local`` (default): masters in ``$IMAGE_ASSETS_DATA_DIR/cdn``;
  ``aws``: in ``IMAGE_ASSETS_CDN_BUCKET`` (``IMAGE_ASSETS_CDN_PREFIX``);
- ``IMAGE_ASSETS_DELIVERY_SECRET``: the URL-signing secret (unset: no signatures), or
  ``IMAGE_ASSETS_DELIVERY_SECRET_FILE``: a file holding it (a mounted secret);
- ``IMAGE_ASSETS_DELIVERY_SIGNATURE_ALGORITHM``: ``sha1`` (default) or ``sha256``;
- ``IMAGE_ASSETS_DELIVERY_STRICT``: ``1`` to require signatures on every
  transformation but named ones (default on in the ``aws`` profile);
- ``IMAGE_ASSETS_DELIVERY_CACHE_DIR`` / ``_CACHE_BYTES``: an optional disk cache;
- ``IMAGE_ASSETS_UPLOAD_TOKEN``: enables direct uploads (``POST /uploads`` with
  ``Authorization: Bearer <token>``; grants are signed with a key derived from the
  delivery secret, which is then required);
- ``IMAGE_ASSETS_UPLOAD_ADMIN_TOKEN``: the token ``DELETE /uploads/{id}`` (erasure)
  takes; unset: the upload token;
- ``IMAGE_ASSETS_UPLOAD_IDLE_SECONDS``: a signed PUT whose body stops arriving for
  this long is abandoned with 408 (default 30; local profile);
- ``IMAGE_ASSETS_RENDITIONS``: the rendition config whose renditions are the
  named transformations (``t_thumb_300``);
- ``IMAGE_ASSETS_DELIVERY_RENDERS``: renders at once per process (default: one per
  core);
- ``IMAGE_ASSETS_DELIVERY_QUEUE``: requests that may wait for a render slot per
  process (default 32 per slot); past them the answer is 503 with ``Retry-After``;
- ``IMAGE_ASSETS_DELIVERY_WORKER_TIMEOUT``: seconds without a heartbeat before the
  supervisor replaces a worker (``supervisor``; default 30);
- ``IMAGE_ASSETS_DELIVERY_WEBP_EFFORT``: libwebp's method, 0 (fastest) to 6
  (smallest); default 4, thumbor's and Pillow's.

``image-assets serve`` itself runs in ``supervisor``, which imports only the
standard library: each worker process (``worker``) builds its app with
``app_from_env``.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Literal

from starlette.types import ASGIApp

from image_assets.cdn.service import SelfCdn
from image_assets.delivery.app import (
    DeliverySettings,
    DirectUploadSettings,
    access_log,
    create_app,
)
from image_assets.delivery.cache import DiskCache
from image_assets.delivery.catalog_view import CatalogReader
from image_assets.delivery.direct_upload import IDLE_SECONDS
from image_assets.delivery.grammar import Component
from image_assets.delivery.worker import STARTUP_FAILURE
from image_assets.imaging.config import (
    RenditionConfig,
    load_rendition_config,
)
from image_assets.imaging.encoding import DEFAULT_WEBP_EFFORT
from image_assets.machine import usable_cores
from image_assets.settings import INCOMING, PUBLIC_UPLOADS, PlatformSettings
from image_assets.storage import BlobStore, LocalBlobStore

DEFAULT_PORT = 8090


def named_transformations(config: RenditionConfig) -> dict[str, Component]:
    """Every configured rendition as a named transformation (its box, crop and quality)."""
    return {
        spec.name: Component(
            width=spec.width,
            height=spec.height,
            crop=spec.crop,
            gravity="auto" if spec.gravity == "entropy" else None,
            quality=str(spec.formats[0].quality),
        )
        for spec in config.renditions
    }


def source_store(platform: PlatformSettings) -> BlobStore:
    """The masters the `self` CDN backend published (``settings``: the same place the
    Dagster code location writes them)."""
    if platform.profile == "aws":
        import boto3

        from image_assets.storage.s3 import S3BlobStore

        # a factory: the store makes its client when first used (and again in a child)
        return S3BlobStore(
            functools.partial(boto3.client, "s3"), platform.cdn_bucket, platform.cdn_prefix
        )
    return LocalBlobStore(platform.cdn_dir)


def activated_store(platform: PlatformSettings) -> BlobStore:
    """The public area of activated uploads (as the uploads resource lays it out)."""
    if platform.profile == "aws":
        import boto3

        from image_assets.storage.s3 import S3BlobStore

        return S3BlobStore(
            functools.partial(boto3.client, "s3"), platform.cdn_bucket, PUBLIC_UPLOADS
        )
    return LocalBlobStore(platform.public_uploads_dir)


def _upload_stores(platform: PlatformSettings):
    """The lifecycle's stores: imported when an erasure first asks (the lifecycle brings
    the renditions pipeline, which serving images does not need)."""
    from image_assets.uploads.stores import upload_stores

    return upload_stores(platform)


def default_renders() -> int:
    """Renders at once per process: one per core, whatever the number of processes.

    Rendering is CPU-bound and releases the GIL (libvips, libwebp, Pillow), so one
    process keeps every core busy from one line of requests (``admission``). With
    several worker processes each still gets a slot per core: a process holds the
    connections the kernel gave it (a keep-alive client stays with one), and with
    fewer slots than cores it would leave a core idle while its own line waits and
    the other process has nothing to do (measured: 71% busy at 8 keep-alive
    connections with 2 processes of one slot each).
    """
    return usable_cores()


WAITING_PER_SLOT = 32  # a line of 32 renders per core is about 5 s of work at 1600 px


def _positive_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{name} must be a whole number of at least 1, not {raw!r}")
    return int(raw)


def _whole(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit():
        raise ValueError(f"{name} must be a whole number, not {raw!r}")
    return int(raw)


def _webp_effort() -> int:
    raw = os.environ.get("IMAGE_ASSETS_DELIVERY_WEBP_EFFORT") or str(DEFAULT_WEBP_EFFORT)
    if raw not in {str(n) for n in range(7)}:
        raise ValueError(f"IMAGE_ASSETS_DELIVERY_WEBP_EFFORT must be 0 to 6, not {raw!r}")
    return int(raw)


def settings_from_env(base_url: str) -> DeliverySettings:
    platform = PlatformSettings.from_env()
    aws = platform.profile == "aws"
    secret = os.environ.get("IMAGE_ASSETS_DELIVERY_SECRET") or None
    secret_file = os.environ.get("IMAGE_ASSETS_DELIVERY_SECRET_FILE")
    if secret_file:  # a mounted secret (Kubernetes, Docker secrets) rather than the env
        secret = Path(secret_file).read_text(encoding="utf-8").strip() or None
    algorithm = os.environ.get("IMAGE_ASSETS_DELIVERY_SIGNATURE_ALGORITHM", "sha1")
    if algorithm not in ("sha1", "sha256"):
        raise ValueError(
            f"IMAGE_ASSETS_DELIVERY_SIGNATURE_ALGORITHM must be sha1 or sha256, not {algorithm!r}"
        )
    signing: Literal["sha1", "sha256"] = "sha256" if algorithm == "sha256" else "sha1"
    strict = os.environ.get("IMAGE_ASSETS_DELIVERY_STRICT", "1" if aws else "0") == "1"
    if strict and not secret:
        raise ValueError("IMAGE_ASSETS_DELIVERY_STRICT needs IMAGE_ASSETS_DELIVERY_SECRET")
    cache_dir = os.environ.get("IMAGE_ASSETS_DELIVERY_CACHE_DIR")
    cache = (
        DiskCache(cache_dir, int(os.environ.get("IMAGE_ASSETS_DELIVERY_CACHE_BYTES", 1 << 30)))
        if cache_dir
        else None
    )
    uploads = None
    token = os.environ.get("IMAGE_ASSETS_UPLOAD_TOKEN")
    if token:
        if not secret:
            raise ValueError("IMAGE_ASSETS_UPLOAD_TOKEN needs IMAGE_ASSETS_DELIVERY_SECRET")
        signing_key = hashlib.sha256(b"direct-uploads\n" + secret.encode()).digest()
        if aws:
            import boto3
            from botocore.config import Config

            uploads = DirectUploadSettings(
                token=token,
                key=signing_key,
                base_url=base_url,
                s3=(  # SigV4 policies: boto3 signs POST policies with SigV2 unless told
                    boto3.client("s3", config=Config(signature_version="s3v4")),
                    platform.uploads_bucket,
                    INCOMING,
                ),
            )
        else:
            uploads = DirectUploadSettings(
                token=token,
                key=signing_key,
                base_url=base_url,
                incoming_dir=platform.incoming_dir,
                idle_seconds=_positive_int("IMAGE_ASSETS_UPLOAD_IDLE_SECONDS", IDLE_SECONDS),
            )
    config = load_rendition_config()
    renders = _positive_int("IMAGE_ASSETS_DELIVERY_RENDERS", default_renders())
    return DeliverySettings(
        catalog=CatalogReader(platform.catalog_path),
        rendition_specs=tuple(config.renditions),
        uploads=uploads,
        activated=activated_store(platform),
        source=SelfCdn(
            source_store(platform), base_url, secret=secret, signature_algorithm=signing
        ),
        secret=secret,
        signature_algorithm=signing,
        strict=strict,
        named=named_transformations(config),
        max_concurrent_renders=renders,
        max_waiting_renders=_whole("IMAGE_ASSETS_DELIVERY_QUEUE", WAITING_PER_SLOT * renders),
        upload_stores=functools.partial(_upload_stores, platform) if uploads else None,
        admin_token=os.environ.get("IMAGE_ASSETS_UPLOAD_ADMIN_TOKEN") or None,
        webp_effort=_webp_effort(),
        cache=cache,
    )


_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter (malloc.h)


def return_image_buffers_to_the_system() -> bool:
    """Serve every allocation of 1 MiB or more from its own mapping (glibc only).

    A render holds tens of megabytes of pixels for tens of milliseconds. glibc's
    default raises its mmap threshold after the first such buffer is freed, so
    later ones come from the heap, which keeps their pages after they are freed:
    each worker then sits on about 20 MB more than the render it is doing
    (measured: 279 MB against 258 MB for two workers under load, for about 4%
    fewer requests per second, the cost of mapping fresh pages). An explicit
    ``MALLOC_MMAP_THRESHOLD_`` in the environment wins; elsewhere than glibc this
    does nothing.
    """
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    try:
        libc = ctypes.CDLL(None)
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, 1024 * 1024))
    except (OSError, AttributeError):
        return False


def app_from_env() -> ASGIApp:
    """The app, configured from the environment; ``ValueError`` (one line) when a
    setting is wrong. ``make demo`` and ``make ui`` run it in their own process and
    go on without it; ``serve``'s workers stop (``worker_app``)."""
    if not access_log.handlers:  # one line per request on stdout, whatever else logs
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        access_log.addHandler(handler)
        access_log.setLevel(logging.INFO)
        access_log.propagate = False
    return create_app(settings_from_env(PlatformSettings.from_env().delivery_url))


def worker_app() -> ASGIApp:
    """The app of one ``image-assets serve`` worker process (uvicorn's factory).

    A process of its own, so its allocator can be set for images (the service inside
    ``make demo`` shares its process and leaves the allocator alone). A configuration
    error ends the process with one line on stderr and uvicorn's startup-failure
    code, so the supervisor stops instead of restarting the worker in a loop.
    """
    return_image_buffers_to_the_system()
    try:
        return app_from_env()
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(STARTUP_FAILURE) from None


class BackgroundDelivery:
    """The service in a thread of this process (``make demo`` and ``make ui``): the port
    is bound before it returns, so a busy port is a clear error, not a silent miss."""

    def __init__(self, host: str = "127.0.0.1", port: int = DEFAULT_PORT):
        import uvicorn

        self.host, self.port = host, port
        self.base_url = f"http://{host}:{port}"
        os.environ["IMAGE_ASSETS_DELIVERY_URL"] = self.base_url
        config = uvicorn.Config(
            app_from_env(),
            host=host,
            port=port,
            access_log=False,
            log_config=None,
            lifespan="off",
            server_header=False,
        )
        self.server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    def start(self) -> BackgroundDelivery:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise SystemExit(
                f"error: cannot serve images on {self.host}:{self.port} ({exc.strerror}); "
                "pick another port with DELIVERY_PORT=... (make) or --delivery-port"
            ) from None
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, daemon=True, name="delivery"
        )
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started and self._thread.is_alive():
            if time.monotonic() > deadline:
                raise SystemExit("error: the image service did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)


if __name__ == "__main__":  # the supervisor's pre-flight: exit 3 with one line if misconfigured
    worker_app()
