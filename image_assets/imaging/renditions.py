"""Declarative renditions: named sizes, crop modes and output formats, from YAML.

Like a RESIZING_CONFIG, but typed: each rendition has a width and/or height,
a crop mode, and one or more output formats with their quality. The config's
content hash becomes the Dagster ``code_version`` of the renditions asset, so a
change marks renditions stale in the UI.
"""

from __future__ import annotations

import hashlib
import io
import os
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from PIL import Image, ImageFilter, ImageOps
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DEFAULT_CONFIG = "renditions.yaml"
Format = Literal["jpeg", "webp", "avif", "png"]
# file extensions of every format the platform reads or writes
EXTENSIONS = {
    "jpeg": "jpg",
    "webp": "webp",
    "avif": "avif",
    "png": "png",
    "gif": "gif",
    "tiff": "tif",
    "bmp": "bmp",
}
CONTENT_TYPES = {
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "avif": "image/avif",
    "png": "image/png",
}


class RenditionConfigError(ValueError):
    pass


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OutputFormat(_Strict):
    format: Format
    quality: int = Field(default=80, ge=1, le=100)


class RenditionSpec(_Strict):
    """One named rendition. ``fit`` scales into the box, ``limit`` too but never
    upscales, ``fill`` covers the box and crops (``gravity``), ``pad`` fits and
    pads to the exact box with ``background``."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    width: int | None = Field(default=None, ge=1, le=10_000)
    height: int | None = Field(default=None, ge=1, le=10_000)
    crop: Literal["fit", "limit", "fill", "pad"] = "limit"
    gravity: Literal["center", "entropy"] = "center"
    formats: list[OutputFormat] = Field(min_length=1)

    @model_validator(mode="after")
    def _needs_a_size(self) -> RenditionSpec:
        if self.width is None and self.height is None:
            raise ValueError(f"rendition {self.name!r} needs a width or a height")
        if self.crop in ("fill", "pad") and (self.width is None or self.height is None):
            raise ValueError(f"rendition {self.name!r}: crop {self.crop!r} needs width and height")
        return self


class MasterSpec(_Strict):
    """The normalized image published to the CDN: oriented, sRGB, no metadata,
    at most ``max_side`` pixels (JPEG, or PNG when it has transparency)."""

    max_side: int = Field(default=2000, ge=64, le=10_000)
    quality: int = Field(default=90, ge=1, le=100)

    def as_rendition(self, has_alpha: bool) -> RenditionSpec:
        fmt: Format = "png" if has_alpha else "jpeg"
        return RenditionSpec(
            name="master",
            width=self.max_side,
            height=self.max_side,
            crop="limit",
            formats=[OutputFormat(format=fmt, quality=self.quality)],
        )


class PlaceholderSpec(_Strict):
    """Progressive-loading placeholders: a tiny blurred LQIP and a blurhash."""

    lqip_width: int = Field(default=24, ge=4, le=64)
    lqip_quality: int = Field(default=40, ge=1, le=100)
    blurhash_components: tuple[int, int] = (4, 3)


class RenditionConfig(_Strict):
    background: str = "#ffffff"
    master: MasterSpec | None = MasterSpec()
    placeholders: PlaceholderSpec | None = PlaceholderSpec()
    renditions: list[RenditionSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> RenditionConfig:
        names = [r.name for r in self.renditions]
        if len(names) != len(set(names)):
            raise ValueError("rendition names must be unique")
        if "master" in names:
            raise ValueError("'master' is reserved for the CDN master image")
        return self

    def fingerprint(self) -> str:
        """Stable hash of the config's content (key order and whitespace do not matter)."""
        canonical = self.model_dump_json()
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def load_rendition_config(path: str | os.PathLike[str] | None = None) -> RenditionConfig:
    """Load ``path``, ``IMAGE_ASSETS_RENDITIONS`` or the bundled default config."""
    path = path or os.environ.get("IMAGE_ASSETS_RENDITIONS") or None
    try:
        text = (
            Path(path).read_text(encoding="utf-8")
            if path
            else resources.files("image_assets").joinpath(DEFAULT_CONFIG).read_text("utf-8")
        )
        return RenditionConfig.model_validate(yaml.safe_load(text))
    except OSError as exc:
        raise RenditionConfigError(f"cannot read rendition config {path}: {exc}") from exc
    except (yaml.YAMLError, ValidationError) as exc:
        raise RenditionConfigError(
            f"invalid rendition config {path or DEFAULT_CONFIG}: {exc}"
        ) from exc


def target_size(spec: RenditionSpec, width: int, height: int) -> tuple[int, int]:
    """Output size of ``spec`` for a source of ``width`` x ``height``."""
    if spec.crop in ("fill", "pad"):
        assert spec.width and spec.height
        return spec.width, spec.height
    return content_size(spec, width, height)


