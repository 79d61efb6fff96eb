"""A blob store on S3 (raw store and image store of the `aws` profile).

The boto3 client is created lazily from a small picklable description, so the
store can be handed to the renditions worker processes like the local one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from image_assets.storage.base import BlobNotFound, ObjectInfo, validate_key

ClientFactory = Callable[[], Any]


_NOT_HELD = frozenset(
    {
        "404",
        "NoSuchKey",
        "NotFound",
        "403",
        "AccessDenied",
        "KeyTooLongError",
        "400",
        "InvalidArgument",
    }
)


class S3BlobStore:
    def __init__(self, client_factory: ClientFactory, bucket: str, prefix: str = ""):
        self.client_factory = client_factory
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._client: Any = None

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_client"] = None  # boto3 clients do not cross process boundaries
        return state

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self.client_factory()
        return self._client

    def _key(self, key: str) -> str:
        key = validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def get(self, key: str) -> bytes:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except self.client.exceptions.NoSuchKey:
            raise BlobNotFound(key) from None
        except self.client.exceptions.ClientError as exc:
            # a key S3 cannot hold (over 1024 bytes) or may not show is one it does not
            # have; a server error (5xx) still raises
            if exc.response.get("Error", {}).get("Code") in _NOT_HELD:
                raise BlobNotFound(key) from None
            raise
        return response["Body"].read()

    def put(self, key: str, data: bytes, content_type: str | None = None) -> None:
        # a PUT is atomic on S3: readers see the old object or the new one
        extra = {"ContentType": content_type} if content_type else {}
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, **extra)

    def put_if_absent(self, key: str, data: bytes, content_type: str | None = None) -> bool:
        """S3's conditional write (``If-None-Match: *``): 412 when the key exists, 409 when
        another conditional write to it is in flight; either way this one lost."""
        extra = {"ContentType": content_type} if content_type else {}
        try:
            self.client.put_object(
                Bucket=self.bucket, Key=self._key(key), Body=data, IfNoneMatch="*", **extra
            )
        except self.client.exceptions.ClientError as exc:
            error = exc.response.get("Error", {}).get("Code", "")
            if error in ("PreconditionFailed", "412", "ConditionalRequestConflict", "409"):
                return False
            raise
        return True

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            return True
        except self.client.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _NOT_HELD:
                return False
            raise

    def delete(self, key: str) -> bool:
        existed = self.exists(key)
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        return existed

    def list(self, prefix: str = "") -> Iterator[str]:
        return (info.key for info in self.list_info(prefix))

    def info(self, key: str) -> ObjectInfo:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except self.client.exceptions.ClientError:
            raise BlobNotFound(key) from None
        return ObjectInfo(head["LastModified"].timestamp(), key, int(head.get("ContentLength", 0)))

    def list_info(self, prefix: str = "") -> Iterator[ObjectInfo]:
        full = (
            self._key(prefix.rstrip("/")) + "/"
            if prefix.strip("/")
            else (f"{self.prefix}/" if self.prefix else "")
        )
        strip = len(self.prefix) + 1 if self.prefix else 0
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=full
        ):
            for item in page.get("Contents", []):
                yield ObjectInfo(
                    item["LastModified"].timestamp(), item["Key"][strip:], int(item.get("Size", 0))
                )

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def __repr__(self) -> str:
        return f"S3BlobStore(s3://{self.bucket}/{self.prefix})"
