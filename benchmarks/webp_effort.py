"""What a lower WebP effort costs in bytes: libwebp method 2 against method 4, one core.

For each image, the 1600 (or the photo's own size) and 800 wide Lanczos
downscales are encoded at q80 with both methods: encode time, bytes and PSNR
against the unencoded downscale, then the bytes method 2 needs to reach method
4's PSNR (its quality searched from 80 up, bytes interpolated). The images are
the generated ``natural`` set (``sample_images``) and, with ``--photos DIR``,
every JPEG in a folder of real photos: thumbor's own test photos do, e.g.
``--photos .venv-thumbor/lib/python3.11/site-packages/thumbor/fixtures``.

    .venv/bin/python benchmarks/webp_effort.py --images 3
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from pathlib import Path

from PIL import Image
from renditions import psnr
from sample_images import natural


def encoded(img: Image.Image, quality: int, method: int) -> tuple[int, float, float]:
    """(bytes, PSNR, seconds) of ``img`` as WebP."""
    buf = io.BytesIO()
    started = time.process_time()
    img.save(buf, "WEBP", quality=quality, method=method)
    took = time.process_time() - started
    return len(buf.getvalue()), psnr(Image.open(buf).convert("RGB"), img), took


def bytes_at(img: Image.Image, target_psnr: float, method: int) -> float | None:
    """The bytes ``method`` spends to reach ``target_psnr`` (interpolated between qualities)."""
    previous = encoded(img, 80, method)
    for quality in range(81, 101):
        current = encoded(img, quality, method)
        if current[1] >= target_psnr:
            if previous[1] >= target_psnr:
                return previous[0]
            share = (target_psnr - previous[1]) / (current[1] - previous[1])
            return previous[0] + share * (current[0] - previous[0])
        previous = current
    return None


def compare(name: str, img: Image.Image) -> dict[str, float]:
    fast, fast_psnr, fast_s = encoded(img, 80, 2)
    full, full_psnr, full_s = encoded(img, 80, 4)
    equal = bytes_at(img, full_psnr, 2)
    extra = f"{100 * (equal / full - 1):+5.1f}%" if equal else "  n/a"
    print(
        f"  {name:34s} {img.width:4d}x{img.height:<4d} method 4: {full:7d} B {full_psnr:5.2f} dB"
        f" {1000 * full_s:5.0f} ms | method 2: {100 * (fast / full - 1):+5.1f}% bytes"
        f" {fast_psnr - full_psnr:+5.2f} dB {full_s / fast_s:4.1f}x faster"
        f" | at equal PSNR: {extra}",
        flush=True,
    )
    return {"same_q": fast / full - 1, "equal_psnr": (equal / full - 1) if equal else float("nan")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=6, help="generated natural 12 MP JPEGs")
    parser.add_argument("--photos", type=Path, help="a folder of real JPEG photos (recursive)")
    args = parser.parse_args()
    rows: dict[str, list[dict[str, float]]] = {"natural": [], "photos": []}
    print("WebP q80, method 2 against method 4 (libwebp, through Pillow)")
    for seed in range(args.images):
        full = Image.open(io.BytesIO(natural(seed))).convert("RGB")
        for width in (1600, 800):
            img = full.resize((width, width * 3 // 4), Image.Resampling.LANCZOS)
            rows["natural"].append(compare(f"natural {seed}", img))
    if args.photos:
        for path in sorted(args.photos.rglob("*.jp*g")):
            img = Image.open(path).convert("RGB")
            if min(img.size) >= 64:
                rows["photos"].append(compare(path.name[:34], img))
    for kind, found in rows.items():
        if found:
            same = 100 * statistics.mean(r["same_q"] for r in found)
            equal = [r["equal_psnr"] for r in found if r["equal_psnr"] == r["equal_psnr"]]
            at_equal = f"{100 * statistics.mean(equal):+.1f}%" if equal else "n/a"
            print(
                f"{kind}: method 2 spends {same:+.1f}% bytes at q80,"
                f" {at_equal} at equal PSNR ({len(found)} images)"
            )


if __name__ == "__main__":
    main()
