"""Batched deletion on every backend, against the real protocols: the strict
Cloudinary fake (Admin API batches of 100, the hourly limit, storage counted) and
moto in server mode (S3 DeleteObjects in batches of 1000, CloudFront invalidations)."""

from __future__ import annotations

import hashlib
import json
import uuid

import boto3
import pytest

from image_assets.cdn.cloudinary import CloudinaryCdn
from image_assets.cdn.credentials import from_cloudinary_url
from image_assets.cdn.local import LocalCdn
from image_assets.cdn.s3 import CloudFrontInvalidator, S3Cdn
from image_assets.demo.images import ImageSpec, render_image
from image_assets_tests.fake_cloudinary import FakeCloudinary


def _jpeg(seed: str) -> tuple[bytes, str]:
    data = render_image(ImageSpec(seed, 64, 48))
    return data, hashlib.sha256(data).hexdigest()


def _cloudinary(server: FakeCloudinary, **kwargs) -> CloudinaryCdn:
    return CloudinaryCdn(
        from_cloudinary_url(server.cloudinary_url), upload_prefix=server.url, **kwargs
    )


def test_cloudinary_deletes_in_batches_of_100_with_invalidate_and_storage_falls():
    server = FakeCloudinary().start()
    try:
        cdn = _cloudinary(server)
        data, sha = _jpeg("d1")
        assets = [
            cdn.upload(data, f"kits/estes/p{i:03d}", format="jpeg", sha256=sha) for i in range(230)
        ]
        before = server.usage()["storage"]["usage"]
        gone = [*assets[:205], assets[0].model_copy(update={"public_id": "kits/estes/never"})]
        report = cdn.delete_many(gone)
        assert report.calls == 3 and report.stopped is None and not report.failed
        assert sorted(report.deleted) == sorted(a.public_id for a in gone)  # not_found counts
        assert sorted(server.resources) == [a.public_id for a in assets[205:]]
        assert sum(server.invalidations.values()) == 205
        assert server.usage()["storage"]["usage"] == before * 25 // 230
        assert [r for r in server.requests if r.startswith("DELETE")] == [
            "DELETE /v1_1/demo-cloud/resources/image/upload"
        ] * 3
    finally:
        server.stop()


def test_cloudinary_stops_at_the_admin_limit_and_leaves_the_rest_for_the_next_run():
    server = FakeCloudinary(admin_limit=2).start()
    try:
        cdn = _cloudinary(server, max_wait=1.0)  # the limit resets in an hour: no waiting
        data, sha = _jpeg("d2")
        assets = [
            cdn.upload(data, f"kits/loc/p{i:03d}", format="jpeg", sha256=sha) for i in range(250)
        ]
        report = cdn.delete_many(assets)
        assert len(report.deleted) == 200 and report.stopped is not None
        assert "Rate Limit" in report.stopped or "420" in report.stopped, report.stopped
        assert len(server.resources) == 50 and server.admin_refused >= 1
        assert server.api_secret not in report.stopped
    finally:
        server.stop()


@pytest.fixture
def cloudfront(aws_env):
    client = boto3.client("cloudfront")
    bucket = f"cdn-{uuid.uuid4().hex[:8]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    distribution = client.create_distribution(
        DistributionConfig={
            "CallerReference": uuid.uuid4().hex,
            "Comment": "image-assets test",
            "Enabled": True,
            "Origins": {
                "Quantity": 1,
                "Items": [
                    {
                        "Id": "cdn",
                        "DomainName": f"{bucket}.s3.amazonaws.com",
                        "S3OriginConfig": {"OriginAccessIdentity": ""},
                    }
                ],
            },
            "DefaultCacheBehavior": {
                "TargetOriginId": "cdn",
                "ViewerProtocolPolicy": "redirect-to-https",
                "MinTTL": 0,
                "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}},
                "TrustedSigners": {"Enabled": False, "Quantity": 0},
            },
        }
    )["Distribution"]
    return client, distribution["Id"], bucket


