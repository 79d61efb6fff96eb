"""The upload lifecycle's stores where ``image_assets.settings`` says they are, for
processes without Dagster's resources (the image service's erasure endpoint). The
uploads resource lays them out the same way (``defs/uploads/resources.py``; a test
holds the two to it)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from image_assets.layout import CLAIMED_AREA
from image_assets.settings import INCOMING, PUBLIC_UPLOADS, REJECTED, PlatformSettings
from image_assets.storage import LocalBlobStore
from image_assets.uploads.intake import LocalIncoming, S3Incoming
from image_assets.uploads.lifecycle import UploadStores


def upload_stores(
    platform: PlatformSettings, s3_client: Callable[[], Any] | None = None
) -> UploadStores:
    """``s3_client`` is a factory of boto3 S3 clients (default: the usual credentials)."""
    if platform.profile == "aws":
        from image_assets.storage.s3 import S3BlobStore

        if s3_client is None:
            import boto3

            s3_client = functools.partial(boto3.client, "s3")
        return UploadStores(
            area=S3Incoming(s3_client(), platform.uploads_bucket, INCOMING, CLAIMED_AREA),
            rejected=S3BlobStore(s3_client, platform.uploads_bucket, REJECTED),
            public=S3BlobStore(s3_client, platform.cdn_bucket, PUBLIC_UPLOADS),
            raw=S3BlobStore(s3_client, platform.raw_bucket, platform.s3_prefix),
            private=S3BlobStore(s3_client, platform.images_bucket, platform.s3_prefix),
        )
    return UploadStores(
        area=LocalIncoming(platform.incoming_dir, platform.data_dir / CLAIMED_AREA),
        rejected=LocalBlobStore(platform.rejected_dir),
        public=LocalBlobStore(platform.public_uploads_dir),
        raw=LocalBlobStore(platform.raw_dir),
        private=LocalBlobStore(platform.images_dir),
    )
