"""CDN backends against real protocols: a Cloudinary-speaking server and moto in server mode."""

from __future__ import annotations

import hashlib
import json
import pickle
import urllib.request
import uuid

import boto3
import pytest

from image_assets.catalog.quality import quota_verdict
from image_assets.cdn.base import CdnError
from image_assets.cdn.cloudinary import CloudinaryCdn, quota_percentages, split_folder
from image_assets.cdn.credentials import (
    CredentialsUnavailable,
    from_cloudinary_url,
    from_secrets_manager,
)
from image_assets.cdn.s3 import S3Cdn
from image_assets.demo.images import ImageSpec, render_image
from image_assets.records import ImageRecord, ImageRenditions, RenditionFile
from image_assets.steps.publish import publish_images
from image_assets.storage import LocalBlobStore
from image_assets.storage.s3 import S3BlobStore


def _jpeg(seed: str) -> tuple[bytes, str]:
    data = render_image(ImageSpec(seed, 320, 240))
    return data, hashlib.sha256(data).hexdigest()


def _cloudinary(server, **kwargs) -> CloudinaryCdn:
    return CloudinaryCdn(
        from_cloudinary_url(server.cloudinary_url), upload_prefix=server.url, **kwargs
    )


def _bucket(name: str) -> str:
    bucket = f"{name}-{uuid.uuid4().hex[:8]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    return bucket


def test_split_folder_follows_the_kits_folder_layout():
    assert split_folder("kits/estes/est0001") == ("kits/estes", "est0001")
    assert split_folder("kits/estes/est0001/2") == ("kits/estes", "est0001/2")


def test_cloudinary_upload_lookup_delete_and_urls(fake_cloudinary):
    cdn = _cloudinary(fake_cloudinary)
    data, sha = _jpeg("c1")
    asset = cdn.upload(data, "kits/estes/est0001", format="jpeg", sha256=sha, width=320, height=240)
    assert asset.public_id == "kits/estes/est0001" and asset.storage == "cloudinary"
    assert asset.secure_url.startswith("https://res.cloudinary.com/demo-cloud/image/upload/v")
    assert fake_cloudinary.held_bytes("kits/estes/est0001") == data
    assert cdn.lookup("kits/estes/est0001").sha256 == sha
    assert cdn.lookup("kits/estes/missing") is None
    url = cdn.delivery_url("kits/estes/est0001", width=300, height=300, crop="fill")
    transformation = url.split("/image/upload/")[1].split("/")[0]
    assert set(transformation.split(",")) == {"c_fill", "f_auto", "q_auto", "w_300", "h_300"}
    assert cdn.delete("kits/estes/est0001") and cdn.lookup("kits/estes/est0001") is None


def test_wrong_secret_is_rejected_and_never_echoed(fake_cloudinary):
    wrong = fake_cloudinary.cloudinary_url.replace(fake_cloudinary.api_secret, "not-the-secret-xyz")
    cdn = CloudinaryCdn(from_cloudinary_url(wrong), upload_prefix=fake_cloudinary.url)
    data, sha = _jpeg("c2")
    with pytest.raises(CdnError) as info:
        cdn.upload(data, "kits/estes/x", format="jpeg", sha256=sha)
    assert fake_cloudinary.rejected == 1 and not fake_cloudinary.resources
    assert "not-the-secret-xyz" not in str(info.value) and fake_cloudinary.api_key not in str(
        info.value
    )
    assert "not-the-secret-xyz" not in repr(cdn) + repr(cdn.credentials)


