"""What is on the CDN, known without one Admin API call per image; rate limits honoured.

Against the strict Cloudinary-speaking server (``fake_cloudinary.py``), which
enforces overwrite/invalidate, SHA-256 signatures, array parameters, 429 with
Retry-After and the Admin API's hourly budget (420 with X-FeatureRateLimit-*).
"""

from __future__ import annotations

import time

import boto3
import cloudinary.api
import cloudinary.uploader
import pytest

from image_assets.cdn.base import CdnError
from image_assets.cdn.credentials import from_cloudinary_url
from image_assets.cdn.ledger import read_ledger
from image_assets.cdn.local import LocalCdn
from image_assets.cdn.s3 import S3Cdn
from image_assets.imaging.config import OutputFormat, RenditionSpec
from image_assets.records import ImageRenditions, RenditionFile
from image_assets.steps.publish import publish_images
from image_assets_tests.test_cdn import _bucket, _cloudinary, _jpeg, _prepared

QUIET = {"say": lambda m: None}


def _admin_lookups(server) -> list[str]:
    """Per-image Admin API lookups (GET resources/image/upload/<public id>)."""
    prefix = f"GET /v1_1/{server.cloud_name}/resources/image/upload/"
    return [r for r in server.requests if r.startswith(prefix)]


# ------------------------------------------------------------------ the fake is strict


def test_the_fake_checks_sha256_signatures_and_refuses_sha1_on_a_sha256_account():
    from image_assets_tests.fake_cloudinary import FakeCloudinary

    server = FakeCloudinary(signature_algorithm="sha256").start()
    try:
        data, sha = _jpeg("sig")
        good = _cloudinary(server)  # the URL carries ?signature_algorithm=sha256
        assert good.credentials.signature_algorithm == "sha256"
        good.upload(data, "kits/estes/a", format="jpeg", sha256=sha)
        sha1 = from_cloudinary_url(server.cloudinary_url.split("?")[0])
        wrong = type(good)(sha1, upload_prefix=server.url, max_retries=0)
        with pytest.raises(CdnError) as info:
            wrong.upload(data, "kits/estes/b", format="jpeg", sha256=sha)
        assert "Invalid Signature" in str(info.value) and server.rejected == 1
        assert set(server.resources) == {"kits/estes/a"}
    finally:
        server.stop()


def test_the_fake_takes_array_parameters_signed_as_lists(fake_cloudinary):
    cdn = _cloudinary(fake_cloudinary)
    for name in ("a", "b", "c"):
        data, sha = _jpeg(name)
        cdn.upload(data, f"kits/estes/{name}", format="jpeg", sha256=sha)
    options = cdn._options()
    # Upload API: public_ids[] repeated, signed as "public_ids=a,b"
    cloudinary.uploader.add_tag("sale", ["kits/estes/a", "kits/estes/b"], **options)
    assert [fake_cloudinary.resources[f"kits/estes/{n}"]["tags"] for n in "abc"] == [
        ["sale"],
        ["sale"],
        [],
    ]
    # Admin API: public_ids[] in the query string
    found = cloudinary.api.resources_by_ids(["kits/estes/a", "kits/estes/c"], **options)
    assert sorted(r["public_id"] for r in found["resources"]) == ["kits/estes/a", "kits/estes/c"]
    with pytest.raises(cloudinary.exceptions.BadRequest):
        cloudinary.api.resources(type="upload", prefix="kits/", max_results=501, **options)


def test_overwrite_false_keeps_the_held_asset_and_replacing_needs_invalidate(fake_cloudinary):
    cdn = _cloudinary(fake_cloudinary)
    first, sha1 = _jpeg("o1")
    second, sha2 = _jpeg("o2")
    cdn.upload(first, "kits/estes/x", format="jpeg", sha256=sha1)
    kept = cdn.upload(second, "kits/estes/x", format="jpeg", sha256=sha2, overwrite=False)
    assert fake_cloudinary.held_bytes("kits/estes/x") == first  # real Cloudinary keeps it
    assert kept.sha256 == sha1 and fake_cloudinary.kept_existing["kits/estes/x"] == 1
    cdn.upload(second, "kits/estes/x", format="jpeg", sha256=sha2, overwrite=True)
    assert "kits/estes/x" in fake_cloudinary.stale_cache  # replaced, cached copies not purged
    cdn.upload(first, "kits/estes/x", format="jpeg", sha256=sha1, invalidate=True)
    assert not fake_cloudinary.stale_cache and fake_cloudinary.invalidations["kits/estes/x"] == 1


# ------------------------------------------------------------------ rate limits


