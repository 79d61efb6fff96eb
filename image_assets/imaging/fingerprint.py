"""What an image looks like, in a few numbers: perceptual hashes and its colours.

* pHash and dHash (``imagehash``), 64 bits each as 16 hex digits: near-identical
  pictures (re-encoded, resized, lightly edited) are a few bits apart, which is how
  a photo shared by several products, or a placeholder a scraper picked up for
  every product, is found (``near_duplicates``). On photographs both hold within
  4 bits through resizing and WebP at quality 50; on flat artwork (smooth
  gradients, a few solid shapes) pHash's bits sit near its median and a resized
  copy can be 10 or more bits off, while dHash still holds: such copies are found
  only when their bytes match (the sha256).
* The average colour and a few dominant colours with their share of the picture,
  found by k-means in CIELAB, where distances follow what people see (in RGB a
  dark green and a dark blue are closer than two greens). Computed on a small
  rendition (at most 64 px a side): colours need no detail.

Pure and deterministic: the same pixels give the same hashes and colours.
"""

from __future__ import annotations

from dataclasses import dataclass

import imagehash
import numpy as np
from PIL import Image, ImageCms

COLOUR_SIDE = 64
_SRGB = ImageCms.createProfile("sRGB")
_LAB = ImageCms.createProfile("LAB")
_TO_LAB = ImageCms.buildTransform(_SRGB, _LAB, "RGB", "LAB")
_TO_RGB = ImageCms.buildTransform(_LAB, _SRGB, "LAB", "RGB")


@dataclass(frozen=True)
class Fingerprint:
    phash: str  # 16 hex digits
    dhash: str
    average: str  # "#rrggbb"
    dominant: tuple[tuple[str, float], ...]  # ("#rrggbb", share of pixels), largest first


def fingerprint(img: Image.Image, colours: int = 5) -> Fingerprint:
    """Hashes of ``img`` and its ``colours`` dominant colours (alpha flattened on white)."""
    rgb = _flatten(img)
    small = rgb.copy()
    small.thumbnail((COLOUR_SIDE, COLOUR_SIDE), Image.Resampling.BOX)
    lab = _lab_pixels(small)
    centres, shares = _kmeans(lab, colours)
    order = np.argsort(-shares, kind="stable")
    return Fingerprint(
        phash=str(imagehash.phash(rgb)),
        dhash=str(imagehash.dhash(rgb)),
        average=_hex(lab.mean(axis=0)),
        dominant=tuple((_hex(centres[i]), round(float(shares[i]), 3)) for i in order),
    )


def _flatten(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode in ("RGBA", "LA", "PA", "P"):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, "#ffffff")
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return img.convert("RGB")


def _lab_pixels(img: Image.Image) -> np.ndarray:
    """``(n, 3)`` floats: L* in 0..100, a* and b* signed."""
    converted = ImageCms.applyTransform(img, _TO_LAB)
    assert converted is not None
    raw = np.asarray(converted, dtype=np.uint8).reshape(-1, 3)
    lab = raw.astype(np.float64)
    # Pillow holds L* scaled to a byte and a*, b* as signed bytes (getpixel and
    # putpixel show them offset by 128 instead)
    lab[:, 0] *= 100 / 255
    lab[:, 1:] = raw[:, 1:].view(np.int8)
    return lab


def _kmeans(points: np.ndarray, k: int, rounds: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """Centres and the share of points nearest to each; k-means++ seeded for repeatability."""
    k = max(1, min(k, len(np.unique(points, axis=0))))
    rng = np.random.default_rng(0)
    centres = [points[rng.integers(len(points))]]
    for _ in range(1, k):
        distance = np.min([((points - c) ** 2).sum(axis=1) for c in centres], axis=0)
        total = distance.sum()
        pick = (
            rng.choice(len(points), p=distance / total) if total > 0 else rng.integers(len(points))
        )
        centres.append(points[pick])
    centre = np.array(centres)
    for _ in range(rounds):
        nearest = ((points[:, None, :] - centre[None, :, :]) ** 2).sum(axis=2).argmin(axis=1)
        moved = np.array(
            [
                points[nearest == i].mean(axis=0) if (nearest == i).any() else centre[i]
                for i in range(k)
            ]
        )
        if np.allclose(moved, centre):
            break
        centre = moved
    nearest = ((points[:, None, :] - centre[None, :, :]) ** 2).sum(axis=2).argmin(axis=1)
    shares = np.bincount(nearest, minlength=k) / len(points)
    return centre, shares


def _hex(lab: np.ndarray) -> str:
    """One CIELAB colour as ``#rrggbb`` (sRGB)."""
    pixel = Image.new("LAB", (1, 1))
    l_byte = round(min(100.0, max(0.0, float(lab[0]))) * 255 / 100)
    a, b = (round(min(127.0, max(-128.0, float(v)))) + 128 for v in lab[1:])
    pixel.putpixel((0, 0), (l_byte, a, b))
    rgb = ImageCms.applyTransform(pixel, _TO_RGB)
    assert rgb is not None
    r, g, bl = rgb.getpixel((0, 0))  # type: ignore[misc]
    return f"#{r:02x}{g:02x}{bl:02x}"


def lab_of(colour: str) -> tuple[float, float, float]:
    """``#rrggbb`` in CIELAB (L* 0..100, a*, b* signed)."""
    pixel = Image.new("RGB", (1, 1), colour)
    (lab,) = _lab_pixels(pixel)
    return float(lab[0]), float(lab[1]), float(lab[2])


def colour_difference(a: str, b: str) -> float:
    """CIE76 ΔE between two ``#rrggbb`` colours: about 2.3 is the smallest difference
    people notice; above 10 the colours look clearly different."""
    return float(np.linalg.norm(np.subtract(lab_of(a), lab_of(b))))