def content_size(spec: RenditionSpec, width: int, height: int) -> tuple[int, int]:
    """Size of the scaled image inside the output (the output itself, except for ``pad``)."""
    scale_w = spec.width / width if spec.width else float("inf")
    scale_h = spec.height / height if spec.height else float("inf")
    scale = min(scale_w, scale_h)
    if spec.crop == "limit":
        scale = min(scale, 1.0)
    return max(1, round(width * scale)), max(1, round(height * scale))


def required_source_size(specs: list[RenditionSpec], width: int, height: int) -> tuple[int, int]:
    """The smallest source size from which every rendition can be made without upscaling."""
    need = 0.0
    for spec in specs:
        if spec.crop == "fill":
            assert spec.width and spec.height
            scale = max(spec.width / width, spec.height / height)
        else:
            out_w, out_h = target_size(spec, width, height)
            scale = max(out_w / width, out_h / height)
        need = max(need, min(scale, 1.0))
    return max(1, round(width * need)), max(1, round(height * need))


def render(
    img: Image.Image,
    spec: RenditionSpec,
    background: str,
    reference_size: tuple[int, int] | None = None,
) -> Image.Image:
    """Resize/crop one rendition from an RGB/RGBA image.

    ``reference_size`` is the full image's size when ``img`` is a smaller
    intermediate (DCT-scaled decode or a cascade step): output sizes are
    computed from it, so they never depend on how the pixels were reached.
    """
    width, height = reference_size or img.size
    if spec.crop == "fill":
        assert spec.width and spec.height
        centering = _entropy_centering(img) if spec.gravity == "entropy" else (0.5, 0.5)
        return ImageOps.fit(
            img, (spec.width, spec.height), Image.Resampling.LANCZOS, centering=centering
        )
    out = content_size(spec, width, height)
    resized = resize(img, out)
    if spec.crop == "pad":
        assert spec.width and spec.height
        fill = (0, 0, 0, 0) if img.mode == "RGBA" else background
        canvas = Image.new(img.mode, (spec.width, spec.height), fill)
        canvas.paste(resized, ((spec.width - out[0]) // 2, (spec.height - out[1]) // 2))
        return canvas
    return resized


def resize(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Downscale well and fast: an exact integer factor is an area average (``reduce``,
    what libvips' shrink does), anything else Lanczos with a reducing gap of 3
    (indistinguishable from a full Lanczos, much cheaper for large factors)."""
    if size == img.size:
        return img
    fx, fy = img.width / size[0], img.height / size[1]
    if fx == fy and fx.is_integer() and fx >= 2:
        return img.reduce(int(fx))
    return img.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _entropy_centering(img: Image.Image) -> tuple[float, float]:
    """Centre of the busiest region (a cheap stand-in for attention cropping)."""
    small = img.convert("L").resize((32, 32))
    edges = small.filter(ImageFilter.FIND_EDGES)
    data = list(edges.tobytes())
    total = sum(data) or 1
    cx = sum((i % 32) * v for i, v in enumerate(data)) / total / 31
    cy = sum((i // 32) * v for i, v in enumerate(data)) / total / 31
    return (cx, cy)


# The largest side each encoder accepts; bigger outputs are scaled down to fit.
ENCODER_MAX_SIDE = {"webp": 16383, "avif": 65535, "jpeg": 65500, "png": 1 << 31}


def fit_encoder(img: Image.Image, fmt: str) -> Image.Image:
    """``img`` scaled down (aspect kept) if a side exceeds what ``fmt`` can encode."""
    limit = ENCODER_MAX_SIDE[fmt]
    if max(img.size) <= limit:
        return img
    scale = limit / max(img.size)
    size = (max(1, int(img.width * scale)), max(1, int(img.height * scale)))
    return img.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def flatten(img: Image.Image, background: str) -> Image.Image:
    if img.mode != "RGBA":
        return img
    canvas = Image.new("RGB", img.size, background)
    canvas.paste(img, mask=img.getchannel("A"))
    return canvas


def encode(img: Image.Image, fmt: str, quality: int, background: str = "#ffffff") -> bytes:
    """Encode with deliberate settings; JPEG gets alpha flattened onto ``background``.

    JPEG: optimized Huffman tables, progressive, 4:2:0. WebP: method 4 (a good
    speed/size balance). AVIF: speed 6. PNG: compress level 6. No metadata.
    """
    buf = io.BytesIO()
    if fmt == "jpeg":
        flatten(img, background).save(
            buf, "JPEG", quality=quality, optimize=True, progressive=True, subsampling=2
        )
    elif fmt == "webp":
        img.save(buf, "WEBP", quality=quality, method=4)
    elif fmt == "avif":
        img.save(buf, "AVIF", quality=quality, speed=6)
    elif fmt == "png":
        img.save(buf, "PNG", compress_level=6)
    else:
        raise ValueError(f"unknown output format {fmt!r}")
    return buf.getvalue()
