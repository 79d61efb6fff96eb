"""A generated corpus of tricky and bad image files (nothing binary lives in git)."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image

from image_assets.demo.images import ImageSpec, render_image


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_raw(width: int, height: int, bit_depth: int, color_type: int, rows: bytes) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(rows, 9))
        + png_chunk(b"IEND", b"")
    )


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` but holds almost nothing."""
    return png_raw(width, height, 8, 2, b"\x00" * 10)


def png_bomb(side: int = 8000) -> bytes:
    """A real, valid PNG of side x side black pixels: small on disk, huge decoded."""
    row = b"\x00" + b"\x00" * side  # filter byte + greyscale pixels
    return png_raw(side, side, 8, 0, row * side)


def png_16bit_rgb(width: int = 64, height: int = 48) -> bytes:
    """A 16-bit RGB PNG: a red-to-blue gradient in 16-bit samples."""
    rows = bytearray()
    for _y in range(height):
        rows.append(0)
        for x in range(width):
            r = int(65535 * (1 - x / (width - 1)))
            b = int(65535 * x / (width - 1))
            rows += struct.pack(">HHH", r, 0, b)
    return png_raw(width, height, 16, 2, bytes(rows))


def png_16bit_grey(value: int = 65535, size: int = 32) -> bytes:
    img = Image.new("I;16", (size, size), value)
    return _save(img, "PNG")


def _save(img: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def cmyk_jpeg() -> bytes:
    """Pure red in CMYK (0% cyan, 100% magenta, 100% yellow, 0% black)."""
    return _save(Image.new("CMYK", (120, 80), (0, 255, 255, 0)), "JPEG", quality=95)


def palette_png_with_transparency() -> bytes:
    img = Image.new("P", (64, 64), 0)
    img.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    img.paste(1, (32, 0, 64, 64))
    return _save(img, "PNG", transparency=0)  # left half transparent, right half blue


def la_png() -> bytes:
    img = Image.new("LA", (40, 40), (128, 255))
    img.paste((128, 0), (0, 0, 20, 40))
    return _save(img, "PNG")


def rgba_png() -> bytes:
    return render_image(ImageSpec("alpha", 300, 200, format="PNG", alpha=True))


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (50, 50), c) for c in ("red", "blue", "green")]
    return _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def multipage_tiff() -> bytes:
    pages = [Image.new("RGB", (60, 40), c) for c in ("yellow", "black")]
    return _save(pages[0], "TIFF", save_all=True, append_images=pages[1:])


def jpeg_with_gps() -> bytes:
    img = Image.new("RGB", (200, 100), "white")
    exif = Image.Exif()
    exif[0x010F] = "CameraMaker"
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (48.0, 51.0, 29.0)
    return _save(img, "JPEG", exif=exif.tobytes())


def adobe_rgb_icc() -> bytes:
    """A minimal ICC v2 matrix/TRC display profile with Adobe RGB (1998) primaries (D50)."""

    def s15(v: float) -> bytes:
        return struct.pack(">i", round(v * 65536))

    def xyz(x: float, y: float, z: float) -> bytes:
        return b"XYZ " + b"\x00" * 4 + s15(x) + s15(y) + s15(z)

    curve = (
        b"curv"
        + b"\x00" * 4
        + struct.pack(">I", 1)
        + struct.pack(">H", round(2.19921875 * 256))
        + b"\x00\x00"
    )
    text = b"Adobe RGB test\x00"
    desc = b"desc" + b"\x00" * 4 + struct.pack(">I", len(text)) + text + b"\x00" * 12 + b"\x00" * 67
    tags = [
        (b"desc", desc),
        (b"wtpt", xyz(0.9642, 1.0, 0.8249)),
        (b"rXYZ", xyz(0.6097, 0.3111, 0.0195)),
        (b"gXYZ", xyz(0.2053, 0.6257, 0.0609)),
        (b"bXYZ", xyz(0.1492, 0.0632, 0.7446)),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for sig, data in tags:
        data += b"\x00" * (-len(data) % 4)
        table += sig + struct.pack(">II", offset + len(body), len(data))
        body += data
    size = offset + len(body)
    header = (
        struct.pack(">I", size)
        + b"lcms"
        + bytes([2, 0x10, 0, 0])
        + b"mntrRGB XYZ "
        + b"\x00" * 12
        + b"acsp"
        + b"\x00" * 24
        + b"\x00" * 4  # intent
        + s15(0.9642)
        + s15(1.0)
        + s15(0.8249)
        + b"\x00" * 48
    )
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + body


def adobe_rgb_jpeg(colour=(60, 160, 60)) -> bytes:
    return _save(
        Image.new("RGB", (64, 64), colour), "JPEG", quality=100, icc_profile=adobe_rgb_icc()
    )
