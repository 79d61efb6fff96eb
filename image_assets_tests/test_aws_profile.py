"""The whole graph in the `aws` profile: S3 buckets and Secrets Manager on moto (server mode),
Cloudinary through the official SDK against a local Cloudinary-speaking server."""

from __future__ import annotations

import json
import uuid

import boto3
import duckdb
import pytest
from dagster import DagsterInstance, materialize

from image_assets.catalog.kits_csv import parse_csv
from image_assets.defs.catalog.assets import clean_kits
from image_assets.defs.profiles import build_resources
from image_assets.defs.vendors.assets import assets as vendor_assets
from image_assets.defs.vendors.checks import checks
from image_assets_tests.metadata import plain

VENDORS = ["estes", "loc", "rocketarium"]


@pytest.fixture
def aws_profile(aws_env, fake_cloudinary, demo_server, monkeypatch, tmp_path):
    s3 = boto3.client("s3")
    names = {}
    for role in ("raw", "images", "cdn"):
        names[role] = f"{role}-{uuid.uuid4().hex[:8]}"
        s3.create_bucket(Bucket=names[role])
    secret_name = f"blog-data/cloudinary/credentials-{uuid.uuid4().hex[:6]}"
    boto3.client("secretsmanager").create_secret(
        Name=secret_name,
        SecretString=json.dumps(
            {
                "cloud_name": fake_cloudinary.cloud_name,
                "api_key": fake_cloudinary.api_key,
                "api_secret": fake_cloudinary.api_secret,
            }
        ),
    )
    env = {
        "IMAGE_ASSETS_PROFILE": "aws",
        "IMAGE_ASSETS_RAW_BUCKET": names["raw"],
        "IMAGE_ASSETS_IMAGES_BUCKET": names["images"],
        "IMAGE_ASSETS_CDN_BUCKET": names["cdn"],
        "IMAGE_ASSETS_CDN_PUBLIC_URL": "https://d111.cloudfront.net",
        "CLOUDINARY_SECRET_NAME": secret_name,
        "CLOUDINARY_UPLOAD_PREFIX": fake_cloudinary.url,
        "IMAGE_ASSETS_CATALOG_DB": str(tmp_path / "catalog.duckdb"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("CLOUDINARY_URL", raising=False)
    (tmp_path / "home").mkdir()
    return {
        "buckets": names,
        "secret_name": secret_name,
        "tmp": tmp_path,
        "cloudinary": fake_cloudinary,
    }


def _run_all(tmp_path):
    runs = []
    with DagsterInstance.local_temp(str(tmp_path / "home")) as instance:
        for vendor in VENDORS:
            runs.append(
                materialize(
                    [*vendor_assets, *checks],
                    partition_key=vendor,
                    resources=build_resources(str(tmp_path / "data")),
                    instance=instance,
                )
            )
        runs.append(
            materialize(
                [*vendor_assets, clean_kits],
                selection=[clean_kits],
                resources=build_resources(str(tmp_path / "data")),
                instance=instance,
            )
        )
        logs = "\n".join(
            str(entry.to_json() if hasattr(entry, "to_json") else entry)
            for run in runs
            for entry in instance.all_logs(run.run_id)
        )
    return runs, logs


def _csv(bucket: str, vendor: str) -> list[dict]:
    body = (
        boto3.client("s3").get_object(Bucket=bucket, Key=f"kits/{vendor}_kits.csv")["Body"].read()
    )
    return parse_csv(body)


def test_aws_profile_end_to_end(aws_profile, demo_server, monkeypatch):
    monkeypatch.setenv("IMAGE_ASSETS_TAGGER", "rekognition")  # labels from moto's Rekognition
    runs, logs = _run_all(aws_profile["tmp"])
    assert all(r.success for r in runs)
    for run in runs[: len(VENDORS)]:
        (tags,) = run.asset_materializations_for_node("image_tags")
        assert plain(tags.metadata)["tagger"] == "rekognition"
        assert set(plain(tags.metadata)["labels"]) == {"ok"}  # every rendered image labelled
    cloud = aws_profile["cloudinary"]
    total = 0
    for vendor, run in zip(VENDORS, runs, strict=False):
        rows = _csv(aws_profile["buckets"]["raw"], vendor)
        total += len(rows)
        assert len(rows) == len(demo_server.httpd.sites.products[vendor])
        images = [i for r in rows for i in json.loads(r["images"])]
        assert images and {i["storage"] for i in images} == {"cloudinary"}
        for image in images:
            assert image["secure_url"].startswith(
                f"https://res.cloudinary.com/{cloud.cloud_name}/image/upload/"
            )
            assert image["public_id"] in cloud.resources
            thumb = image["renditions"]["thumb_300.webp"]  # a transformation URL from the SDK
            transformation = thumb.split("/image/upload/")[1].split("/")[0]
            assert set(transformation.split(",")) == {
                "c_fill",
                "f_webp",
                "h_300",
                "q_auto",
                "w_300",
            }
            w800 = image["renditions"]["w800.jpeg"].split("/image/upload/")[1].split("/")[0]
            assert "c_limit" in w800 and "f_jpg" in w800
        (mat,) = run.asset_materializations_for_node("cdn_uploads")
        assert (
            "quota_credits_percent" in mat.metadata
            and mat.metadata["backends"].value == "cloudinary, s3"
        )
        quota = [
            e
            for e in run.all_events
            if e.event_type_value == "ASSET_CHECK_EVALUATION"
            and e.asset_check_evaluation_data.check_name == "cloudinary_quota"
        ]
        assert quota and quota[0].asset_check_evaluation_data.passed
        readings = quota[0].asset_check_evaluation_data.metadata["quota_readings"].value
        assert readings >= 1  # the account's readings so far feed the usage trend
    # originals and renditions live in the private images bucket, not on the CDN
    assert (
        boto3.client("s3").list_objects_v2(
            Bucket=aws_profile["buckets"]["images"], Prefix="originals/"
        )["KeyCount"]
        > 0
    )
    with duckdb.connect(str(aws_profile["tmp"] / "catalog.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from clean_kits").fetchone()[0] == total
    assert all(n == 1 for n in cloud.stored.values()) and cloud.rejected == 0
    # the API secret appears nowhere: event logs, metadata, state written to S3
    secret = cloud.api_secret
    assert secret not in logs
    raw = aws_profile["buckets"]["raw"]
    for item in boto3.client("s3").list_objects_v2(Bucket=raw)["Contents"]:
        assert (
            secret.encode()
            not in boto3.client("s3").get_object(Bucket=raw, Key=item["Key"])["Body"].read()
        )

    # a re-run uploads nothing and keeps the CSVs byte for byte
    before = {
        v: boto3.client("s3").get_object(Bucket=raw, Key=f"kits/{v}_kits.csv")["Body"].read()
        for v in VENDORS
    }
    stored = dict(cloud.stored)
    runs, _ = _run_all(aws_profile["tmp"])
    for run in runs[:3]:
        (mat,) = run.asset_materializations_for_node("cdn_uploads")
        assert mat.metadata["images_uploaded"].value == 0
    assert dict(cloud.stored) == stored
    assert {
        v: boto3.client("s3").get_object(Bucket=raw, Key=f"kits/{v}_kits.csv")["Body"].read()
        for v in VENDORS
    } == before


def test_missing_credentials_fall_back_to_s3(aws_profile, monkeypatch):
    monkeypatch.setenv("CLOUDINARY_SECRET_NAME", "no/such/secret")
    tmp = aws_profile["tmp"]
    with DagsterInstance.local_temp(str(tmp / "home")) as instance:
        run = materialize(
            vendor_assets,
            partition_key="loc",
            resources=build_resources(str(tmp / "data")),
            instance=instance,
        )
        assert run.success
        warnings = [
            e.message
            for e in instance.all_logs(run.run_id)
            if "Cloudinary credentials unavailable" in (e.message or "")
        ]
    assert len(warnings) == 1  # warned once, not once per image
    rows = _csv(aws_profile["buckets"]["raw"], "loc")
    images = [i for r in rows for i in json.loads(r["images"])]
    assert images and {i["storage"] for i in images} == {"s3"}
    assert all(i["url"].startswith("https://d111.cloudfront.net/") for i in images)
    assert all(
        i["s3_url"].startswith(f"s3://{aws_profile['buckets']['cdn']}/kits/loc/") for i in images
    )
    assert not aws_profile["cloudinary"].resources


def _run_loc(tmp_path):
    with DagsterInstance.local_temp(str(tmp_path / "home")) as instance:
        run = materialize(
            vendor_assets,
            partition_key="loc",
            resources=build_resources(str(tmp_path / "data")),
            instance=instance,
        )
    assert run.success
    (mat,) = run.asset_materializations_for_node("cdn_uploads")
    return plain(mat.metadata)


def test_csvs_are_byte_identical_across_runs_also_after_a_fallback(aws_profile):
    """Cloudinary refuses loc's uploads: they fall back to S3 with stable CloudFront URLs,
    and a second run changes nothing. Healthy again, they return to Cloudinary, and the
    run after that changes nothing either."""
    cloud, tmp = aws_profile["cloudinary"], aws_profile["tmp"]
    raw, s3 = aws_profile["buckets"]["raw"], boto3.client("s3")

    def csv() -> bytes:
        return s3.get_object(Bucket=raw, Key="kits/loc_kits.csv")["Body"].read()

    cloud.faults = lambda action, public_id, attempt: ("status", 503)
    first = _run_loc(tmp)
    assert first["fallback_uploads"] > 0 and first["images_by_storage"] == {
        "s3": first["fallback_uploads"]
    }
    fallen = csv()
    assert b"https://d111.cloudfront.net/kits/loc/" in fallen and b"Signature" not in fallen
    second = _run_loc(tmp)
    assert second["images_uploaded"] == 0 and second["fallback_uploads"] == 0
    assert csv() == fallen

    cloud.faults = None
    third = _run_loc(tmp)
    assert third["returned_to_primary"] == first["fallback_uploads"]
    assert third["images_by_storage"] == {"cloudinary": first["fallback_uploads"]}
    back = csv()
    assert back != fallen and b"res.cloudinary.com" in back
    fourth = _run_loc(tmp)
    assert fourth["images_uploaded"] == 0 and csv() == back
    assert all(n == 1 for n in cloud.stored.values()) and not cloud.invalidations