def test_s3_deletes_in_batches_of_1000_and_invalidates_once_per_batch(cloudfront):
    client, distribution_id, bucket = cloudfront
    invalidator = CloudFrontInvalidator(client, distribution_id)
    cdn = S3Cdn(boto3.client("s3"), bucket, "cdn", invalidator=invalidator)
    data, sha = _jpeg("d3")
    assets = [
        cdn.upload(data, f"kits/estes/p{i:04d}", format="jpeg", sha256=sha) for i in range(1005)
    ]
    report = cdn.delete_many(
        [*assets[:1003], assets[0].model_copy(update={"public_id": "kits/x/n"})]
    )
    assert report.calls == 2 and not report.failed and len(report.deleted) == 1004
    left = boto3.client("s3").list_objects_v2(Bucket=bucket)["Contents"]
    assert sorted(o["Key"] for o in left) == [
        "cdn/kits/estes/p1003.jpg",
        "cdn/kits/estes/p1004.jpg",
    ]
    assert len(invalidator.sent) == 1  # one CreateInvalidation for the whole run
    batch = client.get_invalidation(DistributionId=distribution_id, Id=invalidator.sent[0])
    paths = batch["Invalidation"]["InvalidationBatch"]["Paths"]["Items"]
    assert len(paths) == 1004 and "/cdn/kits/estes/p0000.jpg" in paths


def test_the_invalidated_path_drops_the_origin_prefix():
    invalidator = CloudFrontInvalidator(None, "E123", origin_prefix="cdn")
    assert invalidator.path("cdn/kits/estes/p 1.jpg") == "/kits/estes/p%201.jpg"
    assert invalidator.path("other/kits/a.jpg") == "/other/kits/a.jpg"


def test_local_deletes_the_file_before_its_record(tmp_path):
    cdn = LocalCdn(str(tmp_path / "cdn"))
    data, sha = _jpeg("d4")
    kept = cdn.upload(data, "kits/estes/keep", format="jpeg", sha256=sha)
    gone = cdn.upload(data, "kits/estes/gone", format="jpeg", sha256=sha)
    report = cdn.delete_many([gone, gone.model_copy(update={"public_id": "kits/estes/never"})])
    assert sorted(report.deleted) == ["kits/estes/gone", "kits/estes/never"]
    assert cdn.lookup("kits/estes/gone") is None and cdn.lookup(kept.public_id) is not None
    assert sorted(p.name for p in (tmp_path / "cdn" / "kits" / "estes").iterdir()) == ["keep.jpg"]


def test_a_master_replaced_under_the_same_key_is_invalidated_once_per_publish_run(
    cloudfront, tmp_path
):
    """Item: no stale copy behind CloudFront. The first run uploads (nothing to purge);
    a run whose masters changed replaces them and sends one CreateInvalidation with
    exactly the replaced keys; a run that changes nothing sends none."""
    from image_assets.steps.publish import publish_images
    from image_assets_tests.test_cdn import _prepared

    client, distribution_id, bucket = cloudfront
    invalidator = CloudFrontInvalidator(client, distribution_id)
    cdn = S3Cdn(boto3.client("s3"), bucket, invalidator=invalidator)
    store, images, made = _prepared(tmp_path / "a", 3)
    publish_images("estes", images, made, store, [cdn], say=lambda m: None, warn=print)
    assert invalidator.sent == []  # first uploads: nothing cached anywhere yet
    publish_images("estes", images, made, store, [cdn], say=lambda m: None, warn=print)
    assert invalidator.sent == []  # unchanged: nothing replaced
    # two products get new photos under the same public ids
    changed_images, changed_made = [], []
    for image, rendition in list(zip(images, made, strict=True))[:2]:
        data, sha = _jpeg(f"new {image.product_id}")
        key = f"renditions/{sha}/master.jpg"
        store.put(key, data)
        changed_images.append(image.model_copy(update={"original_sha256": sha}))
        master = rendition.master.model_copy(update={"key": key, "sha256": sha, "bytes": len(data)})
        changed_made.append(rendition.model_copy(update={"original_sha256": sha, "master": master}))
    publish_images(
        "estes",
        [*changed_images, images[2]],
        [*changed_made, made[2]],
        store,
        [cdn],
        say=lambda m: None,
        warn=print,
    )
    (batch_id,) = invalidator.sent
    batch = client.get_invalidation(DistributionId=distribution_id, Id=batch_id)
    paths = batch["Invalidation"]["InvalidationBatch"]["Paths"]["Items"]
    assert sorted(paths) == ["/kits/estes/p000.jpg", "/kits/estes/p001.jpg"]


