"""Make every output of each original, once per (original, rendition config), in a process pool.

Outputs live under ``layout.renditions_prefix(sha, config fingerprint)`` with an
``index.json``; when the index exists nothing is decoded or encoded. A changed
config has a new fingerprint and regenerates from the stored originals without
downloading anything. Work runs in a pool of worker processes (Pillow work is
CPU-bound), fed through a small window so memory stays bounded however large
the catalog: each worker reads one original from the store, writes its
outputs back, and returns only their description.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from image_assets.failures import FailureKind
from image_assets.imaging.config import RenditionConfig
from image_assets.imaging.decode import ImageRefused
from image_assets.imaging.pipeline import EncodedRendition, render_all
from image_assets.layout import rendition_file_key, renditions_index_key, renditions_prefix
from image_assets.machine import usable_cores
from image_assets.progress import ProgressReporter, Say
from image_assets.records import ImageRecord, ImageRenditions, RenditionFile
from image_assets.storage import BlobNotFound, BlobStore


@dataclass
class RenditionStats:
    images: int = 0
    encoded: int = 0
    reused: int = 0
    failed: int = 0
    files: int = 0
    bytes_in: int = 0
    bytes_out: int = 0


def output_prefix(original_sha256: str, config: RenditionConfig) -> str:
    return renditions_prefix(original_sha256, config.fingerprint())


def default_workers() -> int:
    return usable_cores()


def render_images(
    images: list[ImageRecord],
    store: BlobStore,
    config: RenditionConfig,
    *,
    workers: int | None = None,
    say: Say = print,
    prefix_of: Callable[[ImageRecord], str] | None = None,
    on_made: Callable[[ImageRenditions], None] | None = None,
) -> tuple[list[ImageRenditions], RenditionStats]:
    """One :class:`ImageRenditions` per ok image, in input order; failures carry a reason.

    Outputs go under ``prefix_of(image)``; by default the content-addressed
    :func:`output_prefix`, so vendor images with the same bytes share them. Images
    with the same prefix are made once. ``on_made`` hears of each image the moment its
    outputs are stored (the ones made earlier first), so a caller can record outcomes
    one by one instead of at the end of the batch.
    """
    stats = RenditionStats()
    todo = [i for i in images if i.status == "ok" and i.original_key and i.original_sha256]

    def prefix(image: ImageRecord) -> str:
        assert image.original_sha256
        return prefix_of(image) if prefix_of else output_prefix(image.original_sha256, config)

    by_prefix: dict[str, ImageRecord] = {}
    for image in todo:
        by_prefix.setdefault(prefix(image), image)

    outputs: dict[str, dict] = {}
    missing = []
    for key, image in by_prefix.items():
        existing = _existing(store, key)
        if existing is not None:
            outputs[key] = existing
            stats.reused += 1
        else:
            missing.append((key, image))

    def made(image: ImageRecord) -> ImageRenditions:
        return ImageRenditions.model_validate(
            {**outputs[prefix(image)], "product_id": image.product_id, "position": image.position}
        )

    by_key: dict[str, list[ImageRecord]] = {}
    for image in todo:
        by_key.setdefault(prefix(image), []).append(image)
    if on_made is not None:
        for key in outputs:
            for image in by_key[key]:
                on_made(made(image))
    progress = ProgressReporter(say, "renditions", len(missing))
    for key, result in _run(missing, store, config, workers or default_workers()):
        outputs[key] = result
        progress.advance()
        if on_made is not None:
            for image in by_key[key]:
                on_made(made(image))

    results = []
    for image in todo:
        record = made(image)
        results.append(record)
        if record.status == "failed":
            stats.failed += 1
        else:
            stats.files += len(record.renditions)
            stats.bytes_out += sum(r.bytes for r in record.renditions)
            stats.bytes_in += image.original_bytes or 0
    stats.images = len(results)
    stats.encoded = sum(1 for o in outputs.values() if o.get("encoded"))
    return results, stats


def _existing(store: BlobStore, prefix: str) -> dict | None:
    try:
        index = json.loads(store.get(renditions_index_key(prefix)))
    except (BlobNotFound, ValueError):
        return None
    files = [index["master"], *index["renditions"]] if index.get("master") else index["renditions"]
    if not all(store.exists(f["key"]) for f in files):
        return None
    return {**index, "encoded": False}


def _run(
    images: list[tuple[str, ImageRecord]], store: BlobStore, config: RenditionConfig, workers: int
) -> Iterator[tuple[str, dict]]:
    """Yield (prefix, worker result) as they finish; at most ``2 * workers`` images in flight."""
    if workers <= 1 or len(images) <= 1:
        for key, image in images:
            yield (
                key,
                encode_original(store, image.original_key, image.original_sha256, config, key),
            )
        return
    # spawn: workers start clean (no threads or locks copied from the run process)
    # and see the environment as it is now (credentials, endpoints)
    with ProcessPoolExecutor(
        max_workers=min(workers, len(images)), mp_context=multiprocessing.get_context("spawn")
    ) as pool:
        pending: dict[Future, str] = {}
        for key, image in images:
            future = pool.submit(
                encode_original, store, image.original_key, image.original_sha256, config, key
            )
            pending[future] = key
            if len(pending) >= 2 * workers:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield pending.pop(future), future.result()
        for future, key in pending.items():
            yield key, future.result()


def encode_original(
    store: BlobStore,
    original_key: str | None,
    original_sha256: str | None,
    config: RenditionConfig,
    prefix: str | None = None,
) -> dict:
    """Worker: read one original, make its outputs, store them with an index under ``prefix``
    (default: content-addressed); never raises."""
    assert original_key and original_sha256
    prefix = prefix or output_prefix(original_sha256, config)
    base: dict[str, Any] = {"original_sha256": original_sha256, "product_id": "", "position": 0}
    try:
        result = render_all(store.get(original_key), config)
    except ImageRefused as exc:  # remembered, so a re-run does not decode it again
        index: dict[str, Any] = {
            "original_sha256": original_sha256,
            "status": "failed",
            "reason": exc.reason,
        }
        index |= {"failure": exc.kind, "master": None, "renditions": []}
        store.put(renditions_index_key(prefix), json.dumps(index, sort_keys=True).encode())
        return {**base, **index, "encoded": True}
    except BlobNotFound:
        return {
            **base,
            "status": "failed",
            "reason": "original missing from the image store",
            "failure": FailureKind.MISSING_ORIGINAL,
        }
    except Exception as exc:  # one odd file must not cost the others
        return {
            **base,
            "status": "failed",
            "reason": f"internal error: {type(exc).__name__}: {exc}",
            "failure": FailureKind.INTERNAL,
        }

    def put(rendition: EncodedRendition) -> dict:
        key = rendition_file_key(prefix, rendition.name, rendition.format)
        store.put(key, rendition.data)
        return RenditionFile(
            name=rendition.name,
            format=rendition.format,
            width=rendition.width,
            height=rendition.height,
            bytes=len(rendition.data),
            key=key,
            sha256=hashlib.sha256(rendition.data).hexdigest(),
            crop=rendition.crop,
        ).model_dump()

    made: dict[str, Any] = {
        "original_sha256": original_sha256,
        "status": "ok",
        "master": put(result.master) if result.master else None,
        "renditions": [put(r) for r in result.renditions],
        "lqip": result.lqip,
        "blurhash": result.blurhash,
    }
    store.put(renditions_index_key(prefix), json.dumps(made, sort_keys=True).encode())
    return {**base, **made, "encoded": True}
