"""Typed Dagster resources: thin factories for the core's stores, clients and configs.

Which values they get is the profile's business (``defs/profiles.py``).
"""

import functools
from pathlib import Path
from typing import Literal

import boto3
from botocore.config import Config as BotoConfig
from dagster import ConfigurableResource
from dagster_aws.s3 import S3Resource
from dagster_aws.secretsmanager import SecretsManagerResource
from pydantic import Field

from image_assets.cdn.base import CdnBackend
from image_assets.cdn.cloudinary import CloudinaryCdn
from image_assets.cdn.credentials import (
    DEFAULT_SECRET_NAME,
    CloudinaryCredentials,
    CredentialsUnavailable,
    from_cloudinary_url,
    from_secrets_manager,
)
from image_assets.cdn.local import LocalCdn
from image_assets.cdn.s3 import CloudFrontInvalidator, S3Cdn
from image_assets.cdn.service import SelfCdn
from image_assets.defs.settings import rendition_config
from image_assets.imaging.config import RenditionConfig
from image_assets.imaging.labels import RekognitionTagger, Tagger
from image_assets.scraping.crawl import http_settings_for
from image_assets.scraping.http import DEFAULT_USER_AGENT, HttpClient, HttpSettings
from image_assets.scraping.registry import Registry, Vendor, load_registry
from image_assets.settings import IMAGES_FOLDER, RAW_FOLDER
from image_assets.storage import BlobStore, LocalBlobStore
from image_assets.storage.s3 import S3BlobStore


def s3_client_factory(s3: S3Resource, service: str = "s3") -> functools.partial:
    """A picklable factory for boto3 clients of ``service`` with the S3 resource's
    region, endpoint and credentials (worker processes build their own)."""
    kwargs = {
        k: v
        for k, v in {
            "region_name": s3.region_name,
            "endpoint_url": s3.endpoint_url,
            "aws_access_key_id": s3.aws_access_key_id,
            "aws_secret_access_key": s3.aws_secret_access_key,
            "aws_session_token": s3.aws_session_token,
        }.items()
        if v
    }
    return functools.partial(boto3.client, service, **kwargs)


class StorageResource(ConfigurableResource):
    """The raw store (pages, kits CSVs, state) and the image store (originals, renditions)."""

    kind: Literal["local", "s3"] = "local"
    data_dir: str = Field(default=".data", description="Root folder of the local profile's data.")
    raw_bucket: str = Field(default="", description="S3 bucket of the raw store (aws profile).")
    images_bucket: str = Field(
        default="", description="Private S3 bucket for originals and renditions."
    )
    prefix: str = ""
    s3: S3Resource

    def raw(self) -> BlobStore:
        if self.kind == "s3":
            return S3BlobStore(s3_client_factory(self.s3), self.raw_bucket, self.prefix)
        return LocalBlobStore(Path(self.data_dir) / RAW_FOLDER)

    def images(self) -> BlobStore:
        if self.kind == "s3":
            return S3BlobStore(
                s3_client_factory(self.s3), self.images_bucket or self.raw_bucket, self.prefix
            )
        return LocalBlobStore(Path(self.data_dir) / IMAGES_FOLDER)


