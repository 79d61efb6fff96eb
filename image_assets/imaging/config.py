"""The rendition config: named sizes, crop modes and output formats, from YAML.

Like a RESIZING_CONFIG, but typed: each rendition has a width and/or height,
a crop mode, and one or more output formats with their quality. The config's
content hash becomes the Dagster ``code_version`` of the renditions asset, so a
change marks renditions stale in the UI.
"""

from __future__ import annotations

import hashlib
import os
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from image_assets.formats import OutputFormatName

DEFAULT_CONFIG = "renditions.yaml"
Format = OutputFormatName

# What the renditions depend on besides the config: how pixels are made from it.
# Bump when the same config renders different pixels, so that every renditions
# partition turns stale and is made again. 2: JPEGs decoded by libvips'
# shrink-on-load and Lanczos-3 reduce instead of Pillow's DCT scaling. 3: every
# resample Lanczos-3 (libvips for opaque images), no area average for exact factors.
RENDERER_REVISION = 3


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
    preview: str | None = Field(
        default=None,
        description="The rendition shown as thumbnail in previews (default: the first one).",
    )

    @model_validator(mode="after")
    def _unique_names(self) -> RenditionConfig:
        names = [r.name for r in self.renditions]
        if len(names) != len(set(names)):
            raise ValueError("rendition names must be unique")
        if "master" in names:
            raise ValueError("'master' is reserved for the CDN master image")
        if self.preview is not None and self.preview not in names:
            raise ValueError(f"preview {self.preview!r} is not one of the renditions {names}")
        return self

    def preview_rendition(self) -> RenditionSpec:
        """The rendition previews show as a thumbnail."""
        return next(r for r in self.renditions if r.name == (self.preview or r.name))

    def fingerprint(self) -> str:
        """Stable hash of what the outputs depend on: the config (key order, whitespace
        and the ``preview`` choice do not matter) and ``RENDERER_REVISION``."""
        canonical = self.model_dump_json(exclude={"preview"})
        return hashlib.sha256(f"{RENDERER_REVISION}\n{canonical}".encode()).hexdigest()[:16]


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
