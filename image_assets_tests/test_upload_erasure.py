"""Erasure of an upload, on request: every file of it goes (private, public, rejected,
tags, the service's cached results), its audit row stays marked ``deleted``, a second
erasure is a clear no-op, and nothing of another upload is touched, whatever the id."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from image_assets.storage import LocalBlobStore
from image_assets.uploads.lifecycle import (
    ProcessOptions,
    UploadError,
    activate,
    erase,
    process,
)
from image_assets_tests.delivery_service import wait_until_healthy
from image_assets_tests.processes import free_port
from image_assets_tests.test_upload_lifecycle import (
    SMALL,
    drop,
    jpeg,
    make_stores,
    receive_all,
    row,
)

REPO = Path(__file__).resolve().parents[1]


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def _three_uploads(tmp_path: Path):
    """Three uploads: one activated, one processed (not activated), one rejected."""
    stores = make_stores(
        tmp_path, raw=LocalBlobStore(tmp_path / "raw"), private=LocalBlobStore(tmp_path / "images")
    )
    drop(tmp_path, "a.jpg", jpeg("a"))
    drop(tmp_path, "b.jpg", jpeg("b"))
    drop(tmp_path, "c.jpg", b"not an image at all")
    ids = receive_all(stores)
    process(stores, ids, ProcessOptions(SMALL, workers=1), say=lambda _: None)
    by_status = {row(stores, i).status: i for i in ids}
    activated = by_status["processed"]
    activate(stores, activated)
    others = [i for i in ids if i != activated]
    return stores, activated, others


def test_erasing_an_activated_upload_removes_its_files_and_keeps_its_row(tmp_path):
    stores, activated, others = _three_uploads(tmp_path)
    before = {i: row(stores, i).status for i in others}
    files_before = _files(tmp_path)
    done = erase(stores, activated, now=1234.5)
    assert not done.already and done.row.status == "deleted" and done.row.deleted_at == 1234.5
    assert any(k.startswith("public:") for k in done.removed)
    stem = done.unique_name.rpartition(".")[0]
    assert not [f for f in _files(tmp_path) if stem in f or (activated in f and "audit" not in f)]
    assert row(stores, activated).status == "deleted"  # the row stays
    assert {i: row(stores, i).status for i in others} == before
    gone = files_before - _files(tmp_path)
    assert all(activated in f or stem in f for f in gone), gone
    again = erase(stores, activated)
    assert again.already and again.removed == [] and _files(tmp_path) == files_before - gone


def test_a_rejected_upload_and_a_processed_one_are_erased_too(tmp_path):
    stores, activated, others = _three_uploads(tmp_path)
    for upload_id in others:
        done = erase(stores, upload_id)
        assert done.row.status == "deleted" and done.removed, upload_id
    assert not list((tmp_path / "rejected").rglob("*.*"))
    assert row(stores, activated).status == "activated"


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    hostile=st.one_of(
        st.text(max_size=60),
        st.sampled_from(["../../raw", "u" + "0" * 24 + "/../x", "*", "u" + "0" * 23, " "]),
        st.from_regex(r"u[0-9a-f]{24}", fullmatch=True),
    )
)
def test_no_id_touches_another_upload(tmp_path_factory, hostile):
    root = tmp_path_factory.mktemp("erasure")
    stores, activated, others = _three_uploads(root)
    files = _files(root)
    if hostile.strip() in (activated, *others):
        return
    with pytest.raises(UploadError) as refused:
        erase(stores, hostile)
    assert refused.value.reason in ("invalid", "unknown")
    assert _files(root) == files


@pytest.fixture
def service_with_uploads(tmp_path):
    """``image-assets serve`` with uploads, an admin token and a disk cache, over data
    the lifecycle laid out in the local profile's folders."""
    data = tmp_path / "data"
    stores = make_stores(
        data, raw=LocalBlobStore(data / "raw"), private=LocalBlobStore(data / "images")
    )
    stores = stores.__class__(
        area=stores.area,
        rejected=stores.rejected,
        public=LocalBlobStore(data / "public" / "uploads"),
        raw=stores.raw,
        private=stores.private,
    )
    drop(data, "a.jpg", jpeg("served"))
    (upload_id,) = receive_all(stores)
    process(stores, [upload_id], ProcessOptions(SMALL, workers=1), say=lambda _: None)
    activate(stores, upload_id)
    port = free_port()
    env = {
        **os.environ,
        "IMAGE_ASSETS_PROFILE": "local",
        "IMAGE_ASSETS_DATA_DIR": str(data),
        "IMAGE_ASSETS_DELIVERY_SECRET": "erasure-secret",
        "IMAGE_ASSETS_UPLOAD_TOKEN": "app-token",
        "IMAGE_ASSETS_UPLOAD_ADMIN_TOKEN": "admin-token",
        "IMAGE_ASSETS_DELIVERY_CACHE_DIR": str(tmp_path / "cache"),
    }
    env.pop("IMAGE_ASSETS_DELIVERY_STRICT", None)
    process_ = subprocess.Popen(
        [sys.executable, "-m", "image_assets.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    wait_until_healthy(base, process_)
    yield base, stores, upload_id, tmp_path / "cache"
    process_.terminate()
    process_.wait(timeout=30)


def test_delete_on_the_service_erases_the_upload_and_its_cached_results(service_with_uploads):
    base, stores, upload_id, cache = service_with_uploads
    stem = json.loads(stores.raw.get(f"audit/uploads/{upload_id}.json"))["key"]
    manifest = json.loads(stores.raw.get(f"state/uploads/{upload_id}.json"))
    public_id = "uploads/" + manifest["record"]["unique_name"].rpartition(".")[0]
    image = f"{base}/image/upload/c_limit,w_100/{public_id}.jpg"
    first = httpx.get(image)
    assert first.status_code == 200 and first.headers["cache-control"] == "public, max-age=86400"
    assert any(p.is_file() for p in cache.rglob("*"))
    url = f"{base}/uploads/{upload_id}"
    assert httpx.delete(url).status_code == 401
    assert httpx.delete(url, headers={"Authorization": "Bearer app-token"}).status_code == 401
    assert httpx.delete(
        f"{base}/uploads/../../etc", headers={"Authorization": "Bearer admin-token"}
    ).status_code in (400, 404)
    bad = httpx.delete(
        f"{base}/uploads/u{'z' * 24}", headers={"Authorization": "Bearer admin-token"}
    )
    assert bad.status_code == 400 and "not an upload id" in bad.text
    done = httpx.delete(url, headers={"Authorization": "Bearer admin-token"})
    assert done.status_code == 200, done.text
    answer = done.json()
    assert answer["status"] == "deleted" and not answer["already_deleted"]
    assert answer["files_removed"] >= 2 and answer["cached_results_removed"] >= 1
    assert not any(p.is_file() for p in cache.rglob("*"))
    assert httpx.get(image).status_code == 404
    assert stem == upload_id
    again = httpx.delete(url, headers={"Authorization": "Bearer admin-token"})
    assert again.status_code == 200 and again.json()["already_deleted"] is True
    unknown = httpx.delete(
        f"{base}/uploads/u{'0' * 24}", headers={"Authorization": "Bearer admin-token"}
    )
    assert unknown.status_code == 404


def test_the_cli_erases_an_upload_once(tmp_path):
    data = tmp_path / "data"
    stores = make_stores(
        data, raw=LocalBlobStore(data / "raw"), private=LocalBlobStore(data / "images")
    )
    drop(data, "a.jpg", jpeg("cli"))
    (upload_id,) = receive_all(stores)
    process(stores, [upload_id], ProcessOptions(SMALL, workers=1), say=lambda _: None)
    env = {**os.environ, "IMAGE_ASSETS_PROFILE": "local", "IMAGE_ASSETS_DATA_DIR": str(data)}
    command = [sys.executable, "-m", "image_assets.cli", "uploads", "delete", upload_id]
    first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert f"{upload_id} erased:" in first.stdout and "removed private:" in first.stdout
    assert row(stores, upload_id).status == "deleted"
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0 and "erased already" in second.stdout
    bad = subprocess.run(
        [*command[:-1], "../x"], env=env, capture_output=True, text=True, timeout=120
    )
    assert bad.returncode == 2 and "not an upload id" in bad.stderr


def test_activation_leaves_no_private_file_behind_not_even_the_renditions_index(tmp_path):
    _stores, activated, _ = _three_uploads(tmp_path)
    assert not [f for f in _files(tmp_path / "images") if activated in f]
