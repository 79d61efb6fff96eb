"""One settings source: the Dagster code location and the image service agree on
where every piece of published data lives, for any environment."""

from __future__ import annotations

import contextlib
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from image_assets.defs.profiles import build_resources
from image_assets.delivery.server import settings_from_env
from image_assets.settings import VARIABLES, PlatformSettings

names = st.text(string.ascii_lowercase + string.digits + "-", min_size=3, max_size=20).filter(
    lambda s: s[0].isalnum() and s[-1].isalnum()
)
prefixes = st.one_of(st.just(""), names)


@contextlib.contextmanager
def _initialized(resources: dict) -> Iterator[Any]:
    """The resources as a run gets them (every EnvVar read), by Dagster's own builder."""
    wanted = {name: resources[name] for name in ("cdn", "uploads", "catalog")}
    with dagster.build_resources(wanted) as built:
        yield built


def _clear(monkeypatch) -> None:
    for name in (*VARIABLES.values(), "IMAGE_ASSETS_DELIVERY_SECRET", "CLOUDINARY_URL"):
        monkeypatch.delenv(name, raising=False)
    for name in ("IMAGE_ASSETS_DELIVERY_STRICT", "IMAGE_ASSETS_UPLOAD_TOKEN"):
        monkeypatch.delenv(name, raising=False)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(folder=names, catalog=st.one_of(st.none(), names), url_port=st.integers(1024, 65535))
def test_local_profile_both_sides_name_the_same_folders(
    tmp_path, monkeypatch, folder, catalog, url_port
):
    _clear(monkeypatch)
    data = tmp_path / folder
    monkeypatch.setenv("IMAGE_ASSETS_DATA_DIR", str(data))
    if catalog:
        monkeypatch.setenv("IMAGE_ASSETS_CATALOG_DB", str(tmp_path / f"{catalog}.duckdb"))
    monkeypatch.setenv("IMAGE_ASSETS_DELIVERY_URL", f"http://127.0.0.1:{url_port}")
    monkeypatch.setenv("IMAGE_ASSETS_DELIVERY_SECRET", "s3cret-for-settings")
    monkeypatch.setenv("IMAGE_ASSETS_UPLOAD_TOKEN", "token-for-settings")
    service = settings_from_env(PlatformSettings.from_env().delivery_url)
    with _initialized(build_resources()) as resources:
        assert Path(resources.cdn.local_root).resolve() == service.source.store.root
        assert resources.uploads.public().root == service.activated.root
        assert resources.uploads.area().root == service.uploads.incoming_dir.absolute()
        assert Path(resources.catalog.database).resolve() == service.catalog.db_path.resolve()
        assert resources.cdn.self_base_url == service.source.base_url
    expected = tmp_path / f"{catalog}.duckdb" if catalog else data.resolve() / "catalog.duckdb"
    assert service.catalog.db_path.resolve() == expected.resolve()


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cdn_bucket=names, cdn_prefix=prefixes, uploads_bucket=names)
def test_aws_profile_both_sides_name_the_same_buckets(
    aws_env, monkeypatch, cdn_bucket, cdn_prefix, uploads_bucket
):
    _clear(monkeypatch)
    monkeypatch.setenv("IMAGE_ASSETS_PROFILE", "aws")
    monkeypatch.setenv("IMAGE_ASSETS_CDN_BUCKET", cdn_bucket)
    if cdn_prefix:
        monkeypatch.setenv("IMAGE_ASSETS_CDN_PREFIX", cdn_prefix)
    monkeypatch.setenv("IMAGE_ASSETS_UPLOADS_BUCKET", uploads_bucket)
    monkeypatch.setenv("IMAGE_ASSETS_DELIVERY_SECRET", "s3cret-for-settings")
    monkeypatch.setenv("IMAGE_ASSETS_UPLOAD_TOKEN", "token-for-settings")
    service = settings_from_env("http://127.0.0.1:1")
    with _initialized(build_resources()) as resources:
        cdn = resources.cdn
        assert (cdn.s3_bucket, cdn.s3_prefix) == (
            service.source.store.bucket,
            service.source.store.prefix,
        )
        public = resources.uploads.public()
        assert (public.bucket, public.prefix) == (
            service.activated.bucket,
            service.activated.prefix,
        )
        _, bucket, prefix = service.uploads.s3
        assert (bucket, prefix) == (resources.uploads.bucket, resources.uploads.incoming_prefix)


def test_an_unknown_profile_is_one_line_on_both_sides(monkeypatch):
    monkeypatch.setenv("IMAGE_ASSETS_PROFILE", "gcp")
    for build in (build_resources, lambda: settings_from_env("http://127.0.0.1:1")):
        with pytest.raises(ValueError, match="IMAGE_ASSETS_PROFILE must be 'local' or 'aws'"):
            build()


def test_the_service_serves_a_master_and_an_activated_upload_from_s3_on_the_aws_profile(
    aws_env, monkeypatch
):
    """The aws profile's stores as the service builds them answer real requests (a
    store handed a client where it wants a client factory failed on first use)."""
    import functools
    import uuid

    import boto3
    from starlette.testclient import TestClient

    from image_assets.cdn.service import SelfCdn
    from image_assets.delivery.app import create_app
    from image_assets.demo.images import ImageSpec, render_image
    from image_assets.storage.s3 import S3BlobStore

    _clear(monkeypatch)
    bucket = f"cdn-{uuid.uuid4().hex[:8]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    monkeypatch.setenv("IMAGE_ASSETS_PROFILE", "aws")
    monkeypatch.setenv("IMAGE_ASSETS_CDN_BUCKET", bucket)
    monkeypatch.setenv("IMAGE_ASSETS_CDN_PREFIX", "masters")
    monkeypatch.setenv("IMAGE_ASSETS_DELIVERY_STRICT", "0")
    photo = render_image(ImageSpec("aws-served", 400, 300))
    factory = functools.partial(boto3.client, "s3")
    SelfCdn(S3BlobStore(factory, bucket, "masters"), "http://x").upload(
        photo, "kits/estes/e1", format="jpeg", sha256="e" * 64, width=400, height=300
    )
    S3BlobStore(factory, bucket, "uploads").put("20261203T000000_u1/master.jpg", photo)
    app = create_app(settings_from_env("http://testserver"))
    with TestClient(app) as client:
        master = client.get("/image/upload/c_limit,w_200/kits/estes/e1.jpg")
        upload = client.get("/image/upload/c_limit,w_100/uploads/20261203T000000_u1.jpg")
    assert master.status_code == 200 and master.headers["content-type"] == "image/jpeg"
    assert upload.status_code == 200, upload.text
