"""Tags against the renditions they are computed beside, and near-duplicate grouping
against comparing every pair.

1. Per image: the renditions of a 12 MP JPEG (``render_all``, the renditions
   asset's work) and then its tags (``fingerprint`` of the 400 px JPEG rendition:
   pHash, dHash, CIELAB colours), in one process; the tags' share of the renditions'
   time (goal: at most 10%).
2. Grouping ``--hashes`` random 64-bit hashes with 1% planted near copies:
   multi-index hashing (``near_duplicate_groups``) against numpy comparing every
   pair (whose time grows with the square of the count); seconds and the ratio
   (goal: 100,000 in under 5 s on 2 cores).

Usage: python benchmarks/tags.py [--images 6] [--hashes 100000]
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from renditions import CONFIG
from sample_images import photo_like

from image_assets.imaging.fingerprint import fingerprint
from image_assets.imaging.near_duplicates import near_duplicate_groups
from image_assets.imaging.pipeline import render_all


def per_image(count: int) -> None:
    images = [photo_like(seed) for seed in range(count)]
    warm = render_all(images[0], CONFIG)  # warm up codecs and imports (scipy's DCT)
    with Image.open(io.BytesIO(warm.renditions[0].data)) as img:
        fingerprint(img)
    rendering = tagging = 0.0
    for data in images:
        started = time.perf_counter()
        result = render_all(data, CONFIG)
        rendering += time.perf_counter() - started
        small = next(r for r in result.renditions if r.name == "w400")
        started = time.perf_counter()
        with Image.open(io.BytesIO(small.data)) as img:
            img.load()
            fingerprint(img)
        tagging += time.perf_counter() - started
    print(
        f"  per 12 MP image: renditions {1000 * rendering / count:6.1f} ms, tags"
        f" {1000 * tagging / count:5.1f} ms = {100 * tagging / rendering:.1f}% of the renditions"
        " (goal <= 10%)"
    )


def planted_hashes(count: int, seed: int = 1) -> list[str]:
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 2**63, size=count, dtype=np.int64).astype(np.uint64)
    values |= rng.integers(0, 2, size=count).astype(np.uint64) << np.uint64(63)
    for i in range(0, count // 100):  # 1% near copies of another picture (2 bits off)
        target = count - 1 - i
        values[target] = values[i] ^ np.uint64(1 << (i % 64)) ^ np.uint64(1 << ((i + 17) % 64))
    return [f"{int(v):016x}" for v in values]


def pairwise(hashes: list[str], distance: int) -> int:
    """Every pair compared (numpy, row by row): the count of close pairs."""
    values = np.array([int(h, 16) for h in hashes], dtype=np.uint64)
    close = 0
    for i in range(len(values) - 1):
        close += int((np.bitwise_count(values[i + 1 :] ^ values[i]) <= distance).sum())
    return close


def grouping(count: int) -> None:
    hashes = planted_hashes(count)
    started = time.perf_counter()
    groups = near_duplicate_groups(hashes, 4)
    indexed = time.perf_counter() - started
    started = time.perf_counter()
    close = pairwise(hashes, 4)
    every_pair = time.perf_counter() - started
    print(
        f"  {count} hashes, distance 4: multi-index {indexed:.2f} s ({len(groups)} groups;"
        f" goal < 5 s), every pair with numpy {every_pair:.2f} s ({close} close pairs):"
        f" {every_pair / indexed:.1f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=6)
    parser.add_argument("--hashes", type=int, default=100_000)
    args = parser.parse_args()
    per_image(args.images)
    grouping(args.hashes)


if __name__ == "__main__":
    main()
