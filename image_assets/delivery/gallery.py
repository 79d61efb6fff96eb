"""The catalog gallery: plain server-rendered HTML over ``clean_kits`` and the uploads.

Every ``<img>`` has ``width`` and ``height`` (no layout shift), ``loading="lazy"``,
a ``srcset`` of the ``limit``/``fit`` renditions with ``sizes``, WebP first through
``<picture>`` with JPEG as the ``<img>`` itself, and the LQIP as its background
until the image arrives. Failed images are listed with their reason. No
JavaScript and no build step: a search box is a GET form.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape
from urllib.parse import quote, urlencode, urlsplit

from image_assets.delivery.catalog_view import Catalog, ShownImage, ShownProduct
from image_assets.imaging.config import RenditionSpec
from image_assets.imaging.geometry import target_size
from image_assets.layout import rendition_label

CARD_SIZES = "(max-width: 640px) 45vw, 260px"
PAGE_SIZES = "(max-width: 900px) 95vw, 860px"

_STYLE = """
body{font:15px/1.4 system-ui,sans-serif;margin:0;color:#1d1d1f;background:#fafafa}
header{padding:12px 20px;background:#1d2b3a;color:#fff;display:flex;gap:16px;align-items:center;flex-wrap:wrap}
header a{color:#fff}
main{padding:16px 20px}
nav a{margin-right:12px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(200px,1fr));gap:16px}
.card{background:#fff;border:1px solid #e3e3e3;border-radius:8px;padding:10px}
.card h3{font-size:15px;margin:8px 0 4px}
img.ph{background-size:cover;background-repeat:no-repeat;background-color:#eceff3;
  max-width:100%;height:auto;display:block}
.failed{color:#a40000;font-size:13px}
.stale{background:#fff3cd;padding:8px 20px}
figure{margin:0 0 24px}
table{border-collapse:collapse;font-size:13px}
td,th{border:1px solid #ddd;padding:4px 8px;text-align:left}
"""


def _page(title: str, body: str, stale: bool = False) -> str:
    notice = (
        '<p class="stale">The catalog is being rebuilt: this is its last complete read.</p>'
        if stale
        else ""
    )
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f'<body><header><strong><a href="/gallery">Catalog</a></strong>'
        '<form action="/gallery" method="get" role="search">'
        '<input type="search" name="q" placeholder="Search by name" aria-label="Search by name">'
        "</form></header>"
        f"{notice}<main>{body}</main></body></html>\n"
    )


def candidates(
    image: ShownImage, specs: Iterable[RenditionSpec]
) -> dict[str, list[tuple[int, str]]]:
    """``{"webp": [(400, url), ...], "jpeg": ...}``: the image's ``limit``/``fit``
    renditions, each with the width it really has (a limit never upscales), one per
    width (a srcset may not name a width twice; the first rendition of it is kept)."""
    out: dict[str, dict[int, str]] = {}
    for spec in specs:
        if spec.crop not in ("limit", "fit"):
            continue
        width, _ = target_size(spec, image.width, image.height)
        for fmt in spec.formats:
            url = image.renditions.get(rendition_label(spec.name, fmt.format))
            if url:
                out.setdefault(fmt.format, {}).setdefault(width, url)
    return {fmt: sorted(by_width.items()) for fmt, by_width in out.items()}


def _srcset(entries: list[tuple[int, str]]) -> str:
    return ", ".join(f"{escape(url)} {width}w" for width, url in entries)


def picture(image: ShownImage, specs: list[RenditionSpec], sizes: str, alt: str) -> str:
    """``<picture>``: WebP candidates, then the JPEG ``<img>`` with its LQIP behind it."""
    found = candidates(image, specs)
    jpeg = found.get("jpeg", [])
    src = jpeg[0][1] if jpeg else image.url  # the smallest JPEG: what old browsers load
    style = f" style=\"background-image:url('{escape(image.lqip)}')\"" if image.lqip else ""
    webp = (
        f'<source type="image/webp" srcset="{_srcset(found["webp"])}" sizes="{sizes}">'
        if "webp" in found
        else ""
    )
    srcset = f' srcset="{_srcset(jpeg)}" sizes="{sizes}"' if jpeg else ""
    return (
        f'<picture>{webp}<img class="ph" src="{escape(src)}"{srcset}'
        f' width="{image.width}" height="{image.height}" loading="lazy" decoding="async"'
        f' alt="{escape(alt)}" data-public-id="{escape(image.public_id)}"{style}></picture>'
    )


def _web_url(url: str) -> bool:
    """Only http(s) links: a vendor page can name any scheme (``javascript:``)."""
    return urlsplit(url).scheme in ("http", "https")


def _product_href(product: ShownProduct) -> str:
    return f"/gallery/{quote(product.manufacturer, safe='')}/{quote(product.product_id, safe='')}"


def _failed(product: ShownProduct) -> str:
    if not product.failed:
        return ""
    items = "".join(
        f'<li class="failed" data-position="{f.position}">image {f.position}: '
        f"{escape(f.status)}, {escape(f.reason)}</li>"
        for f in product.failed
    )
    return f'<ul class="failed-images">{items}</ul>'


def _price(product: ShownProduct) -> str:
    if product.price is None:
        return ""
    return f"<div>{product.price:.2f} {escape(product.currency or '')}</div>"


def index_page(
    catalog: Catalog,
    specs: list[RenditionSpec],
    *,
    query: str = "",
    manufacturer: str = "",
    uploads: list[str] | None = None,
    upload_url: str = "",
) -> str:
    """Products per manufacturer (filtered by ``query`` in the name and by
    ``manufacturer``), then the newest activated uploads."""
    wanted = query.strip().lower()
    parts = []
    if catalog.missing:
        parts.append("<p>No catalog yet: materialize the graph (<code>make demo</code>).</p>")
    links = " ".join(
        f'<a href="/gallery?{urlencode({"m": m})}">{escape(m)} ({n})</a>'
        for m, n in catalog.manufacturers()
    )
    parts.append(f"<nav>{links}</nav>")
    shown = 0
    for maker, _ in catalog.manufacturers():
        if manufacturer and maker != manufacturer:
            continue
        cards = []
        for product in catalog.products:
            if product.manufacturer != maker or (wanted and wanted not in product.name.lower()):
                continue
            image = product.images[0] if product.images else None
            art = (
                picture(image, specs, CARD_SIZES, product.name)
                if image
                else '<div class="failed">no image</div>'
            )
            cards.append(
                f'<article class="card" data-product-id="{escape(product.product_id)}">'
                f'<a href="{_product_href(product)}">{art}</a>'
                f'<h3><a href="{_product_href(product)}">{escape(product.name)}</a></h3>'
                f"{_price(product)}{_failed(product)}</article>"
            )
        if cards:
            shown += len(cards)
            parts.append(
                f'<section data-manufacturer="{escape(maker)}"><h2>{escape(maker)}</h2>'
                f'<div class="grid">{"".join(cards)}</div></section>'
            )
    if wanted and not shown:
        parts.append(f"<p>No product name contains “{escape(query)}”.</p>")
    if uploads and not wanted and not manufacturer:
        cards = []
        for public_id in uploads:
            stem = public_id.rsplit("/", 1)[-1]
            thumb = f"{upload_url}/image/upload/t_thumb_300/{quote(public_id)}.jpg"
            cards.append(
                f'<article class="card upload"><img class="ph" src="{escape(thumb)}" width="300"'
                f' height="300" loading="lazy" decoding="async" alt="upload {escape(stem)}">'
                f"<h3>{escape(stem)}</h3></article>"
            )
        parts.append(
            f'<section data-uploads><h2>Uploads</h2><div class="grid">{"".join(cards)}</div></section>'
        )
    return _page("Catalog", "".join(parts), catalog.stale)


def product_page(product: ShownProduct, specs: list[RenditionSpec]) -> str:
    """Every image of one product, large, with a table of all its renditions."""
    figures = []
    for image in product.images:
        rows = "".join(
            f'<tr><td>{escape(label)}</td><td><a href="{escape(url)}">{escape(url)}</a></td></tr>'
            for label, url in sorted(image.renditions.items())
        )
        figures.append(
            f"<figure>{picture(image, specs, PAGE_SIZES, f'{product.name}, image {image.position}')}"
            f"<figcaption>image {image.position}: {image.width}x{image.height},"
            f' <a href="{escape(image.url)}">master</a></figcaption>'
            f"<table><tr><th>rendition</th><th>URL</th></tr>{rows}</table></figure>"
        )
    source = (
        f'<p><a href="{escape(product.url)}" rel="noopener noreferrer">on the vendor site</a></p>'
        if product.url and _web_url(product.url)
        else ""
    )
    body = (
        f"<h1>{escape(product.name)}</h1><p>{escape(product.manufacturer)} ·"
        f" {escape(product.product_id)}</p>{_price(product)}{source}{_failed(product)}"
        + "".join(figures)
    )
    return _page(product.name, body)
