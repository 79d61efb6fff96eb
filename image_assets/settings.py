"""Where the platform's data lives: one typed reading of the environment, shared.

The Dagster code location (``defs/profiles.py``) and the image service
(``delivery/server.py``) must agree on the profile, the data folder, the buckets
and prefixes, the public areas and the catalog file: the service serves what the
pipeline published. Both read them here, so a variable means the same to both and
its default is written once. Standard library only: the service's workers import it
without Dagster.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

Profile = Literal["local", "aws"]
PROFILES: tuple[Profile, ...] = ("local", "aws")

# The layout both sides agree on, under the data folder (local) or in the CDN bucket (aws).
CDN_FOLDER = "cdn"  # local: the masters of the `self` CDN backend
PUBLIC_UPLOADS = "uploads"  # activated uploads: public/uploads/ (local), uploads/ (aws)
INCOMING = "incoming"  # where uploads arrive, in the data folder or the uploads bucket
REJECTED = "rejected"  # refused uploads, beside incoming
RAW_FOLDER = "raw"  # local: the raw store (kits CSVs, pages, manifests, audit rows)
IMAGES_FOLDER = "images"  # local: the private image store (originals, renditions, ledgers)


@dataclass(frozen=True)
class PlatformSettings:
    """Each field with the variable that sets it (``VARIABLES``) and its default."""

    profile: Profile = "local"
    data_dir: Path = Path(".data")
    catalog_db: Path | None = None  # default: catalog.duckdb in the data folder
    cdn_bucket: str = "image-assets-cdn"
    cdn_prefix: str = ""
    uploads_bucket: str = "image-assets-uploads"
    raw_bucket: str = "image-assets-raw"
    images_bucket: str = "image-assets-images"
    s3_prefix: str = ""  # of the raw and images buckets
    delivery_url: str = "http://127.0.0.1:8090"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PlatformSettings:
        """The settings the environment gives; ``ValueError`` (one line) for a profile
        that does not exist. An empty variable counts as unset."""
        env = os.environ if environ is None else environ
        given: dict[str, Any] = {
            f.name: env[VARIABLES[f.name]] for f in fields(cls) if env.get(VARIABLES[f.name])
        }
        profile = given.get("profile", "local")
        if profile not in PROFILES:
            raise ValueError(f"IMAGE_ASSETS_PROFILE must be 'local' or 'aws', not {profile!r}")
        given["data_dir"] = Path(given.get("data_dir", cls.data_dir)).resolve()
        if "catalog_db" in given:
            given["catalog_db"] = Path(given["catalog_db"])
        return cls(**given)  # the strings as given, every other field its default

    @property
    def catalog_path(self) -> Path:
        return self.catalog_db or self.data_dir / "catalog.duckdb"

    @property
    def cdn_dir(self) -> Path:
        """local: the folder of the `self` CDN backend's masters, which the service serves."""
        return self.data_dir / CDN_FOLDER

    @property
    def public_uploads_dir(self) -> Path:
        """local: the public area of activated uploads."""
        return self.data_dir / "public" / PUBLIC_UPLOADS

    @property
    def incoming_dir(self) -> Path:
        """local: where uploads arrive."""
        return self.data_dir / INCOMING

    @property
    def rejected_dir(self) -> Path:
        return self.data_dir / REJECTED

    @property
    def raw_dir(self) -> Path:
        return self.data_dir / RAW_FOLDER

    @property
    def images_dir(self) -> Path:
        return self.data_dir / IMAGES_FOLDER


VARIABLES = {
    "profile": "IMAGE_ASSETS_PROFILE",
    "data_dir": "IMAGE_ASSETS_DATA_DIR",
    "catalog_db": "IMAGE_ASSETS_CATALOG_DB",
    "cdn_bucket": "IMAGE_ASSETS_CDN_BUCKET",
    "cdn_prefix": "IMAGE_ASSETS_CDN_PREFIX",
    "uploads_bucket": "IMAGE_ASSETS_UPLOADS_BUCKET",
    "raw_bucket": "IMAGE_ASSETS_RAW_BUCKET",
    "images_bucket": "IMAGE_ASSETS_IMAGES_BUCKET",
    "s3_prefix": "IMAGE_ASSETS_S3_PREFIX",
    "delivery_url": "IMAGE_ASSETS_DELIVERY_URL",
}
