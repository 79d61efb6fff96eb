"""The `s3` CDN backend: objects in a bucket, served through a public base (CloudFront)
or presigned URLs for private buckets.

Keys are ``{prefix}/{public_id}.{ext}``; the sha256 of the bytes is kept in the
object's metadata so a re-run can skip unchanged uploads with one HEAD.
Content-addressed renditions could be cached forever; masters are not, so the
Cache-Control is configurable.
"""

from __future__ import annotations

from typing import Any

from image_assets.cdn.base import CdnError, StoredFileDelivery
from image_assets.failures import FailureKind
from image_assets.formats import PUBLISHED_FORMATS, mime_type
from image_assets.layout import cdn_object_key
from image_assets.records import CdnAsset
from image_assets.storage.base import validate_key


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
        presign_seconds: int = 7 * 24 * 3600,
    ):
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None
        self.cache_control = cache_control
        self.presign_seconds = presign_seconds

    def _key(self, public_id: str, fmt: str) -> str:
        key = cdn_object_key(validate_key(public_id), fmt)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _urls(self, key: str) -> tuple[str, str]:
        s3_url = f"s3://{self.bucket}/{key}"
        if self.public_base_url:
            url = f"{self.public_base_url}/{key}"
        else:
            url = self.client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": key},
                ExpiresIn=self.presign_seconds,
            )
        return url, s3_url

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
        key = self._key(public_id, format)
        metadata = {"sha256": sha256, "public-id": public_id, "format": format}
        if width and height:
            metadata |= {"width": str(width), "height": str(height)}
        try:
            response = self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ContentType=mime_type(format),
                CacheControl=self.cache_control,
                Metadata=metadata,
            )
        except Exception as exc:
            raise CdnError(
                f"S3 upload of {public_id} failed: {type(exc).__name__}: {exc}",
                FailureKind.CDN_TRANSIENT,
            ) from None
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

    def delete(self, public_id: str) -> bool:
        asset = self.lookup(public_id)
        if asset is None:
            return False
        self.client.delete_object(Bucket=self.bucket, Key=self._key(public_id, asset.format))
        return True
