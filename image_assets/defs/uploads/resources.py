"""Where uploads arrive, where refused ones go, and where activated ones become public."""

import os
from pathlib import Path
from typing import Any, Literal

import boto3
from dagster import ConfigurableResource
from dagster_aws.s3 import S3Resource
from pydantic import Field

from image_assets.defs.resources import StorageResource, s3_client_factory
from image_assets.layout import CLAIMED_AREA
from image_assets.settings import INCOMING, PUBLIC_UPLOADS, REJECTED
from image_assets.storage import BlobStore, LocalBlobStore
from image_assets.storage.s3 import S3BlobStore
from image_assets.uploads.intake import IncomingArea, LocalIncoming, S3Incoming
from image_assets.uploads.lifecycle import UploadStores


def upload_sensor_mode() -> str:
    """Which upload sensor runs by default: ``listing`` (default), ``sqs`` or ``off``."""
    mode = os.environ.get("IMAGE_ASSETS_UPLOAD_SENSOR") or "listing"
    if mode not in ("listing", "sqs", "off"):
        raise ValueError(f"IMAGE_ASSETS_UPLOAD_SENSOR must be listing, sqs or off, not {mode!r}")
    return mode


class UploadsResource(ConfigurableResource):
    kind: Literal["local", "s3"] = "local"
    data_dir: str = Field(
        default=".data", description="local: incoming/, rejected/ and public/ live here"
    )
    bucket: str = Field(default="", description="s3: the uploads bucket")
    incoming_prefix: str = INCOMING  # image_assets.settings: the service grants uploads here
    rejected_prefix: str = REJECTED
    public_bucket: str = Field(default="", description="s3: where activated uploads become public")
    public_prefix: str = PUBLIC_UPLOADS  # the service serves activated uploads from here
    queue_url: str = Field(default="", description="SQS queue receiving the bucket's S3 events")
    max_per_tick: int = Field(
        default=200, ge=1, description="uploads claimed per sensor tick at most"
    )
    batch_size: int = Field(
        default=50, ge=1, description="uploads processed together in one run at most"
    )
    settle_seconds: float = Field(
        default=2.0, ge=0, description="files modified more recently wait for the next look"
    )
    incomplete_grace_seconds: float = Field(
        default=60.0,
        ge=0,
        description="a truncated image received this recently waits (its writer may have paused)",
    )
    queue_visibility_seconds: int = Field(default=300, ge=1, description="SQS visibility timeout")
    lease_seconds: float = Field(
        default=120.0,
        gt=0,
        description="an upload stays the run's that leased it this long after its last "
        "renewal; a killed run's uploads are taken over after it",
    )
    ttl_hours: float = Field(
        default=2.0, gt=0, description="unactivated uploads are deleted after this"
    )
    s3: S3Resource

    def _store(self, local_folder: str, bucket: str, prefix: str) -> BlobStore:
        if self.kind == "s3":
            return S3BlobStore(s3_client_factory(self.s3), bucket, prefix)
        return LocalBlobStore(Path(self.data_dir) / local_folder)

    def rejected(self) -> BlobStore:
        return self._store(self.rejected_prefix, self.bucket, self.rejected_prefix)

    def public(self) -> BlobStore:
        return self._store(
            f"public/{self.public_prefix}", self.public_bucket or self.bucket, self.public_prefix
        )

    def area(self) -> IncomingArea:
        """Incoming and, beside it, the claimed area (same folder tree or bucket)."""
        if self.kind == "s3":
            return S3Incoming(self.s3.get_client(), self.bucket, self.incoming_prefix, CLAIMED_AREA)
        root = Path(self.data_dir)
        return LocalIncoming(root / self.incoming_prefix, root / CLAIMED_AREA)

    def stores(self, storage: StorageResource) -> UploadStores:
        """Everything the upload lifecycle reads and writes."""
        return UploadStores(
            area=self.area(),
            rejected=self.rejected(),
            public=self.public(),
            raw=storage.raw(),
            private=storage.images(),
        )

    def sqs_client(self) -> Any:
        kwargs = {
            k: v
            for k, v in {
                "region_name": self.s3.region_name,
                "endpoint_url": self.s3.endpoint_url,
            }.items()
            if v
        }
        return boto3.client("sqs", **kwargs)