class CdnResource(ConfigurableResource):
    """The CDN backends images are published through: a primary and an optional fallback."""

    backend: Literal["local", "cloudinary", "s3", "self"] = "local"
    fallback: Literal["none", "local", "s3", "self"] = "none"
    local_root: str = Field(default=".data/cdn", description="Folder the local CDN serves from.")
    local_base_url: str = Field(default="", description="Public base URL of the local CDN folder.")
    self_base_url: str = Field(
        default="http://127.0.0.1:8090",
        description="Base URL of image-assets serve (a CloudFront domain in production).",
    )
    self_secret: str = Field(default="", description="URL-signing secret of the service.")
    self_signature_algorithm: Literal["sha1", "sha256"] = "sha1"
    cloudinary_url: str = Field(
        default="", description="cloudinary://KEY:SECRET@CLOUD (local use)."
    )
    cloudinary_secret_name: str = DEFAULT_SECRET_NAME
    cloudinary_upload_prefix: str = Field(default="", description="API base URL override.")
    s3_bucket: str = ""
    s3_prefix: str = ""
    public_base_url: str = Field(
        default="", description="CloudFront/public base; else the bucket's own URL."
    )
    s3_access: Literal["public", "private"] = Field(
        default="public", description="private: s3:// URLs in the catalogue, never presigned."
    )
    cache_control: str = "public, max-age=86400"
    cloudfront_distribution_id: str = Field(
        default="",
        description="the CloudFront distribution in front of the S3 CDN bucket: replaced "
        "and deleted objects are invalidated there, once per run",
    )
    cloudfront_origin_path: str = Field(
        default="", description="the distribution's origin path (a key prefix it covers)"
    )
    s3: S3Resource
    secrets: SecretsManagerResource

    def _make(self, kind: str) -> CdnBackend:
        if kind == "local":
            return LocalCdn(self.local_root, self.local_base_url or None)
        if kind == "self":  # masters in the CDN bucket (aws) or the local CDN folder
            store: BlobStore = (
                S3BlobStore(s3_client_factory(self.s3), self.s3_bucket, self.s3_prefix)
                if self.s3_bucket
                else LocalBlobStore(self.local_root)
            )
            return SelfCdn(
                store,
                self.self_base_url,
                secret=self.self_secret or None,
                signature_algorithm=self.self_signature_algorithm,
            )
        if kind == "s3":
            invalidator = None
            if self.cloudfront_distribution_id:
                cloudfront = s3_client_factory(self.s3, "cloudfront")()  # the same credentials
                invalidator = CloudFrontInvalidator(
                    cloudfront, self.cloudfront_distribution_id, self.cloudfront_origin_path
                )
            return S3Cdn(
                self.s3.get_client(),
                self.s3_bucket,
                self.s3_prefix,
                self.public_base_url or None,
                self.cache_control,
                access=self.s3_access,
                invalidator=invalidator,
            )
        return CloudinaryCdn(
            self.cloudinary_credentials(), upload_prefix=self.cloudinary_upload_prefix or None
        )

    def cloudinary_credentials(self) -> CloudinaryCredentials:
        if self.cloudinary_url:
            return from_cloudinary_url(self.cloudinary_url)
        return from_secrets_manager(self.secrets.get_client(), self.cloudinary_secret_name)

    def chain(self) -> tuple[list[CdnBackend], list[str]]:
        """The backends to try in order, and warnings to log once (e.g. credentials missing)."""
        warnings: list[str] = []
        backends: list[CdnBackend] = []
        for kind in [self.backend, self.fallback]:
            if kind == "none" or any(b.storage == kind for b in backends):
                continue
            try:
                backends.append(self._make(kind))
            except CredentialsUnavailable as exc:
                warnings.append(
                    f"Cloudinary credentials unavailable ({exc}); publishing through {self.fallback}"
                )
        if not backends:
            raise CredentialsUnavailable(
                "no CDN backend is usable (Cloudinary credentials missing, no fallback)"
            )
        return backends, warnings


class VendorRegistryResource(ConfigurableResource):
    """The vendor registry (YAML); empty path means the bundled ``vendors.yaml``."""

    path: str = ""

    def load(self) -> Registry:
        return load_registry(self.path or None)


class HttpResource(ConfigurableResource):
    """Settings of the one HTTP client; a client is made per vendor (politeness, private hosts)."""

    user_agent: str = DEFAULT_USER_AGENT
    connect_timeout: float = 5.0
    read_timeout: float = 20.0
    max_retries: int = 3
    backoff_base: float = 0.5
    per_host_concurrency: int = 4

    def client(self, vendor: Vendor) -> HttpClient:
        base = HttpSettings(
            user_agent=self.user_agent,
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            max_retries=self.max_retries,
            backoff_base=self.backoff_base,
            per_host_concurrency=self.per_host_concurrency,
        )
        return HttpClient(http_settings_for(vendor, base))


class RenditionsResource(ConfigurableResource):
    """How renditions are made: the code location's rendition config (its fingerprint is
    the renditions' ``code_version``, see ``settings.rendition_config``) and the workers."""

    workers: int = Field(default=0, description="Worker processes for renditions (0: one per CPU).")

    def config(self) -> RenditionConfig:
        return rendition_config()


class TaggerResource(ConfigurableResource):
    """Which tagger labels the images (``IMAGE_ASSETS_TAGGER``): ``none`` (hashes and
    colours only) or ``rekognition`` (Amazon Rekognition DetectLabels)."""

    kind: Literal["none", "rekognition"] = "none"
    region_name: str = "us-east-1"
    endpoint_url: str = Field(default="", description="A Rekognition-compatible endpoint.")
    max_labels: int = Field(default=10, ge=1, le=100)
    min_confidence: float = Field(default=70.0, ge=0, le=100)

    def tagger(self) -> Tagger | None:
        if self.kind == "none":
            return None
        client = boto3.client(
            "rekognition",
            region_name=self.region_name,
            endpoint_url=self.endpoint_url or None,
            # throttling is retried with backoff by the client before the tagger gives up
            config=BotoConfig(retries={"mode": "standard", "max_attempts": 4}),
        )
        return RekognitionTagger(client, self.max_labels, self.min_confidence)


class CatalogResource(ConfigurableResource):
    """Where the clean DuckDB catalog lives."""

    database: str = Field(description="Path of the DuckDB file.")