def test_retry_after_on_a_429_is_waited_for_in_full(fake_cloudinary, tmp_path):
    """Retries at +0.6/+1.7/+4.2 s sent every image with Retry-After over ~4 s to the
    fallback; now the wait asked for is the wait made."""
    store, images, made = _prepared(tmp_path, 1)
    fake_cloudinary.retry_after = 5
    fake_cloudinary.faults = lambda action, pid, attempt: ("status", 429) if attempt == 1 else None
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    chain = [_cloudinary(fake_cloudinary, sleep=sleep), LocalCdn(str(tmp_path / "cdn"))]
    published, stats = publish_images("estes", images, made, store, chain, **QUIET)
    assert published[0].asset.storage == "cloudinary" and stats.fallback == 0
    assert waits == [5.0] and fake_cloudinary.early_retries == 0


def test_a_wait_longer_than_allowed_goes_to_the_fallback_without_an_early_retry(
    fake_cloudinary, tmp_path
):
    store, images, made = _prepared(tmp_path, 2)
    fake_cloudinary.retry_after = 120
    fake_cloudinary.faults = lambda action, pid, attempt: ("status", 429)
    warnings: list[str] = []
    chain = [_cloudinary(fake_cloudinary, max_wait=30), LocalCdn(str(tmp_path / "cdn"))]
    published, stats = publish_images(
        "estes", images, made, store, chain, warn=warnings.append, **QUIET
    )
    assert {p.asset.storage for p in published} == {"local"} and stats.fallback == 2
    assert fake_cloudinary.early_retries == 0 and set(fake_cloudinary.attempts.values()) == {1}
    assert all("asked to wait 120s" in w for w in warnings if "fallback" in w)


def test_a_rate_limited_admin_api_causes_no_re_upload(fake_cloudinary, tmp_path):
    """The Admin API's hourly budget runs out (420 + X-FeatureRateLimit-*): a re-run
    trusts the ledger of upload answers, uploads nothing and purges nothing."""
    store, images, made = _prepared(tmp_path, 33)
    cdn = _cloudinary(fake_cloudinary, backoff=0.01, max_wait=5)
    first, stats = publish_images("estes", images, made, store, [cdn], **QUIET)
    assert stats.uploaded == 33 and stats.listings == {"cloudinary": "listed 0"}
    assert _admin_lookups(fake_cloudinary) == []  # no lookup per image, ever
    assert fake_cloudinary.admin_calls == 1  # one listing for the folder
    assert not fake_cloudinary.invalidations  # nothing replaced, nothing to purge
    ledger = read_ledger(store, cdn.ledger_name, "estes")
    assert len(ledger) == 33 and all(a.etag for a in ledger.values())

    fake_cloudinary.admin_limit = fake_cloudinary.admin_calls  # budget spent for the hour
    stored = dict(fake_cloudinary.stored)
    warnings: list[str] = []
    again, stats2 = publish_images(
        "estes", images, made, store, [cdn], warn=warnings.append, **QUIET
    )
    assert fake_cloudinary.admin_refused >= 1  # the listing met the 420
    assert stats2.listings == {"cloudinary": "unknown"}
    assert stats2.uploaded == 0 and stats2.unchanged == 33 and stats2.failed == 0
    assert dict(fake_cloudinary.stored) == stored and not fake_cloudinary.invalidations
    assert [p.asset for p in again] == [p.asset for p in first]
    assert len(warnings) == 1 and "unknown" in warnings[0] and "Rate Limit" in warnings[0]


def test_unknown_state_without_a_ledger_never_replaces_what_it_has_not_seen(
    fake_cloudinary, tmp_path
):
    """No ledger (a new image store) and the listing refused: uploads go with
    overwrite=false; identical bytes already there are kept, not stored again."""
    store, images, made = _prepared(tmp_path / "a", 5)
    cdn = _cloudinary(fake_cloudinary, backoff=0.01, max_wait=5)
    publish_images("estes", images, made, store, [cdn], **QUIET)
    stored = dict(fake_cloudinary.stored)
    fake_cloudinary.admin_limit = 0
    fresh, images2, made2 = _prepared(tmp_path / "b", 5)  # same bytes, no ledger
    published, stats = publish_images("estes", images2, made2, fresh, [cdn], **QUIET)
    assert stats.failed == 0 and dict(fake_cloudinary.stored) == stored
    assert sum(fake_cloudinary.kept_existing.values()) == 5
    assert not fake_cloudinary.invalidations and not fake_cloudinary.stale_cache
    assert all(p.asset.storage == "cloudinary" for p in published)


