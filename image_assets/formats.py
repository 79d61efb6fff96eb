"""The image-format table: the one place that knows each format's extension,
MIME type, encoder limits and whether it keeps transparency.

Keys are the lowercase names Pillow reports (``jpeg``, ``png``...). Every
module that names a file, sets a Content-Type or picks an encoder asks here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

OutputFormatName = Literal["jpeg", "webp", "avif", "png"]


@dataclass(frozen=True)
class ImageFormat:
    name: str
    extension: str
    mime_type: str
    alpha: bool  # can it store transparency
    writable: bool  # does the platform encode it (else: read only)
    max_side: int | None = None  # largest side the encoder accepts

    @property
    def cloudinary_name(self) -> str:
        """The format as Cloudinary's URL grammar spells it (``f_jpg``)."""
        return "jpg" if self.name == "jpeg" else self.name


FORMATS: dict[str, ImageFormat] = {
    f.name: f
    for f in (
        ImageFormat("jpeg", "jpg", "image/jpeg", alpha=False, writable=True, max_side=65500),
        ImageFormat("webp", "webp", "image/webp", alpha=True, writable=True, max_side=16383),
        ImageFormat("avif", "avif", "image/avif", alpha=True, writable=True, max_side=65535),
        ImageFormat("png", "png", "image/png", alpha=True, writable=True, max_side=1 << 31),
        ImageFormat("gif", "gif", "image/gif", alpha=True, writable=False),
        ImageFormat("tiff", "tif", "image/tiff", alpha=True, writable=False),
        ImageFormat("bmp", "bmp", "image/bmp", alpha=False, writable=False),
    )
}
# Formats the platform accepts from vendors and uploads, by content; MPO is a
# multi-picture JPEG and comes out of the JPEG decoder.
READABLE_PILLOW_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "AVIF", "TIFF", "BMP")
# Formats a CDN lookup tries when it does not know which one it stored.
PUBLISHED_FORMATS = ("jpeg", "png", "webp", "avif")


# Other spellings of the same formats (Cloudinary answers ``jpg``).
ALIASES = {"jpg": "jpeg", "tif": "tiff", "mpo": "jpeg"}


def image_format(name: str) -> ImageFormat:
    """The table entry for ``name`` (case-insensitive, aliases too); ``ValueError`` for
    unknown ones."""
    key = name.lower()
    try:
        return FORMATS[ALIASES.get(key, key)]
    except KeyError:
        raise ValueError(f"unknown image format {name!r}") from None


def extension(name: str) -> str:
    """File extension of a format, without the dot (``jpeg`` -> ``jpg``)."""
    return image_format(name).extension


def mime_type(name: str) -> str:
    try:
        return image_format(name).mime_type
    except ValueError:
        return "application/octet-stream"
