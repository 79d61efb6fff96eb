"""Decoding, normalization and renditions on images generated in the test."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from image_assets.demo.images import ImageSpec, draw_upright, render_image
from image_assets.imaging.decode import DecodeLimits, ImageRefused, decode, probe
from image_assets.imaging.pipeline import make_master, make_renditions
from image_assets.imaging.renditions import load_rendition_config


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_by_pixels(orientation):
    spec = ImageSpec(seed=f"o{orientation}", width=320, height=200, orientation=orientation)
    img, info = decode(render_image(spec))
    assert info.orientation == orientation
    expected = draw_upright(spec).convert("RGB")
    assert img.size == expected.size == (320, 200)
    # compare a coarse thumbnail: JPEG noise is small, a wrong rotation/flip is not
    got = img.resize((16, 10)).tobytes()
    want = expected.resize((16, 10)).tobytes()
    diff = sum(abs(a - b) for a, b in zip(got, want, strict=True)) / len(got)
    assert diff < 12, f"orientation {orientation}: mean pixel difference {diff:.1f}"


def _png_with_huge_header(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 10))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"<!DOCTYPE html><html><body>404</body></html>", "HTML"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>", "SVG"),
        (_png_with_huge_header(60000, 60000), "decompression bomb"),
        (b"GIF89a-garbage-garbage", "not a supported image|unreadable"),
    ],
)
def test_bad_inputs_are_refused_with_a_reason(data, reason):
    with pytest.raises(ImageRefused, match=reason):
        decode(data)


def test_truncated_jpeg_is_refused():
    whole = render_image(ImageSpec("t", 600, 400))
    with pytest.raises(ImageRefused, match="corrupt or truncated"):
        decode(whole[: len(whole) // 3])


def test_byte_limit_checked_before_decoding():
    data = render_image(ImageSpec("b", 300, 200))
    with pytest.raises(ImageRefused, match="too large"):
        probe(data, DecodeLimits(max_bytes=100))


def test_master_keeps_alpha_and_strips_exif():
    png = render_image(ImageSpec("a", 400, 300, format="PNG", alpha=True))
    master = make_master(png)
    assert master.format == "png"
    assert Image.open(io.BytesIO(master.data)).mode == "RGBA"
    jpeg = render_image(ImageSpec("e", 400, 300, orientation=6))
    master = make_master(jpeg)
    out = Image.open(io.BytesIO(master.data))
    assert master.format == "jpeg" and (master.width, master.height) == (400, 300)
    assert 0x0112 not in out.getexif()


def test_default_renditions_sizes_and_formats():
    config = load_rendition_config()
    data = make_master(render_image(ImageSpec("r", 2400, 1600))).data
    renditions = {(r.name, r.format): r for r in make_renditions(data, config)}
    assert set(renditions) == {
        (n, f)
        for n in ("thumb_200", "thumb_300", "w400", "w800", "w1600")
        for f in ("webp", "jpeg")
    }
    assert (renditions[("thumb_300", "webp")].width, renditions[("thumb_300", "webp")].height) == (
        300,
        300,
    )
    assert (renditions[("w800", "jpeg")].width, renditions[("w800", "jpeg")].height) == (800, 533)
    assert Image.open(io.BytesIO(renditions[("w400", "webp")].data)).format == "WEBP"


def test_limit_never_upscales():
    config = load_rendition_config()
    data = make_master(render_image(ImageSpec("s", 500, 300))).data
    sizes = {r.name: (r.width, r.height) for r in make_renditions(data, config)}
    assert (
        sizes["w1600"] == (500, 300) and sizes["w800"] == (500, 300) and sizes["w400"] == (400, 240)
    )


def test_rgba_to_jpeg_flattens_on_background():
    config = load_rendition_config()
    img = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    jpeg = next(r for r in make_renditions(buf.getvalue(), config) if r.format == "jpeg")
    pixel = Image.open(io.BytesIO(jpeg.data)).convert("RGB").getpixel((5, 5))
    assert all(c > 240 for c in pixel), pixel  # white background, not black