def test_changed_bytes_replace_the_asset_and_purge_cached_copies(fake_cloudinary, tmp_path):
    store, images, made = _prepared(tmp_path, 3)
    cdn = _cloudinary(fake_cloudinary)
    publish_images("estes", images, made, store, [cdn], **QUIET)
    data, sha = _jpeg("changed")
    store.put(made[1].master.key, data)
    changed = made[1].master.model_copy(update={"sha256": sha, "bytes": len(data)})
    made[1] = made[1].model_copy(update={"master": changed})
    published, stats = publish_images("estes", images, made, store, [cdn], **QUIET)
    assert stats.uploaded == 1 and stats.unchanged == 2
    assert fake_cloudinary.held_bytes(published[1].asset.public_id) == data
    assert dict(fake_cloudinary.invalidations) == {published[1].asset.public_id: 1}
    assert not fake_cloudinary.stale_cache


# ------------------------------------------------------------------ fallback and back


def test_images_return_from_the_fallback_on_a_healthy_run(fake_cloudinary, aws_env, tmp_path):
    store, images, made = _prepared(tmp_path, 6)
    bucket = _bucket("back")
    s3 = S3Cdn(boto3.client("s3"), bucket, public_base_url="https://d111.cloudfront.net")
    chain = [_cloudinary(fake_cloudinary, max_retries=1, backoff=0.01), s3]
    fake_cloudinary.faults = lambda action, pid, attempt: ("status", 503)
    down, stats = publish_images("estes", images, made, store, chain, **QUIET)
    assert stats.fallback == 6 and {p.asset.storage for p in down} == {"s3"}

    # still down: kept on S3 (nothing sent again), the same stable URLs
    s3_puts = boto3.client("s3").list_objects_v2(Bucket=bucket)["KeyCount"]
    warnings: list[str] = []
    still, stats2 = publish_images(
        "estes", images, made, store, chain, warn=warnings.append, **QUIET
    )
    assert stats2.unchanged == 6 and stats2.fallback == 0 and stats2.uploaded == 0
    assert [p.asset for p in still] == [p.asset for p in down]
    assert all(p.asset.url.startswith("https://d111.cloudfront.net/kits/estes/") for p in still)
    assert len(warnings) == 6 and all("kept on s3 (fallback)" in w for w in warnings)
    assert boto3.client("s3").list_objects_v2(Bucket=bucket)["KeyCount"] == s3_puts

    # healthy again: every image goes back to Cloudinary
    fake_cloudinary.faults = None
    back, stats3 = publish_images("estes", images, made, store, chain, **QUIET)
    assert {p.asset.storage for p in back} == {"cloudinary"}
    assert stats3.uploaded == 6 and stats3.returned_to_primary == 6 and stats3.fallback == 0
    _, stats4 = publish_images("estes", images, made, store, chain, **QUIET)
    assert stats4.uploaded == 0 and stats4.returned_to_primary == 0


def test_rendition_urls_ask_for_the_configured_box_not_the_produced_size(fake_cloudinary, tmp_path):
    store, images, made = _prepared(tmp_path, 1)
    master = made[0].master
    small = RenditionFile(  # a 320 px source: "w1600" could only be made 320 wide
        name="w1600", format="webp", width=320, height=240, bytes=1, key=master.key, sha256="0"
    )
    made[0] = ImageRenditions.model_validate(made[0].model_dump() | {"renditions": [small]})
    spec = RenditionSpec(name="w1600", width=1600, formats=[OutputFormat(format="webp")])
    published, _ = publish_images(
        "estes", images, made, store, [_cloudinary(fake_cloudinary)], specs={"w1600": spec}, **QUIET
    )
    url = published[0].renditions["w1600.webp"]
    assert set(url.split("/image/upload/")[1].split("/")[0].split(",")) == {
        "c_limit",
        "f_webp",
        "q_auto",
        "w_1600",
    }


def test_s3_renditions_are_known_from_the_listing_not_one_head_each(aws_env, tmp_path):
    store, images, made = _prepared(tmp_path, 4)
    for i, one in enumerate(made):
        data, sha = _jpeg(f"r{i}")
        key = f"renditions/{sha}/w300.jpg"
        store.put(key, data)
        extra = RenditionFile(
            name="w300", format="jpeg", width=300, height=225, bytes=len(data), key=key, sha256=sha
        )
        made[i] = ImageRenditions.model_validate(one.model_dump() | {"renditions": [extra]})
    client = boto3.client("s3")
    heads: list[str] = []
    client.meta.events.register("before-call.s3.HeadObject", lambda **kw: heads.append("HEAD"))
    s3 = S3Cdn(client, _bucket("rend"))
    first, stats = publish_images("estes", images, made, store, [s3], **QUIET)
    assert stats.uploaded == 4 and stats.rendition_uploads == 4
    heads.clear()
    again, stats2 = publish_images("estes", images, made, store, [s3], **QUIET)
    assert stats2.uploaded == 0 and stats2.rendition_uploads == 0 and heads == []
    assert [p.renditions for p in again] == [p.renditions for p in first]