def test_credentials_from_secrets_manager(aws_env):
    client = boto3.client("secretsmanager")
    name = f"blog-data/cloudinary/credentials-{uuid.uuid4().hex[:6]}"
    client.create_secret(
        Name=name,
        SecretString=json.dumps({"cloud_name": "c", "api_key": "k", "api_secret": "very-secret"}),
    )
    creds = from_secrets_manager(client, name)
    assert creds.cloud_name == "c" and creds.api_secret.get_secret_value() == "very-secret"
    assert "very-secret" not in repr(creds) and "very-secret" not in str(creds.model_dump())
    with pytest.raises(CredentialsUnavailable, match="ResourceNotFoundException"):
        from_secrets_manager(client, "no/such/secret")
    client.create_secret(Name=name + "-bad", SecretString="not json")
    with pytest.raises(CredentialsUnavailable, match="is not JSON"):
        from_secrets_manager(client, name + "-bad")


def test_s3_cdn_headers_urls_and_idempotent_lookup(aws_env):
    bucket = _bucket("cdn")
    client = boto3.client("s3")
    cdn = S3Cdn(
        client,
        bucket,
        "public",
        public_base_url="https://d111.cloudfront.net",
        cache_control="public, max-age=31536000, immutable",
    )
    data, sha = _jpeg("s1")
    asset = cdn.upload(data, "kits/loc/loc0001", format="jpeg", sha256=sha, width=320, height=240)
    assert asset.url == "https://d111.cloudfront.net/public/kits/loc/loc0001.jpg"
    head = client.head_object(Bucket=bucket, Key="public/kits/loc/loc0001.jpg")
    assert (
        head["ContentType"] == "image/jpeg"
        and head["CacheControl"] == "public, max-age=31536000, immutable"
    )
    held = cdn.lookup("kits/loc/loc0001", "jpeg")
    assert (
        held.sha256 == sha and held.bytes == len(data) and (held.width, held.height) == (320, 240)
    )
    # without CloudFront: the bucket's own URL, stable and never presigned; it opens
    # once the bucket lets anyone read (S3 refuses anonymous reads otherwise)
    client.put_bucket_policy(Bucket=bucket, Policy=json.dumps(public_read_policy(bucket)))
    public = S3Cdn(client, bucket, "public")
    url = public.lookup("kits/loc/loc0001").url
    assert url == f"{aws_env}/{bucket}/public/kits/loc/loc0001.jpg"
    assert public.lookup("kits/loc/loc0001").url == url and "Signature" not in url
    with urllib.request.urlopen(url) as answer:
        assert answer.read() == data
    # a private bucket: s3:// links in the catalogue; a presigned link only on request
    private = S3Cdn(client, bucket, "public", access="private")
    held = private.lookup("kits/loc/loc0001")
    assert held.url == held.secure_url == f"s3://{bucket}/public/kits/loc/loc0001.jpg"
    with urllib.request.urlopen(private.presigned_url("kits/loc/loc0001", "jpeg")) as answer:
        assert answer.read() == data
    # the AWS endpoint gives the virtual-hosted URL
    aws = S3Cdn(
        boto3.client(
            "s3", endpoint_url="https://s3.eu-west-1.amazonaws.com", region_name="eu-west-1"
        ),
        "my-cdn",
    )
    assert aws.bucket_url() == "https://my-cdn.s3.eu-west-1.amazonaws.com"
    assert cdn.delete("kits/loc/loc0001") and cdn.lookup("kits/loc/loc0001") is None


