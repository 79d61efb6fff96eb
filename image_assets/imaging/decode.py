"""Safe decoding and normalization of images that come from someone else.

Every check that can be made from the header is made before any pixel is
decoded: the format allow-list (by content, never by file name), a byte limit
and a pixel limit, so decompression bombs are refused with a reason instead
of a MemoryError. The result is an oriented, sRGB, 8-bit RGB or RGBA image
with no metadata attached.

Animated images and multi-page TIFFs: the first frame/page is used.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from image_assets.failures import FailureKind
from image_assets.formats import READABLE_PILLOW_FORMATS

# Decoders Pillow may try, by content; MPO (multi-picture JPEG) comes out of the JPEG decoder.
OPEN_FORMATS = READABLE_PILLOW_FORMATS
ALLOWED_FORMATS = frozenset({*OPEN_FORMATS, "MPO"})
_SRGB = ImageCms.createProfile("sRGB")


class ImageRefused(ValueError):
    """The bytes are not an acceptable image; ``reason`` is one line, safe to record,
    ``kind`` says which way it failed."""

    def __init__(self, reason: str, kind: FailureKind):
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


@dataclass(frozen=True)
class DecodeLimits:
    max_bytes: int = 50 * 1024 * 1024
    max_pixels: int = 50_000_000
    max_side: int = 20_000


@dataclass(frozen=True)
class ImageInfo:
    format: str
    width: int
    height: int
    mode: str
    frames: int
    orientation: int
    icc_profile: bool = False  # an embedded colour profile (converted to sRGB on decode)


def _sniff_non_image(data: bytes) -> str | None:
    """Why ``data`` is a markup document rather than an image, or None."""
    head = data[:512].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head[:200]:
        return "not an image: an HTML page"
    if head.startswith(b"<?xml") or b"<svg" in head:
        return "not an accepted image: SVG/XML is refused"
    return None


def probe(data: bytes, limits: DecodeLimits = DecodeLimits()) -> ImageInfo:
    """Identify and size-check an image from its header only (no pixel decode)."""
    if not data:
        raise ImageRefused("empty file", FailureKind.EMPTY)
    if len(data) > limits.max_bytes:
        raise ImageRefused(
            f"file too large: {len(data)} bytes > {limits.max_bytes}", FailureKind.TOO_LARGE
        )
    sniffed = _sniff_non_image(data)
    if sniffed:
        raise ImageRefused(sniffed, FailureKind.NOT_AN_IMAGE)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=OPEN_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRefused(f"refused decompression bomb: {exc}", FailureKind.BOMB) from None
    except UnidentifiedImageError:
        raise ImageRefused("not a supported image format", FailureKind.UNSUPPORTED_FORMAT) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageRefused(f"unreadable image header: {exc}", FailureKind.CORRUPT) from None
    width, height = img.size
    if img.format not in ALLOWED_FORMATS:
        raise ImageRefused(f"format {img.format} is not accepted", FailureKind.UNSUPPORTED_FORMAT)
    if width < 1 or height < 1:
        raise ImageRefused(f"invalid dimensions {width}x{height}", FailureKind.CORRUPT)
    if width > limits.max_side or height > limits.max_side or width * height > limits.max_pixels:
        raise ImageRefused(
            f"refused decompression bomb: {width}x{height} exceeds the limit of "
            f"{limits.max_pixels} pixels / {limits.max_side} px per side",
            FailureKind.BOMB,
        )
    try:
        orientation = int(img.getexif().get(0x0112, 1) or 1)
    except Exception:
        orientation = 1
    return ImageInfo(
        format="JPEG" if img.format == "MPO" else img.format,
        width=width,
        height=height,
        mode=img.mode,
        frames=getattr(img, "n_frames", 1),
        orientation=orientation if 1 <= orientation <= 8 else 1,
        icc_profile=bool(img.info.get("icc_profile")),
    )


def check_complete(data: bytes, info: ImageInfo) -> None:
    """Refuse obviously truncated files without decoding pixels.

    A download cut short is the commonest bad image; its header still parses.
    JPEG must end with the EOI marker, PNG with an IEND chunk (and chunk CRCs
    must verify), GIF with its trailer, WebP with as many bytes as its RIFF
    header announces. Other damage is caught when the pixels are decoded.
    """
    tail = data.rstrip(b"\x00")[-12:]
    fmt = info.format
    if fmt == "JPEG" and not tail.endswith(b"\xff\xd9"):
        raise ImageRefused(
            "corrupt or truncated image: JPEG has no end-of-image marker", FailureKind.CORRUPT
        )
    if fmt == "PNG":
        if b"IEND" not in tail:
            raise ImageRefused(
                "corrupt or truncated image: PNG has no IEND chunk", FailureKind.CORRUPT
            )
        try:
            Image.open(io.BytesIO(data), formats=["PNG"]).verify()
        except Exception as exc:
            raise ImageRefused(f"corrupt or truncated image: {exc}", FailureKind.CORRUPT) from None
    if fmt == "GIF" and not tail.endswith(b"\x3b"):
        raise ImageRefused("corrupt or truncated image: GIF has no trailer", FailureKind.CORRUPT)
    if fmt == "WEBP" and len(data) < int.from_bytes(data[4:8], "little") + 8:
        raise ImageRefused(
            "corrupt or truncated image: WebP is shorter than its header says",
            FailureKind.CORRUPT,
        )


def oriented_size(info: ImageInfo) -> tuple[int, int]:
    """Width and height after EXIF orientation (5-8 swap the axes)."""
    if info.orientation in (5, 6, 7, 8):
        return info.height, info.width
    return info.width, info.height


def decode(
    data: bytes,
    limits: DecodeLimits = DecodeLimits(),
    size: tuple[int, int] | None = None,
) -> tuple[Image.Image, ImageInfo]:
    """Decode to an oriented sRGB RGB/RGBA image (first frame), after :func:`probe`.

    ``size`` (oriented width, height, below the image's own) is the size the caller
    will resize the whole image to next: a plain JPEG (RGB or greyscale) then comes
    back already at that size, shrunk on load by libvips (``shrink``); any other
    image comes back whole, and the caller's resize does the work.
    """
    info = probe(data, limits)
    oriented = oriented_size(info)
    if (
        size is not None
        and info.format == "JPEG"
        and info.mode in ("RGB", "L")
        and size[0] <= oriented[0]
        and size[1] <= oriented[1]
        and size != oriented
    ):
        check_complete(data, info)
        # imported here: libvips (about 12 MB) loads only in processes that shrink
        # JPEGs, not in the code server or sensors that merely import this module
        from image_assets.imaging.shrink import ShrinkFailed, shrink_jpeg

        try:
            return shrink_jpeg(data, size, info.icc_profile), info
        except ShrinkFailed as exc:
            raise ImageRefused(f"corrupt or truncated image: {exc}", FailureKind.CORRUPT) from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. palette transparency notes: handled below
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=OPEN_FORMATS)
            if getattr(img, "n_frames", 1) > 1:
                img.seek(0)
            img.load()
    except ImageRefused:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRefused(f"refused decompression bomb: {exc}", FailureKind.BOMB) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageRefused(f"corrupt or truncated image: {exc}", FailureKind.CORRUPT) from None
    return normalize(img), info


def normalize(img: Image.Image) -> Image.Image:
    """Apply EXIF orientation, convert to sRGB and to 8-bit RGB or RGBA, drop metadata."""
    transposed = ImageOps.exif_transpose(img)  # None only with in_place=True
    img = transposed if transposed is not None else img
    icc = img.info.get("icc_profile")
    img = _to_8bit(img)
    if icc:
        try:
            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            out_mode = img.mode if img.mode in ("RGB", "RGBA") else "RGB"
            converted = ImageCms.profileToProfile(img, src, _SRGB, outputMode=out_mode)
            img = converted if converted is not None else img
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # a broken profile is ignored: the pixels are still usable as sRGB
    if img.mode not in ("RGB", "RGBA"):
        img = img.convert("RGB")
    alpha_range = img.getchannel("A").getextrema() if img.mode == "RGBA" else None
    if alpha_range is not None and alpha_range[0] == 255:
        img = img.convert("RGB")  # fully opaque: drop the useless alpha channel
    img.info = {}
    return img


def _to_8bit(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode in ("RGB", "RGBA"):
        return img
    if mode == "CMYK":
        # Adobe CMYK JPEGs are stored inverted; Pillow handles that on convert.
        return img.convert("RGB") if "icc_profile" not in img.info else img
    if mode.startswith("I;16") or mode == "I":
        # 16-bit greyscale: scale 0..65535 down to 0..255 rather than clipping
        return img.convert("I").point(lambda v: v * (1 / 256)).convert("L").convert("RGB")
    if mode in ("P", "PA"):
        return img.convert("RGBA")
    if mode in ("LA", "La", "RGBa"):
        return img.convert("RGBA")
    if mode in ("L", "1", "F"):
        return img.convert("RGB")
    return img.convert("RGBA" if "A" in mode else "RGB")


def has_alpha(img: Image.Image) -> bool:
    return img.mode in ("RGBA", "LA", "PA")