# ------------------------------------------------------------ the same bytes, stored once


def _same_photo(images, made, copy: int, of: int):
    """Product ``copy`` shows product ``of``'s photo: the same master bytes."""
    made[copy] = made[of].model_copy(update={"product_id": images[copy].product_id})
    images[copy] = images[copy].model_copy(update={"original_sha256": made[of].original_sha256})


def test_a_photo_two_products_share_is_uploaded_once_and_both_point_at_it(
    fake_cloudinary, tmp_path
):
    store, images, made = _prepared(tmp_path, 6)
    _same_photo(images, made, copy=4, of=1)
    cdn = _cloudinary(fake_cloudinary, backoff=0.01, max_wait=5)
    published, stats = publish_images("estes", images, made, store, [cdn], **QUIET)
    assert stats.uploaded == 5 and stats.uploads_saved == 1 and stats.failed == 0
    assert stats.bytes_saved == made[1].master.bytes
    assert len(fake_cloudinary.stored) == 5 and "kits/estes/p004" not in str(
        sorted(fake_cloudinary.stored)
    )
    owner, copy = published[1], published[4]
    assert copy.shared_with == owner.asset.public_id == "kits/estes/p001"
    assert copy.asset == owner.asset and copy.renditions == owner.renditions
    assert (copy.product_id, copy.position) == ("p004", 1)  # still its own row
    again, stats2 = publish_images("estes", images, made, store, [cdn], **QUIET)
    assert stats2.uploaded == 0 and stats2.uploads_saved == 1
    assert [p.asset for p in again] == [p.asset for p in published]


def test_a_photo_another_vendor_published_is_not_stored_again(fake_cloudinary, tmp_path):
    """Retailers publish the manufacturer's photo: on a CDN that transforms on delivery
    the second vendor's CSV points at the first one's asset."""
    store, images, made = _prepared(tmp_path, 3)
    cdn = _cloudinary(fake_cloudinary, backoff=0.01, max_wait=5)
    publish_images("estes", images, made, store, [cdn], **QUIET)
    stored = dict(fake_cloudinary.stored)
    loc_images = [i.model_copy(update={"product_id": f"l{n}"}) for n, i in enumerate(images)]
    loc_made = [m.model_copy(update={"product_id": f"l{n}"}) for n, m in enumerate(made)]
    data, sha = _jpeg("a photo only loc has")
    store.put(f"renditions/{sha}/master.jpg", data)
    loc_images.append(images[0].model_copy(update={"product_id": "l9", "original_sha256": sha}))
    master = made[0].master.model_copy(
        update={"key": f"renditions/{sha}/master.jpg", "sha256": sha, "bytes": len(data)}
    )
    loc_made.append(
        made[0].model_copy(update={"product_id": "l9", "original_sha256": sha, "master": master})
    )
    published, stats = publish_images("loc", loc_images, loc_made, store, [cdn], **QUIET)
    assert stats.uploads_saved == 3 and stats.uploaded == 1
    assert [p.shared_with for p in published[:3]] == [f"kits/estes/p00{n}" for n in range(3)]
    assert published[3].shared_with is None and published[3].asset.public_id == "kits/loc/l9"
    assert {k: v for k, v in fake_cloudinary.stored.items() if k in stored} == stored
    assert len(fake_cloudinary.stored) == len(stored) + 1


def test_where_renditions_are_files_each_vendor_keeps_its_own_copy(tmp_path):
    """A local or S3 CDN stores renditions beside each master: another vendor's copy is
    not borrowed (its folder may be cleaned apart), but a vendor's own repeats are."""
    store, images, made = _prepared(tmp_path, 3)
    _same_photo(images, made, copy=2, of=0)
    cdn = LocalCdn(tmp_path / "cdn", None)
    published, stats = publish_images("estes", images, made, store, [cdn], **QUIET)
    assert stats.uploads_saved == 1 and published[2].shared_with == "kits/estes/p000"
    loc = [i.model_copy(update={"product_id": "l0"}) for i in images[:1]]
    loc_made = [m.model_copy(update={"product_id": "l0"}) for m in made[:1]]
    published2, stats2 = publish_images("loc", loc, loc_made, store, [cdn], **QUIET)
    assert stats2.uploads_saved == 0 and published2[0].asset.public_id == "kits/loc/l0"
