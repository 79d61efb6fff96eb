"""The `cloudinary` CDN backend, through the official SDK.

Uploads follow the seed: ``folder=kits/{manufacturer}``, ``public_id`` from the
product id, ``overwrite``, ``invalidate``, ``resource_type="image"``; the sha256
of the bytes travels in the asset's context so a re-run can skip unchanged
images with one Admin API lookup. Delivery URLs (``f_auto,q_auto``, sizes and
crops) are built by the SDK. Transient failures (429, 5xx, network) are
retried with backoff; after a timeout the asset is looked up before uploading
again, so a slow success is never uploaded twice. Error messages are scrubbed
of credentials.
"""

from __future__ import annotations

import io
import logging
import random
import time
from collections.abc import Callable
from typing import Any

import cloudinary.api
import cloudinary.uploader
import cloudinary.utils
from cloudinary import exceptions as cx

from image_assets.catalog.records import CdnAsset
from image_assets.cdn.base import CdnError
from image_assets.cdn.credentials import CloudinaryCredentials
from image_assets.imaging.renditions import EXTENSIONS
from image_assets.storage.base import validate_key

log = logging.getLogger(__name__)
_TRANSIENT = (cx.RateLimited, cx.GeneralError)


def split_folder(public_id: str) -> tuple[str | None, str]:
    """``kits/estes/est0001/2`` -> (``kits/estes``, ``est0001/2``): the seed's folder layout."""
    parts = validate_key(public_id).split("/")
    if len(parts) >= 3:
        return "/".join(parts[:2]), "/".join(parts[2:])
    if len(parts) == 2:
        return parts[0], parts[1]
    return None, public_id


