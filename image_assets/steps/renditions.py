"""Make every configured rendition of each master, once per (master, config).

Renditions live at ``renditions/{sha[:2]}/{sha}/{config fingerprint}/``
with an ``index.json``; if the index exists, nothing is decoded or encoded.
A changed config has a new fingerprint, so it regenerates from the stored
masters without downloading anything again.
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from image_assets.catalog.records import ImageRecord, ImageRenditions, RenditionFile
from image_assets.imaging.decode import ImageRefused
from image_assets.imaging.pipeline import make_renditions
from image_assets.imaging.renditions import EXTENSIONS, RenditionConfig
from image_assets.steps.progress import ProgressReporter, Say
from image_assets.storage import BlobNotFound, BlobStore


@dataclass
class RenditionStats:
    images: int = 0
    encoded_images: int = 0
    reused_images: int = 0
    files: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    failed: int = 0


def rendition_prefix(master_sha256: str, config: RenditionConfig) -> str:
    return f"renditions/{master_sha256[:2]}/{master_sha256}/{config.fingerprint()}"


def render_images(
    images: list[ImageRecord],
    store: BlobStore,
    config: RenditionConfig,
    *,
    workers: int = 2,
    say: Say = print,
) -> tuple[list[ImageRenditions], RenditionStats]:
    stats = RenditionStats()
    todo = [i for i in images if i.status == "ok" and i.master_key and i.master_sha256]
    progress = ProgressReporter(say, "renditions", len(todo))

    def one(image: ImageRecord) -> ImageRenditions:
        result = _render_one(image, store, config, stats)
        progress.advance()
        return result

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="renditions") as pool:
        results = list(pool.map(one, todo))
    stats.images = len(results)
    for result in results:
        if result.status == "failed":
            stats.failed += 1
            continue
        stats.files += len(result.renditions)
        stats.bytes_out += sum(r.bytes for r in result.renditions)
    stats.bytes_in = sum(i.bytes or 0 for i in todo)
    return results, stats


def _render_one(
    image: ImageRecord, store: BlobStore, config: RenditionConfig, stats: RenditionStats
) -> ImageRenditions:
    assert image.master_key and image.master_sha256
    prefix = rendition_prefix(image.master_sha256, config)
    base = {
        "product_id": image.product_id,
        "position": image.position,
        "master_sha256": image.master_sha256,
    }
    try:
        files = [
            RenditionFile.model_validate(f) for f in json.loads(store.get(f"{prefix}/index.json"))
        ]
        if all(store.exists(f.key) for f in files):
            stats.reused_images += 1
            return ImageRenditions(**base, renditions=files)
    except (BlobNotFound, ValueError):
        pass
    try:
        encoded = make_renditions(store.get(image.master_key), config)
    except (ImageRefused, BlobNotFound) as exc:
        reason = exc.reason if isinstance(exc, ImageRefused) else f"master missing: {exc}"
        return ImageRenditions(**base, status="failed", reason=reason)
    files = []
    for rendition in encoded:
        key = f"{prefix}/{rendition.name}.{EXTENSIONS[rendition.format]}"
        store.put(key, rendition.data)
        files.append(
            RenditionFile(
                name=rendition.name,
                format=rendition.format,
                width=rendition.width,
                height=rendition.height,
                bytes=len(rendition.data),
                key=key,
                sha256=hashlib.sha256(rendition.data).hexdigest(),
            )
        )
    store.put(
        f"{prefix}/index.json",
        json.dumps([f.model_dump() for f in files], sort_keys=True).encode(),
    )
    stats.encoded_images += 1
    return ImageRenditions(**base, encoded=len(files), renditions=files)
