"""The `s3` CDN backend: objects in a bucket, with stable links for the catalogue.

Keys are ``{prefix}/{public_id}.{ext}``; the sha256 of the bytes is kept in the
object's metadata. What the bucket holds is read in bulk (one LIST per 1000
objects, ETags compared with the ledger's), not one HEAD per image.

URLs written into the catalogue never expire and never change between runs:
``public_base_url`` (CloudFront) when set, else the bucket's own public URL.
A private bucket (``access="private"``) gets ``s3://`` URLs in the catalogue;
a temporary link for one object comes from :meth:`S3Cdn.presigned_url`, and is
never written anywhere. ``overwrite=False`` is a conditional PUT
(``If-None-Match: *``), so an object nobody has seen is never replaced. With a
CloudFront distribution in front (``CloudFrontInvalidator``), the objects a run
replaces under the same key, and those housekeeping deletes, are invalidated in
one ``CreateInvalidation`` per run, so none is served stale until its
Cache-Control runs out.
Content-addressed renditions could be cached forever; masters are not, so the
Cache-Control is configurable.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any, Literal
from urllib.parse import quote, urlsplit

from image_assets.cdn.base import CdnError, DeleteReport, StoredFileDelivery
from image_assets.failures import FailureKind
from image_assets.formats import PUBLISHED_FORMATS, mime_type
from image_assets.layout import cdn_object_key, object_key_public_id, sanitize_id
from image_assets.records import CdnAsset
from image_assets.storage.base import validate_key

DELETE_BATCH = 1000  # keys per DeleteObjects, S3's limit
INVALIDATION_PATHS = 3000  # paths per CreateInvalidation in progress (CloudFront's quota)


class CloudFrontInvalidator:
    """Paths of a CloudFront distribution in front of the bucket, invalidated in one
    ``CreateInvalidation`` per call (a run collects its paths and calls once), so a
    replaced or deleted object is not served stale until its Cache-Control runs out.
    ``origin_prefix`` is the part of an object key the distribution's origin path
    already covers."""

    def __init__(self, client: Any, distribution_id: str, origin_prefix: str = ""):
        self.client = client
        self.distribution_id = distribution_id
        self.origin_prefix = origin_prefix.strip("/")
        self.sent: list[str] = []  # invalidation ids, for the run's metadata

    def path(self, key: str) -> str:
        if self.origin_prefix and key.startswith(self.origin_prefix + "/"):
            key = key[len(self.origin_prefix) + 1 :]
        return "/" + quote(key)

    def invalidate(self, keys: Sequence[str]) -> None:
        paths = sorted({self.path(key) for key in keys})
        for start in range(0, len(paths), INVALIDATION_PATHS):
            batch = paths[start : start + INVALIDATION_PATHS]
            try:
                answer = self.client.create_invalidation(
                    DistributionId=self.distribution_id,
                    InvalidationBatch={
                        "Paths": {"Quantity": len(batch), "Items": batch},
                        "CallerReference": f"image-assets-{time.time_ns()}-{start}",
                    },
                )
            except Exception as exc:
                raise CdnError(
                    f"CloudFront invalidation failed: {type(exc).__name__}: {exc}",
                    FailureKind.CDN_TRANSIENT,
                ) from None
            self.sent.append(answer["Invalidation"]["Id"])


class S3Cdn(StoredFileDelivery):
    storage = "s3"
    transforms_on_delivery = False

    def __init__(
        self,
        client: Any,
        bucket: str,
        prefix: str = "",
        public_base_url: str | None = None,
        cache_control: str = "public, max-age=86400",
        access: Literal["public", "private"] = "public",
        presign_seconds: int = 3600,
        invalidator: CloudFrontInvalidator | None = None,
    ):
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None
        self.cache_control = cache_control
        self.access = access
        self.presign_seconds = presign_seconds
        self.invalidator = invalidator  # CloudFront in front of the bucket, if any
        self._replaced: set[str] = set()  # keys replaced since the last flush
        self._lock = threading.Lock()

    def flush_invalidations(self) -> int:
        """One CreateInvalidation for every object replaced since the last call (a
        publish run calls it once at its end); the number of paths sent."""
        if self.invalidator is None:
            return 0
        with self._lock:
            keys, self._replaced = sorted(self._replaced), set()
        if keys:
            self.invalidator.invalidate(keys)
        return len(keys)

    @property
    def ledger_name(self) -> str:
        return f"s3/{sanitize_id(self.bucket)}/{sanitize_id(self.prefix) or '-'}"

    def _key(self, public_id: str, fmt: str) -> str:
        key = cdn_object_key(validate_key(public_id), fmt)
        return f"{self.prefix}/{key}" if self.prefix else key

    def bucket_url(self) -> str:
        """The bucket's own public base: virtual-hosted on AWS, path-style elsewhere
        (an S3-compatible endpoint such as MinIO)."""
        endpoint = self.client.meta.endpoint_url.rstrip("/")
        host = urlsplit(endpoint).hostname or ""
        if host.endswith(".amazonaws.com") and "." not in self.bucket:
            region = self.client.meta.region_name or "us-east-1"
            return f"https://{self.bucket}.s3.{region}.amazonaws.com"
        return f"{endpoint}/{self.bucket}"

    def _urls(self, key: str) -> tuple[str, str]:
        """(catalogue URL, s3:// URL): both stable, never presigned."""
        s3_url = f"s3://{self.bucket}/{key}"
        if self.public_base_url:
            return f"{self.public_base_url}/{quote(key)}", s3_url
        if self.access == "private":
            return s3_url, s3_url
        return f"{self.bucket_url()}/{quote(key)}", s3_url

    def presigned_url(self, public_id: str, format: str) -> str:
        """A temporary link to one (private) object, for a person to look at; never stored."""
        return self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": self._key(public_id, format)},
            ExpiresIn=self.presign_seconds,
        )

    def upload(
        self,
        data: bytes,
        public_id: str,
        *,
        format: str,
        sha256: str,
        width: int | None = None,
        height: int | None = None,
        overwrite: bool = True,
        invalidate: bool = False,  # a replacement: CloudFront's copy is invalidated (flush)
    ) -> CdnAsset:
        key = self._key(public_id, format)
        metadata = {"sha256": sha256, "public-id": public_id, "format": format}
        if width and height:
            metadata |= {"width": str(width), "height": str(height)}
        conditions = {} if overwrite else {"IfNoneMatch": "*"}
        try:
            response = self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ContentType=mime_type(format),
                CacheControl=self.cache_control,
                Metadata=metadata,
                **conditions,
            )
        except self.client.exceptions.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if not overwrite and code in ("PreconditionFailed", "412"):
                held = self.lookup(public_id, format)
                if held is not None:
                    return held
            raise CdnError(
                f"S3 upload of {public_id} failed: {type(exc).__name__}: {exc}",
                FailureKind.CDN_TRANSIENT,
            ) from None
        except Exception as exc:
            raise CdnError(
                f"S3 upload of {public_id} failed: {type(exc).__name__}: {exc}",
                FailureKind.CDN_TRANSIENT,
            ) from None
        if invalidate and self.invalidator is not None:
            with self._lock:
                self._replaced.add(key)
        url, s3_url = self._urls(key)
        return CdnAsset(
            public_id=public_id,
            storage="s3",
            url=url,
            secure_url=url,
            s3_url=s3_url,
            version=None,
            bytes=len(data),
            width=width,
            height=height,
            format=format,
            sha256=sha256,
            etag=str(response.get("ETag", "")).strip('"') or None,
        )

    def lookup(self, public_id: str, format: str | None = None) -> CdnAsset | None:
        formats = [format] if format else list(PUBLISHED_FORMATS)
        for fmt in formats:
            key = self._key(public_id, fmt)
            try:
                head = self.client.head_object(Bucket=self.bucket, Key=key)
            except self.client.exceptions.ClientError:
                continue
            meta = head.get("Metadata", {})
            url, s3_url = self._urls(key)
            return CdnAsset(
                public_id=public_id,
                storage="s3",
                url=url,
                secure_url=url,
                s3_url=s3_url,
                bytes=int(head.get("ContentLength", 0)),
                width=int(meta["width"]) if meta.get("width") else None,
                height=int(meta["height"]) if meta.get("height") else None,
                format=meta.get("format", fmt),
                sha256=meta.get("sha256", ""),
                etag=str(head.get("ETag", "")).strip('"') or None,
            )
        return None

    def inventory(self, prefix: str) -> dict[str, CdnAsset]:
        """Objects under ``prefix`` (one LIST call per 1000); sha256 is not in a listing,
        so it is ""; the ETag (MD5 of a single-part PUT) identifies the bytes."""
        base = f"{self.prefix}/" if self.prefix else ""
        found: dict[str, CdnAsset] = {}
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=base + validate_key(prefix.rstrip("/")) + "/"
            )
            for page in pages:
                for item in page.get("Contents", []):
                    parsed = object_key_public_id(item["Key"][len(base) :])
                    if parsed is None:
                        continue
                    public_id, fmt = parsed
                    url, s3_url = self._urls(item["Key"])
                    found[public_id] = CdnAsset(
                        public_id=public_id,
                        storage="s3",
                        url=url,
                        secure_url=url,
                        s3_url=s3_url,
                        bytes=int(item.get("Size", 0)),
                        format=fmt,
                        sha256="",
                        etag=str(item.get("ETag", "")).strip('"') or None,
                    )
        except Exception as exc:
            raise CdnError(
                f"S3 listing of {prefix} failed: {type(exc).__name__}: {exc}",
                FailureKind.CDN_TRANSIENT,
            ) from None
        return found

    def delete(self, public_id: str) -> bool:
        asset = self.lookup(public_id)
        if asset is None:
            return False
        self.client.delete_object(Bucket=self.bucket, Key=self._key(public_id, asset.format))
        return True

    def delete_many(self, assets: Sequence[CdnAsset]) -> DeleteReport:
        """``DeleteObjects``, 1000 keys a request (quiet: only failures come back); a
        key that was already gone counts as deleted, as S3 answers it. The deleted
        paths are then invalidated on CloudFront when a distribution is set."""
        report = DeleteReport()
        keys = {self._key(a.public_id, a.format): a.public_id for a in assets}
        ordered = list(keys)
        for start in range(0, len(ordered), DELETE_BATCH):
            batch = ordered[start : start + DELETE_BATCH]
            report.calls += 1
            try:
                answer = self.client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True},
                )
            except Exception as exc:
                report.stopped = f"S3 DeleteObjects failed: {type(exc).__name__}: {exc}"
                break
            errors = {
                e["Key"]: f"{e.get('Code')}: {e.get('Message')}" for e in answer.get("Errors", [])
            }
            for key in batch:
                if key in errors:
                    report.failed[keys[key]] = errors[key]
                else:
                    report.deleted.append(keys[key])
        gone = {self._key(a.public_id, a.format) for a in assets if a.public_id in report.deleted}
        if gone and self.invalidator is not None:
            self.invalidator.invalidate(sorted(gone))
        return report