def public_read_policy(bucket: str) -> dict:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "PublicRead",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{bucket}/*",
            }
        ],
    }


def test_s3_overwrite_false_never_replaces_and_inventory_lists_in_bulk(aws_env):
    bucket = _bucket("cond")
    cdn = S3Cdn(boto3.client("s3"), bucket, "p")
    first, sha1 = _jpeg("k1")
    second, sha2 = _jpeg("k2")
    cdn.upload(first, "kits/loc/a", format="jpeg", sha256=sha1)
    kept = cdn.upload(second, "kits/loc/a", format="jpeg", sha256=sha2, overwrite=False)
    assert kept.sha256 == sha1  # the conditional PUT was refused: the first bytes stay
    body = boto3.client("s3").get_object(Bucket=bucket, Key="p/kits/loc/a.jpg")["Body"].read()
    assert body == first
    cdn.upload(second, "kits/loc/a", format="jpeg", sha256=sha2, overwrite=True)
    cdn.upload(first, "kits/loc/b/w800-webp", format="jpeg", sha256=sha1)
    cdn.upload(first, "kits/estes/c", format="jpeg", sha256=sha1)
    listed = cdn.inventory("kits/loc/")
    assert sorted(listed) == ["kits/loc/a", "kits/loc/b/w800-webp"]
    assert listed["kits/loc/a"].etag == hashlib.md5(second).hexdigest()
    assert listed["kits/loc/a"].bytes == len(second) and listed["kits/loc/a"].sha256 == ""


def test_s3_blob_store_round_trip_and_pickles(aws_env):
    import functools

    bucket = _bucket("raw")
    store = S3BlobStore(functools.partial(boto3.client, "s3"), bucket, "p")
    store.put("kits/estes_kits.csv", b"a,b\n", "text/csv")
    assert store.get("kits/estes_kits.csv") == b"a,b\n" and store.exists("kits/estes_kits.csv")
    assert list(store.list("kits")) == ["kits/estes_kits.csv"]
    clone = pickle.loads(pickle.dumps(store))
    assert clone.get("kits/estes_kits.csv") == b"a,b\n"
    assert store.uri("kits/x") == f"s3://{bucket}/p/kits/x"
    assert store.delete("kits/estes_kits.csv") and not store.exists("kits/estes_kits.csv")


def _prepared(tmp_path, count: int):
    """``count`` images with masters in a local image store, as the renditions step leaves them."""
    store = LocalBlobStore(tmp_path)
    images, made = [], []
    for i in range(count):
        data, sha = _jpeg(f"f{i}")
        key = f"renditions/{sha}/master.jpg"
        store.put(key, data)
        pid = f"p{i:03d}"
        images.append(
            ImageRecord(
                product_id=pid,
                position=1,
                source_url=f"https://x/{i}",
                status="ok",
                original_sha256=sha,
            )
        )
        made.append(
            ImageRenditions(
                product_id=pid,
                position=1,
                original_sha256=sha,
                master=RenditionFile(
                    name="master",
                    format="jpeg",
                    width=320,
                    height=240,
                    bytes=len(data),
                    key=key,
                    sha256=sha,
                ),
            )
        )
    return store, images, made


def test_fault_injection_retries_falls_back_and_never_uploads_twice(
    fake_cloudinary, aws_env, tmp_path
):
    store, images, made = _prepared(tmp_path, 30)

    def plan(action, public_id, attempt):
        n = int(public_id[-3:])
        if n % 5 == 0:
            return ("status", 429)  # rate limited every time: falls back to S3
        if n % 5 == 1 and attempt == 1:
            return ("status", 500)  # a server error once: the retry succeeds
        if n % 5 == 2 and attempt == 1:
            return ("sleep", 1.0)  # slower than the client's timeout, but it lands
        return None

    fake_cloudinary.faults = plan
    bucket = _bucket("fallback")
    chain = [
        _cloudinary(fake_cloudinary, timeout=0.7, backoff=0.01),
        S3Cdn(boto3.client("s3"), bucket, public_base_url="https://cdn.example"),
    ]
    warnings: list[str] = []
    uploads, stats = publish_images(
        "estes", images, made, store, chain, say=lambda m: None, warn=warnings.append
    )
    assert stats.failed == 0 and len(uploads) == 30  # every product accounted for
    # why each image fell back reaches the caller's log (the run's event log), once each
    assert len(warnings) == 6 and all("published on s3 (fallback)" in w for w in warnings)
    assert all("cloudinary" in w and "RateLimited" in w for w in warnings)
    where = {u.product_id: u.asset.storage for u in uploads}
    assert [pid for pid, s in where.items() if s == "s3"] == [f"p{i:03d}" for i in range(0, 30, 5)]
    assert stats.fallback == 6 and stats.by_storage == {"cloudinary": 24, "s3": 6}
    assert all(n == 1 for n in fake_cloudinary.stored.values())  # nothing stored twice
    assert len(fake_cloudinary.stored) == 24

    # a re-run uploads nothing anywhere
    before = dict(fake_cloudinary.stored)
    s3_objects = boto3.client("s3").list_objects_v2(Bucket=bucket)["KeyCount"]
    _again, stats2 = publish_images("estes", images, made, store, chain, say=lambda m: None)
    assert stats2.uploaded == 0 and stats2.unchanged == 30 and stats2.failed == 0
    assert stats2.fallback == 0  # counts what this run sent to a fallback: nothing
    assert dict(fake_cloudinary.stored) == before
    assert boto3.client("s3").list_objects_v2(Bucket=bucket)["KeyCount"] == s3_objects


def test_all_backends_failing_keeps_a_failed_record(fake_cloudinary, tmp_path):
    store, images, made = _prepared(tmp_path, 3)
    fake_cloudinary.faults = lambda action, public_id, attempt: ("status", 503)
    warnings: list[str] = []
    uploads, stats = publish_images(
        "estes",
        images,
        made,
        store,
        [_cloudinary(fake_cloudinary, max_retries=1, backoff=0.01)],
        say=lambda m: None,
        warn=warnings.append,
    )
    assert stats.failed == 3 and all(
        u.asset is None and "upload failed" in u.reason for u in uploads
    )
    assert len(warnings) == 3 and all("not published: upload failed" in w for w in warnings)


def test_quota_percentages_and_verdicts():
    credit_plan = {
        "storage": {"usage": 1, "credits_usage": 20.5},
        "bandwidth": {"credits_usage": 1.0},
        "credits": {"usage": 21.5, "limit": 25, "used_percent": 86.0},
    }
    assert quota_percentages(credit_plan) == {"storage": 82.0, "bandwidth": 4.0, "credits": 86.0}
    legacy = {
        "storage": {"usage": 96, "limit": 100},
        "transformations": {"usage": 10, "limit": 100, "used_percent": 10.0},
    }
    assert quota_percentages(legacy) == {"storage": 96.0, "transformations": 10.0}
    assert quota_verdict({"storage": 50.0})[0] == "ok"
    assert quota_verdict({"storage": 80.0, "credits": 10.0})[0] == "warn"
    level, summary = quota_verdict(quota_percentages(legacy))
    assert level == "fail" and "storage at 96.0%" in summary
    assert quota_verdict({})[0] == "ok"


def test_local_cdn_round_trip(tmp_path):
    from image_assets.cdn.local import LocalCdn

    cdn = LocalCdn(str(tmp_path), "https://static.example/cdn")
    data, sha = _jpeg("l1")
    asset = cdn.upload(data, "kits/estes/est0001", format="jpeg", sha256=sha, width=320, height=240)
    assert asset.secure_url == "https://static.example/cdn/kits/estes/est0001.jpg"
    assert (tmp_path / "kits/estes/est0001.jpg").read_bytes() == data
    assert cdn.lookup("kits/estes/est0001").sha256 == sha
    assert cdn.delivery_url("kits/estes/est0001", width=300) == asset.secure_url
    png = render_image(ImageSpec("l2", 64, 64, format="PNG"))
    cdn.upload(
        png, "kits/estes/est0001", format="png", sha256="x"
    )  # a format change replaces the file
    assert (
        not (tmp_path / "kits/estes/est0001.jpg").exists()
        and (tmp_path / "kits/estes/est0001.png").exists()
    )
    assert cdn.delete("kits/estes/est0001") and cdn.lookup("kits/estes/est0001") is None
    with pytest.raises(KeyError):
        cdn.delivery_url("kits/estes/est0001")