class CloudinaryCdn:
    storage = "cloudinary"
    transforms_on_delivery = True

    def __init__(
        self,
        credentials: CloudinaryCredentials,
        *,
        upload_prefix: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.credentials = credentials
        self.upload_prefix = upload_prefix
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"CloudinaryCdn(cloud_name={self.credentials.cloud_name!r})"

    def _options(self) -> dict[str, Any]:
        creds = self.credentials
        options = {
            "cloud_name": creds.cloud_name,
            "api_key": creds.api_key,
            "api_secret": creds.api_secret.get_secret_value(),
            "timeout": self.timeout,
        }
        if self.upload_prefix:
            options["upload_prefix"] = self.upload_prefix
        return options

    def _error(self, action: str, exc: BaseException) -> CdnError:
        message = self.credentials.scrub(f"{type(exc).__name__}: {exc}")
        return CdnError(f"Cloudinary {action} failed: {message}")

    def upload(
        self,
        data: bytes,
        public_id: str,
        *,
        format: str,
        sha256: str,
        width: int | None = None,
        height: int | None = None,
    ) -> CdnAsset:
        folder, name = split_folder(public_id)
        attempt = 0
        while True:
            attempt += 1
            try:
                result = cloudinary.uploader.upload(
                    io.BytesIO(data),
                    filename=f"{name.rsplit('/', 1)[-1]}.{EXTENSIONS.get(format, format)}",
                    folder=folder,
                    public_id=name,
                    use_asset_folder_as_public_id_prefix=True,
                    overwrite=True,
                    invalidate=True,
                    resource_type="image",
                    context={"sha256": sha256},
                    **self._options(),
                )
                return self._asset(result, sha256)
            except cx.AuthorizationRequired as exc:
                raise self._error(
                    "upload", exc
                ) from None  # wrong credentials: retrying will not help
            except (*_TRANSIENT, cx.Error) as exc:
                transient = (
                    isinstance(exc, _TRANSIENT)
                    or "Socket error" in str(exc)
                    or "Unexpected error" in str(exc)
                )
                if not transient or attempt > self.max_retries:
                    raise self._error("upload", exc) from None
                if "Socket error" in str(exc) or "Unexpected error" in str(exc):
                    landed = self._landed(public_id, sha256)  # a slow upload may still succeed
                    if landed is not None:
                        return landed
                delay = min(30.0, self.backoff * 2 ** (attempt - 1)) * (1 + random.random() * 0.25)
                log.info(
                    "Cloudinary upload of %s: %s; retrying in %.1fs",
                    public_id,
                    type(exc).__name__,
                    delay,
                )
                self._sleep(delay)

    def _landed(self, public_id: str, sha256: str) -> CdnAsset | None:
        """After a timeout, watch for the slow upload for up to twice the timeout, so it
        is not sent a second time while the first is still being stored."""
        deadline = time.monotonic() + 2 * self.timeout
        while True:
            try:
                held = self.lookup(public_id)
            except CdnError:
                held = None
            if held is not None and held.sha256 == sha256:
                return held
            if time.monotonic() >= deadline:
                return None
            self._sleep(min(self.timeout / 4, max(0.0, deadline - time.monotonic())))

    def _asset(self, result: dict, sha256: str) -> CdnAsset:
        return CdnAsset(
            public_id=result["public_id"],
            storage="cloudinary",
            url=result.get("url") or result["secure_url"],
            secure_url=result["secure_url"],
            version=result.get("version"),
            bytes=int(result.get("bytes", 0)),
            width=result.get("width"),
            height=result.get("height"),
            format=result.get("format", ""),
            sha256=sha256,
            etag=result.get("etag"),
        )

    def lookup(self, public_id: str, format: str | None = None) -> CdnAsset | None:
        try:
            result = cloudinary.api.resource(public_id, context=True, **self._options())
        except cx.NotFound:
            return None
        except Exception as exc:
            raise self._error("lookup", exc) from None
        custom = (result.get("context") or {}).get("custom") or {}
        return self._asset(result, custom.get("sha256", ""))

    def delete(self, public_id: str) -> bool:
        try:
            result = cloudinary.uploader.destroy(
                public_id, invalidate=True, resource_type="image", **self._options()
            )
        except Exception as exc:
            raise self._error("delete", exc) from None
        return result.get("result") == "ok"

    def delivery_url(
        self,
        public_id: str,
        *,
        width: int | None = None,
        height: int | None = None,
        crop: str | None = None,
        format: str = "auto",
        quality: str = "auto",
    ) -> str:
        """A transformation URL built by the SDK, e.g. ``.../f_auto,q_auto,w_300,h_300,c_fill/...``."""
        options: dict[str, Any] = {
            "cloud_name": self.credentials.cloud_name,
            "secure": True,
            "fetch_format": format,
            "quality": quality,
        }
        if width:
            options["width"] = width
        if height:
            options["height"] = height
        if crop:
            options["crop"] = crop
        url, _ = cloudinary.utils.cloudinary_url(public_id, **options)
        return url

    def usage(self) -> dict:
        """The account's usage report (Admin API)."""
        try:
            return dict(cloudinary.api.usage(**self._options()))
        except Exception as exc:
            raise self._error("usage", exc) from None


QUOTA_KEYS = ("storage", "bandwidth", "transformations", "credits")


def quota_percentages(usage: dict) -> dict[str, float]:
    """Used share (0-100) of each plan limit in a usage report, for both report shapes:
    per-item ``used_percent``/``limit``, or credit-based plans where items report
    ``credits_usage`` against the ``credits`` limit."""
    credit_limit = (usage.get("credits") or {}).get("limit")
    out: dict[str, float] = {}
    for key in QUOTA_KEYS:
        item = usage.get(key) or {}
        if not isinstance(item, dict):
            continue
        if item.get("used_percent") is not None:
            out[key] = float(item["used_percent"])
        elif item.get("limit"):
            out[key] = 100.0 * float(item.get("usage", 0)) / float(item["limit"])
        elif credit_limit and item.get("credits_usage") is not None:
            out[key] = 100.0 * float(item["credits_usage"]) / float(credit_limit)
    return {k: round(v, 2) for k, v in out.items()}
