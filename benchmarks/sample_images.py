"""Generated 12 MP JPEGs for the benchmarks (nothing binary is kept in the repository).

Three kinds, because what an encoder costs and saves depends on the content:
  * ``natural``: the statistics of a photograph, a 1/f amplitude spectrum (the
    texture of backdrops, fabric, foliage) with objects, soft edges and sensor
    noise. On it libwebp behaves much as on real photos: about 1 bit per pixel
    at q80 for a 1600 px downscale, and method 2 spends 6% more bytes than
    method 4 at q80 (thumbor's own test photos: 4%; ``webp_effort.py``);
  * ``photo_like``: smooth gradients and blurred shapes under light noise, which a
    downscale averages away: about 0.1 bit per pixel, where every mode decision
    counts (method 2: 15% more bytes than method 4 at 1600 px), a worst case;
  * ``fine_detail``: thin lines and small text, where a halved DCT decode loses
    detail that no resample brings back.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def natural(seed: int, size=(4000, 3000)) -> bytes:
    """A 12 MP JPEG (q90) with a photograph's statistics (see the module docstring).

    The textures are made at half size (an FFT of 1/f-shaped noise) and scaled up,
    which keeps all the detail a 2x or smaller output can show.
    """
    rng = np.random.default_rng(seed)
    w, h = size
    half_w, half_h = w // 2, h // 2
    fy = np.fft.fftfreq(half_h)[:, None]
    fx = np.fft.rfftfreq(half_w)[None, :]
    frequency = np.hypot(fx, fy)
    frequency[0, 0] = 1.0

    def texture() -> np.ndarray:
        spectrum = rng.normal(size=frequency.shape) + 1j * rng.normal(size=frequency.shape)
        field = np.fft.irfft2(spectrum / frequency, s=(half_h, half_w)).astype(np.float32)
        return (field - field.mean()) / field.std()

    luma, hue = texture(), texture()
    backdrop = np.stack([luma * 30 + hue * 8, luma * 30, luma * 30 - hue * 8], -1)
    backdrop += rng.integers(60, 190, 3).astype(np.float32)
    img = Image.fromarray(np.clip(backdrop, 0, 255).astype(np.uint8))
    img = img.resize(size, Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(img)
    for i in range(12):
        x, y, r = int(rng.integers(0, w)), int(rng.integers(0, h)), int(rng.integers(150, 700))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        if i % 2:
            draw.ellipse([x - r, y - r // 2, x + r, y + r // 2], fill=colour)
        else:
            draw.rectangle([x - r, y - r // 3, x + r, y + r // 3], fill=colour)
    img = img.filter(ImageFilter.GaussianBlur(1.2))
    grain = np.clip(128 + 30 * texture(), 0, 255).astype(np.uint8)
    detail = Image.fromarray(grain).resize(size, Image.Resampling.BICUBIC).convert("RGB")
    img = Image.blend(img, detail, 0.25)
    img = Image.blend(img, Image.effect_noise(size, 20).convert("RGB"), 0.08)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def photo_like(seed: int, size=(4000, 3000)) -> bytes:
    """A 12 MP JPEG with photo-like content: gradients, shapes, soft edges and sensor noise."""
    w, h = size
    base = Image.linear_gradient("L").resize(size).convert("RGB")
    tint = Image.new("RGB", size, ((seed * 53) % 256, (seed * 97) % 256, (seed * 29) % 256))
    img = Image.blend(base, tint, 0.5)
    draw = ImageDraw.Draw(img)
    for i in range(40):
        x, y = (seed * 131 + i * 977) % w, (seed * 71 + i * 1451) % h
        r = 80 + (i * 37) % 400
        draw.ellipse(
            [x - r, y - r, x + r, y + r],
            fill=((i * 41) % 256, (i * 83 + seed) % 256, (i * 17) % 256),
        )
    img = img.filter(ImageFilter.GaussianBlur(3))
    noise = Image.effect_noise(size, 24).convert("RGB")
    img = Image.blend(img, noise, 0.12)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def fine_detail(seed: int, size=(4000, 3000)) -> bytes:
    """A 12 MP JPEG of thin lines, small text and flat patches: where a halved DCT
    decode loses detail that no resample brings back."""
    w, h = size
    img = Image.new("RGB", size, (240, 240, 235))
    draw = ImageDraw.Draw(img)
    for x in range(-h, w, 7 + seed % 3):
        draw.line([(x, 0), (x + h, h)], fill=((x * 7) % 256, 60, 120), width=2)
    for y in range(0, h, 40):
        draw.text((10 + seed, y), "ESTES ALPHA III 1/10 SCALE KIT " * 20, fill=(10, 10, 10))
    for i in range(30):
        x, y = (seed * 131 + i * 977) % w, (seed * 71 + i * 1451) % h
        draw.rectangle([x, y, x + 300, y + 300], fill=((i * 41) % 256, (i * 83) % 256, 200))
    img = img.filter(ImageFilter.GaussianBlur(0.7))
    img = Image.blend(img, Image.effect_noise(size, 24).convert("RGB"), 0.05)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=92)
    return buf.getvalue()
