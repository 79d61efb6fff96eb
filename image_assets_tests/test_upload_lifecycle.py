"""The upload lifecycle as plain Python (no Dagster): receive, examine, render, activate,
expire; and its invariant, checked by hypothesis over names and orders of events:

every entry that appears in incoming ends in exactly one recorded state (an audit row:
waiting, processed, or rejected with a reason) or is still in incoming (not settled,
or a temporary name); nothing is lost, nothing outside the data root is touched.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from image_assets.demo.images import ImageSpec, render_image
from image_assets.imaging.config import RenditionConfig, load_rendition_config
from image_assets.layout import upload_audit_key
from image_assets.records import AuditRow
from image_assets.storage import BlobNotFound, LocalBlobStore, MemoryBlobStore
from image_assets.uploads.intake import LocalIncoming, display_name, is_temporary
from image_assets.uploads.lifecycle import (
    UNKNOWN_NAME,
    ProcessOptions,
    UploadError,
    UploadStores,
    activate,
    expire,
    load_manifest,
    process,
    receive,
    reconcile,
)

SMALL = RenditionConfig.model_validate(
    {
        "renditions": [
            {
                "name": "thumb",
                "width": 64,
                "height": 64,
                "crop": "fill",
                "formats": [{"format": "webp"}],
            }
        ]
    }
)


def jpeg(seed: str = "lifecycle") -> bytes:
    return render_image(ImageSpec(seed, 320, 240))


def make_stores(root: Path, raw=None, private=None) -> UploadStores:
    return UploadStores(
        area=LocalIncoming(root / "incoming", root / "claimed"),
        rejected=LocalBlobStore(root / "rejected"),
        public=LocalBlobStore(root / "public"),
        raw=raw or MemoryBlobStore(),
        private=private or MemoryBlobStore(),
    )


def drop(root: Path, name: str, data: bytes, age: float = 10.0) -> Path:
    path = root / "incoming" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (time.time() - age, time.time() - age))
    return path


def receive_all(stores: UploadStores, settle: float = 2.0) -> list[str]:
    return [
        r.upload_id
        for r in (receive(stores, a, settle) for a in stores.area.scan())
        if r.status == "claimed"
    ]


def row(stores: UploadStores, upload_id: str) -> AuditRow:
    return AuditRow.model_validate_json(stores.raw.get(upload_audit_key(upload_id)))


def rows(stores: UploadStores) -> list[AuditRow]:
    return [
        AuditRow.model_validate_json(stores.raw.get(k)) for k in stores.raw.list("audit/uploads")
    ]


class FailingStore(MemoryBlobStore):
    def __init__(self, fail: bool = True):
        super().__init__()
        self.fail = fail

    def put(self, key: str, data: bytes, content_type: str | None = None) -> None:
        if self.fail:
            raise OSError("the store is down")
        super().put(key, data, content_type)


def test_a_claimed_file_survives_a_store_outage_and_is_reconciled(tmp_path):
    raw = FailingStore()
    stores = make_stores(tmp_path, raw=raw)
    drop(tmp_path, "a.jpg", jpeg())
    (arrival,) = stores.area.scan()
    with pytest.raises(OSError, match="down"):
        receive(stores, arrival, settle_seconds=2)
    assert (tmp_path / "claimed" / arrival.upload_id).read_bytes() == jpeg()  # not lost
    raw.fail = False
    assert list(reconcile(stores)) == [arrival.upload_id]
    manifest = load_manifest(raw, arrival.upload_id)
    assert manifest is not None and manifest.record.original_name == UNKNOWN_NAME
    process(stores, [arrival.upload_id], ProcessOptions(SMALL, workers=1), say=lambda _: None)
    assert row(stores, arrival.upload_id).status == "processed"


def test_nothing_is_removed_before_its_outcome_is_stored(tmp_path):
    private = FailingStore()
    stores = make_stores(tmp_path, private=private)
    drop(tmp_path, "a.jpg", jpeg())
    (upload_id,) = receive_all(stores)
    with pytest.raises(OSError, match="down"):
        process(stores, [upload_id], ProcessOptions(SMALL, workers=1))
    assert (tmp_path / "claimed" / upload_id).is_file()
    assert row(stores, upload_id).status == "waiting"
    private.fail = False
    process(stores, [upload_id], ProcessOptions(SMALL, workers=1), say=lambda _: None)
    assert row(stores, upload_id).status == "processed"
    assert not (tmp_path / "claimed" / upload_id).exists()


def test_processing_is_idempotent_and_refuses_unknown_ids(tmp_path):
    stores = make_stores(tmp_path)
    drop(tmp_path, "sub/a.jpg", jpeg())
    (upload_id,) = receive_all(stores)
    options = ProcessOptions(SMALL, workers=1)
    first = process(stores, [upload_id], options, say=lambda _: None)
    again = process(stores, [upload_id], options, say=lambda _: None)
    assert first[upload_id].record == again[upload_id].record
    assert first[upload_id].record.object_key == "sub/a.jpg"
    with pytest.raises(UploadError, match="unknown"):
        process(stores, ["u-never"], options)


def test_activation_publishes_every_file_and_refuses_twice(tmp_path):
    stores = make_stores(tmp_path)
    drop(tmp_path, "a.jpg", jpeg())
    (upload_id,) = receive_all(stores)
    manifest = process(
        stores, [upload_id], ProcessOptions(load_rendition_config(), workers=1), say=lambda _: None
    )[upload_id]
    assert row(stores, upload_id).renditions == 10
    assert len(manifest.private_keys()) == 12  # original, master, 10 renditions
    activation = activate(stores, upload_id)
    assert len(activation.public_keys) == 12
    assert all(stores.public.exists(k) for k in activation.public_keys)
    assert not any(stores.private.exists(k) for k in manifest.private_keys())
    with pytest.raises(UploadError, match="status: activated"):
        activate(stores, upload_id)
    with pytest.raises(UploadError, match="status: unknown"):
        activate(stores, "u-never-seen")


def test_expiry_deletes_the_private_files_of_uploads_in_subfolders_too(tmp_path):
    stores = make_stores(tmp_path)
    drop(tmp_path, "top.jpg", jpeg("top"))
    drop(tmp_path, "deep/er/sub.jpg", jpeg("sub"))
    ids = receive_all(stores)
    manifests = process(stores, ids, ProcessOptions(SMALL, workers=1), say=lambda _: None)
    assert expire(stores, ttl_hours=1.0) == []  # not old enough
    expired = expire(stores, ttl_hours=1.0, now=10**10)
    assert sorted(r.original_name for r in expired) == ["sub.jpg", "top.jpg"]
    for upload_id, manifest in manifests.items():
        assert row(stores, upload_id).status == "expired"
        for key in manifest.private_keys():
            with pytest.raises(BlobNotFound):
                stores.private.get(key)


# ------------------------------------------------------------------ the invariant

# File names Linux accepts: no "/" or NUL, at most 255 bytes, not "." or "..".
NAMES = st.text(
    alphabet=st.characters(blacklist_characters="/\x00", blacklist_categories=("Cs",)),
    min_size=1,
    max_size=80,
).filter(lambda n: n not in (".", "..") and len(n.encode()) <= 255)


def assert_invariant(
    root: Path, stores: UploadStores, dropped: dict[str, bytes], outside: Path, links: set[str]
):
    """Every dropped file is either still in incoming (temporary name) or is exactly one
    upload whose row says what became of it; its bytes are kept where the row says."""
    remaining = {
        p.relative_to(root / "incoming").as_posix()
        for p in (root / "incoming").rglob("*")
        if p.is_file() or p.is_symlink()
    }
    by_name: dict[str, list[AuditRow]] = {}
    for audit in rows(stores):
        by_name.setdefault(audit.original_name or "", []).append(audit)
    for name, data in dropped.items():
        base = name.rsplit("/", 1)[-1]
        if is_temporary(name):
            assert name in remaining, name
            continue
        assert name not in remaining, name
        (audit,) = by_name.pop(display_name(base))
        assert audit.status in ("processed", "rejected"), audit
        if audit.status == "rejected":
            assert audit.reason
            assert (root / "rejected" / audit.key).read_bytes() == data
        else:
            assert audit.sha256 == hashlib.sha256(data).hexdigest()
    for link in links:  # refused, never followed: the row says so
        (audit,) = by_name.pop(link)
        assert (audit.status, audit.failure) == ("rejected", "not_a_file")
    assert not by_name, by_name  # no upload nobody dropped
    assert not list((root / "claimed").glob("*")) if (root / "claimed").exists() else True
    assert outside.read_bytes() == b"do not touch"


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    names=st.lists(NAMES, min_size=1, max_size=8, unique_by=lambda n: display_name(n)),
    folders=st.lists(st.sampled_from(["", "sub/", "a b/c%d/"]), min_size=8, max_size=8),
)
def test_every_name_ends_in_one_recorded_state(tmp_path_factory, names, folders):
    root = tmp_path_factory.mktemp("root")
    outside = root.parent / f"{root.name}-outside.txt"
    outside.write_bytes(b"do not touch")
    stores = make_stores(root)
    dropped = {}
    for index, (name, folder) in enumerate(zip(names, folders, strict=False)):
        data = b"junk %d " % index + name.encode("utf-8", "surrogateescape")
        dropped[folder + name] = data
        drop(root, folder + name, data)
    (root / "incoming" / "to-outside.jpg").symlink_to(outside)
    ids = receive_all(stores)
    process(stores, ids, ProcessOptions(SMALL, workers=1), say=lambda _: None)
    assert_invariant(root, stores, dropped, outside, links={"to-outside.jpg"})


EVENTS = st.lists(
    st.tuples(
        st.sampled_from(["appear", "modify", "rename", "delete", "tick", "process"]),
        st.integers(min_value=0, max_value=4),
        st.integers(min_value=0, max_value=4),
    ),
    min_size=1,
    max_size=25,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(events=EVENTS)
def test_no_order_of_events_loses_a_file(tmp_path_factory, events):
    """Files appear, change, are renamed or deleted between sensor ticks and runs; at the
    end every file that was claimed is an upload with its bytes as claimed, and what is
    left in incoming is picked up by a last tick: nothing is lost or doubled."""
    root = tmp_path_factory.mktemp("events")
    outside = root.parent / f"{root.name}-outside.txt"
    outside.write_bytes(b"do not touch")
    stores = make_stores(root)
    options = ProcessOptions(SMALL, workers=1, incomplete_grace_seconds=0)
    names = [f"f{i}.jpg" for i in range(5)]
    (root / "incoming").mkdir()
    for counter, (op, i, j) in enumerate(events):
        path = root / "incoming" / names[i]
        if op == "appear" and not path.exists():
            drop(root, names[i], b"v%d" % counter)
        elif op == "modify" and path.exists():
            drop(root, names[i], path.read_bytes() + b"+%d" % counter)
        elif op == "rename" and path.exists() and i != j:
            path.rename(root / "incoming" / names[j])
        elif op == "delete" and path.exists():
            path.unlink()
        elif op == "tick":
            receive_all(stores)
        elif op == "process":
            process(stores, list(reconcile(stores)), options, say=lambda _: None)
    final = {p.name: p.read_bytes() for p in (root / "incoming").glob("*")}
    receive_all(stores)
    process(stores, list(reconcile(stores)), options, say=lambda _: None)
    assert not any((root / "incoming").iterdir())
    assert not list((root / "claimed").glob("*"))
    kept = sorted((root / "rejected" / r.key).read_bytes() for r in rows(stores))
    assert all(r.status == "rejected" for r in rows(stores))  # junk bytes: rejected, kept
    for data in final.values():
        assert data in kept  # what was last in incoming became an upload, bytes intact
    assert len(kept) == len(rows(stores))
    assert outside.read_bytes() == b"do not touch"


def test_a_decoder_bug_on_one_file_rejects_that_file_only(tmp_path, monkeypatch):
    import image_assets.uploads.lifecycle as lifecycle

    real_probe = lifecycle.probe

    def probe(data, *args):
        if data.startswith(b"\xff\xd8") and b"odd" in data[-64:]:
            raise ZeroDivisionError("a plugin bug")
        return real_probe(data, *args)

    monkeypatch.setattr(lifecycle, "probe", probe)
    stores = make_stores(tmp_path)
    drop(tmp_path, "odd.jpg", jpeg("odd") + b"odd")
    drop(tmp_path, "fine.jpg", jpeg("fine"))
    ids = receive_all(stores)
    done = process(stores, ids, ProcessOptions(SMALL, workers=1), say=lambda _: None)
    statuses = {m.record.original_name: (m.record.status, m.record.failure) for m in done.values()}
    assert statuses == {"odd.jpg": ("rejected", "internal"), "fine.jpg": ("accepted", None)}


def test_a_read_error_is_the_stores_trouble_not_the_uploads(tmp_path, monkeypatch):
    """EIO or EACCES on the claimed file fails the run (tried again later); the upload is
    not rejected and its file is not deleted. A link swapped in is refused, never read."""
    stores = make_stores(tmp_path)
    drop(tmp_path, "a.jpg", jpeg())
    (upload_id,) = receive_all(stores)
    real_read = stores.area.read_claimed

    def unreadable(_upload_id: str) -> bytes:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(stores.area, "read_claimed", unreadable)
    with pytest.raises(PermissionError):
        process(stores, [upload_id], ProcessOptions(SMALL, workers=1))
    assert row(stores, upload_id).status == "waiting"
    assert (tmp_path / "claimed" / upload_id).is_file()
    monkeypatch.setattr(stores.area, "read_claimed", real_read)
    claimed = tmp_path / "claimed" / upload_id
    claimed.unlink()
    outside = tmp_path / "outside.jpg"
    outside.write_bytes(jpeg("outside"))
    claimed.symlink_to(outside)  # swapped for a link between the look and the read
    done = process(stores, [upload_id], ProcessOptions(SMALL, workers=1), say=lambda _: None)
    assert (done[upload_id].record.status, done[upload_id].record.failure) == (
        "rejected",
        "not_a_file",
    )
    assert outside.read_bytes() == jpeg("outside")
