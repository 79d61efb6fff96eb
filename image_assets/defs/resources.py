"""Typed Dagster resources: thin factories for the core's stores, clients and configs."""

from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field

from image_assets.cdn.base import CdnBackend
from image_assets.cdn.local import LocalCdn
from image_assets.imaging.renditions import RenditionConfig, load_rendition_config
from image_assets.scraping.crawl import http_settings_for
from image_assets.scraping.http import DEFAULT_USER_AGENT, HttpClient, HttpSettings
from image_assets.scraping.registry import Registry, Vendor, load_registry
from image_assets.storage import BlobStore, LocalBlobStore


class StorageResource(ConfigurableResource):
    """The raw store (pages, kits CSVs, state) and the image store (originals, masters, renditions)."""

    data_dir: str = Field(description="Root folder of the local profile's data.")

    def raw(self) -> BlobStore:
        return LocalBlobStore(Path(self.data_dir) / "raw")

    def images(self) -> BlobStore:
        return LocalBlobStore(Path(self.data_dir) / "images")


class CdnResource(ConfigurableResource):
    """The CDN backend images are published through (``local`` in the embedded profile)."""

    backend: str = Field(default="local", description="local")
    local_root: str = Field(description="Folder the local CDN serves from.")
    local_base_url: str | None = Field(
        default=None, description="Public base URL of the local CDN folder (default: file://)."
    )

    def client(self) -> CdnBackend:
        if self.backend != "local":
            raise ValueError(f"unknown CDN backend {self.backend!r}; available: local")
        return LocalCdn(self.local_root, self.local_base_url)


class VendorRegistryResource(ConfigurableResource):
    """The vendor registry (YAML); empty path means the bundled ``vendors.yaml``."""

    path: str = ""

    def load(self) -> Registry:
        return load_registry(self.path or None)


class HttpResource(ConfigurableResource):
    """Settings of the one HTTP client; a client is made per vendor (private-host policy)."""

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
    """The rendition config (YAML); empty path means the bundled ``renditions.yaml``."""

    path: str = ""
    workers: int = Field(default=0, description="Worker processes for renditions (0: one per CPU).")

    def config(self) -> RenditionConfig:
        return load_rendition_config(self.path or None)


class CatalogResource(ConfigurableResource):
    """Where the clean DuckDB catalog lives."""

    database: str = Field(description="Path of the DuckDB file.")
