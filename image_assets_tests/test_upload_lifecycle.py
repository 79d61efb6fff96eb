"""The upload lifecycle as plain Python over blob stores (no Dagster): take in, render,
activate, expire."""

from __future__ import annotations

import pytest

from image_assets.demo.images import ImageSpec, render_image
from image_assets.imaging.config import load_rendition_config
from image_assets.layout import upload_audit_key, upload_manifest_key
from image_assets.records import AuditRow
from image_assets.storage import BlobNotFound, MemoryBlobStore
from image_assets.uploads.lifecycle import (
    UploadError,
    UploadStores,
    activate,
    expire,
    load_manifest,
    render_upload,
    take_in,
)


def jpeg_bytes(seed: str = "lifecycle") -> bytes:
    return render_image(ImageSpec(seed, 640, 480))


@pytest.fixture
def stores() -> UploadStores:
    return UploadStores(*(MemoryBlobStore() for _ in range(5)))


def _audit(stores: UploadStores, upload_id: str) -> AuditRow:
    return AuditRow.model_validate_json(stores.raw.get(upload_audit_key(upload_id)))


class _FailingDelete(MemoryBlobStore):
    def delete(self, key: str) -> bool:
        raise OSError("incoming is read-only")


def test_the_outcome_is_durable_before_the_file_leaves_incoming(stores):
    incoming = _FailingDelete()
    incoming.put("a.jpg", jpeg_bytes())
    broken = UploadStores(incoming, stores.rejected, stores.public, stores.raw, stores.private)
    with pytest.raises(OSError):
        take_in(broken, "a.jpg", "a.jpg")
    manifest = load_manifest(stores.raw, "a.jpg")
    assert manifest is not None and manifest.record.status == "accepted"
    assert stores.private.exists(manifest.record.original_key or "")
    assert incoming.exists("a.jpg")  # not lost: still there for the next try


def test_take_in_is_idempotent_and_refuses_unknown_uploads(stores):
    stores.incoming.put("sub/a.jpg", jpeg_bytes())
    first = take_in(stores, "sub/a.jpg", "sub/a.jpg")
    assert first.reprocessed and first.record.status == "accepted"
    assert not stores.incoming.exists("sub/a.jpg")
    again = take_in(stores, "sub/a.jpg", "sub/a.jpg")
    assert not again.reprocessed and again.record == first.record
    with pytest.raises(UploadError, match="not in the incoming location"):
        take_in(stores, "nope.jpg", "nope.jpg")


def test_a_bad_file_is_rejected_with_a_reason_and_an_audit_row(stores):
    stores.incoming.put("evil.jpg", b"<html>no</html>")
    record = take_in(stores, "evil.jpg", "evil.jpg").record
    assert record.status == "rejected" and record.failure == "not_an_image"
    assert stores.rejected.exists("evil.jpg") and stores.rejected.exists("evil.jpg.reason.json")
    made, row = render_upload(stores, record, load_rendition_config())
    assert made is None and row.status == "rejected" and row.reason == record.reason
    assert _audit(stores, "evil.jpg").failure == "not_an_image"


def test_activation_publishes_every_file_and_refuses_twice(stores):
    stores.incoming.put("a.jpg", jpeg_bytes())
    record = take_in(stores, "a.jpg", "a.jpg").record
    made, row = render_upload(stores, record, load_rendition_config())
    assert made is not None and row.status == "processed" and row.renditions == 10
    manifest = load_manifest(stores.raw, "a.jpg")
    assert manifest is not None and len(manifest.private_keys()) == 12  # original, master, 10
    activation = activate(stores, "a.jpg")
    assert len(activation.public_keys) == 12
    assert all(stores.public.exists(k) for k in activation.public_keys)
    assert not any(stores.private.exists(k) for k in manifest.private_keys())
    assert _audit(stores, "a.jpg").status == "activated"
    with pytest.raises(UploadError, match="status: activated"):
        activate(stores, "a.jpg")
    with pytest.raises(UploadError, match="status: unknown"):
        activate(stores, "never-seen.jpg")


def test_expiry_deletes_the_private_files_of_uploads_in_subfolders_too(stores):
    for key in ("top.jpg", "deep/er/sub.jpg"):
        stores.incoming.put(key, jpeg_bytes(seed=key))
        render_upload(stores, take_in(stores, key, key).record, load_rendition_config())
    owned = {}
    for upload_id in ("top.jpg", "deep/er/sub.jpg"):
        manifest = load_manifest(stores.raw, upload_id)
        assert manifest is not None
        owned[upload_id] = manifest.private_keys()
    assert expire(stores, ttl_hours=1.0) == []  # not old enough
    expired = expire(stores, ttl_hours=1.0, now=10**10)
    assert sorted(r.original_name for r in expired) == ["sub.jpg", "top.jpg"]
    for upload_id, keys in owned.items():
        assert _audit(stores, upload_id).status == "expired"
        for key in keys:
            with pytest.raises(BlobNotFound):
                stores.private.get(key)
    assert stores.raw.exists(upload_manifest_key("deep/er/sub.jpg"))