def test_housekeeping_on_s3_deletes_the_unreferenced_master_and_rendition_files_once(
    cloudfront, tmp_path
):
    """The step over moto: an S3 fallback holding 4 masters with a rendition file each;
    the CSVs name 2 of them (one through another manufacturer's shared pointer) and the
    S3 copy of a third lives on only because the CSV now points at Cloudinary. After
    the grace, exactly the unreferenced objects go, in one DeleteObjects and one
    CloudFront invalidation."""
    from datetime import date, timedelta

    from image_assets.cdn.ledger import read_ledger, write_ledger
    from image_assets.steps.housekeeping import housekeep
    from image_assets.storage import LocalBlobStore

    client, distribution_id, bucket = cloudfront
    invalidator = CloudFrontInvalidator(client, distribution_id)
    cdn = S3Cdn(boto3.client("s3"), bucket, invalidator=invalidator)
    ledgers, raw = LocalBlobStore(tmp_path / "images"), LocalBlobStore(tmp_path / "raw")
    data, sha = _jpeg("hk")
    held = {}
    for i in range(4):
        for public_id in (f"kits/estes/p{i}", f"kits/estes/p{i}/thumb-webp"):
            held[public_id] = cdn.upload(data, public_id, format="jpeg", sha256=sha)
    write_ledger(ledgers, cdn.ledger_name, "estes", held)

    def image(storage, public_id):
        return {"storage": storage, "public_id": public_id, "renditions": {"thumb-webp": "u"}}

    csv_header = "product_id,name,manufacturer,image,images\n"
    estes = [image("s3", "kits/estes/p0"), image("cloudinary", "kits/estes/p2")]
    loc = [image("s3", "kits/estes/p1")]  # loc's kit shares estes' photo
    for manufacturer, images in (("estes", estes), ("loc", loc)):
        rows = "".join(
            f'x{n},X,{manufacturer},u,"{json.dumps([i]).replace(chr(34), chr(34) * 2)}"\n'
            for n, i in enumerate(images)
        )
        raw.put(f"kits/{manufacturer}_kits.csv", (csv_header + rows).encode())
    today = date(2026, 6, 1)
    first = housekeep("estes", [cdn], ledgers, raw, today, max_share=1.0, say=lambda _: None)
    assert first.assets_deleted == 0 and first.retired_waiting == 4
    later = today + timedelta(days=30)
    done = housekeep("estes", [cdn], ledgers, raw, later, max_share=1.0, say=lambda _: None)
    gone = {
        "kits/estes/p2",
        "kits/estes/p2/thumb-webp",
        "kits/estes/p3",
        "kits/estes/p3/thumb-webp",
    }
    assert set(done.backends[0].deleted) == gone and done.bytes_freed == 4 * len(data)
    keys = {o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=bucket)["Contents"]}
    assert keys == {"kits/estes/p0.jpg", "kits/estes/p0/thumb-webp.jpg"} | {
        "kits/estes/p1.jpg",
        "kits/estes/p1/thumb-webp.jpg",
    }
    assert len(invalidator.sent) == 1
    assert set(read_ledger(ledgers, cdn.ledger_name, "estes")) == set(held) - gone
    again = housekeep("estes", [cdn], ledgers, raw, later, max_share=1.0, say=lambda _: None)
    assert again.assets_deleted == 0 and len(invalidator.sent) == 1


def test_the_cdn_resource_wires_cloudfront_from_its_settings(cloudfront, aws_env):
    from dagster_aws.s3 import S3Resource
    from dagster_aws.secretsmanager import SecretsManagerResource

    from image_assets.defs.resources import CdnResource

    client, distribution_id, bucket = cloudfront
    resource = CdnResource(
        backend="s3",
        fallback="none",
        s3_bucket=bucket,
        cloudfront_distribution_id=distribution_id,
        cloudfront_origin_path="cdn",
        s3=S3Resource(region_name="us-east-1", endpoint_url=aws_env),
        secrets=SecretsManagerResource(region_name="us-east-1", endpoint_url=aws_env),
    )
    (backend,), _ = resource.chain()
    assert isinstance(backend, S3Cdn) and backend.invalidator is not None
    backend.invalidator.invalidate(["cdn/kits/estes/a.jpg"])
    (sent,) = backend.invalidator.sent
    batch = client.get_invalidation(DistributionId=distribution_id, Id=sent)
    assert batch["Invalidation"]["InvalidationBatch"]["Paths"]["Items"] == ["/kits/estes/a.jpg"]
