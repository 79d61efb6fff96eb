"""Three deterministic sample catalog sites, each with a different structure.

* ``estes``: listing pages with ``rel=next`` links to product pages carrying
  schema.org Product JSON-LD (string, list and ImageObject images, ``@graph``,
  offers as a list, HTML entities).
* ``loc``: a Shopify-style ``products.json`` with pagination and variants.
* ``rocketarium``: plain HTML read with CSS selectors (``a.next`` pagination,
  images in ``src``, ``srcset`` and ``data-src``, one product with only ``og:image``).

Every vendor also has one image URL that 404s and one corrupt image. Pages are
rendered for a ``base_url`` (the server's), images lazily on first request.
"""

from __future__ import annotations

import functools
import html
import json
from collections.abc import Callable
from dataclasses import dataclass, field

from image_assets.demo.images import ImageSpec, corrupt_image, render_image
from image_assets.formats import extension, mime_type


def _constant(body: bytes) -> Callable[[], bytes]:
    """A route body that is already made."""
    return lambda: body


ROBOTS_TXT = b"User-agent: *\nDisallow: /private/\n"
LAST_MODIFIED = "Thu, 01 Oct 2026 12:00:00 GMT"


@dataclass(frozen=True)
class DemoProduct:
    vendor: str
    sku: str
    name: str
    price: float
    images: tuple[str, ...]  # image paths relative to the site root ("" = none)


@dataclass
class Route:
    content_type: str
    body: Callable[[], bytes]


@dataclass
class DemoSites:
    """Route table of every demo site for one ``base_url``."""

    base_url: str
    routes: dict[str, Route] = field(default_factory=dict)
    products: dict[str, list[DemoProduct]] = field(default_factory=dict)
    images: dict[str, ImageSpec] = field(default_factory=dict)

    def add(self, path: str, content_type: str, body: Callable[[], bytes]) -> None:
        self.routes[path] = Route(content_type, body)

    def add_image(self, path: str, spec: ImageSpec) -> None:
        self.images[path] = spec
        ctype = mime_type(spec.format)
        self.add(path, ctype, lambda: render_image(spec))

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path


_SIZES = [(800, 600), (1200, 1200), (1600, 1067), (2400, 1600), (3000, 4000), (4000, 3000)]
_ROCKETS = [
    "Alpha III",
    "Big Bertha",
    "Der Red Max",
    "Star Orbiter",
    "Mongoose",
    "Comanche-3",
    "Saturn V & Apollo",
    "Hi-Flier",
    "Goblin",
    "Nike Smoke",
    "Patriot",
    "Wizard",
]


# Vendors reuse one photo for several kits: this one's 7th product shows the 6th's
# first photo (the same bytes at another URL), which the tags' near-duplicate check
# reports.
SHARED_PHOTO_VENDOR = "rocketarium"


def _image_spec(vendor: str, index: int, slot: int) -> ImageSpec:
    width, height = _SIZES[(index + slot * 3) % len(_SIZES)]
    png = (index + slot) % 4 == 1
    orientation = {2: 6, 5: 3, 7: 8}.get(index, 1) if not png and slot == 0 else 1
    return ImageSpec(
        seed=f"{vendor}-{index}-{slot}",
        width=width,
        height=height,
        format="PNG" if png else "JPEG",
        orientation=orientation,
        alpha=png and index % 2 == 1,
    )


def _catalog(vendor: str, count: int, sku_prefix: str, sites: DemoSites) -> list[DemoProduct]:
    products = []
    for index in range(count):
        paths = []
        for slot in range(1 + index % 3):
            spec = _image_spec(vendor, index, slot)
            if vendor == SHARED_PHOTO_VENDOR and index == 6 and slot == 0:
                spec = _image_spec(vendor, 5, 0)  # the same photo as the product before
            ext = extension(spec.format)
            path = f"/{vendor}/images/{sku_prefix}{index + 1:03d}-{slot + 1}.{ext}"
            sites.add_image(path, spec)
            paths.append(path)
        if index == 3:
            paths.append(f"/{vendor}/images/missing-{index}.jpg")  # 404
        if index == 4:
            path = f"/{vendor}/images/corrupt-{index}.jpg"
            sites.add(path, mime_type("jpeg"), functools.partial(corrupt_image, vendor))
            paths = [path]
        if index == count - 1:
            paths = []  # a product without any image
        name = _ROCKETS[(index + len(vendor)) % len(_ROCKETS)]
        products.append(
            DemoProduct(
                vendor=vendor,
                sku=f"{sku_prefix}{index + 1:04d}",
                name=f"{name} {vendor.title()} Kit",
                price=round(14.99 + index * 7.5, 2),
                images=tuple(paths),
            )
        )
    sites.products[vendor] = products
    return products


def _page(title: str, body: str, head: str = "") -> bytes:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"{head}</head><body>{body}</body></html>"
    ).encode()


def _estes(sites: DemoSites) -> None:
    products = _catalog("estes", 9, "EST", sites)
    per_page = 4
    pages = [products[i : i + per_page] for i in range(0, len(products), per_page)]
    for number, chunk in enumerate(pages, start=1):
        links = "".join(
            f"<li><a class='product-link' href='/estes/products/{p.sku.lower()}'>{html.escape(p.name)}</a></li>"
            for p in chunk
        )
        nav = f"<a rel='next' href='?page={number + 1}'>Next</a>" if number < len(pages) else ""
        path = "/estes/catalog" if number == 1 else f"/estes/catalog?page={number}"
        body = _page(f"Estes catalog page {number}", f"<ul>{links}</ul>{nav}")
        sites.add(path, "text/html; charset=utf-8", _constant(body))
    for index, product in enumerate(products):
        image_urls = [sites.url(p) for p in product.images]
        node: dict = {
            "@context": "https://schema.org",
            "@type": "Product",
            "name": product.name.replace("&", "&amp;") if index == 6 else product.name,
            "url": sites.url(f"/estes/products/{product.sku.lower()}"),
            "offers": {
                "@type": "Offer",
                "price": f"{product.price:.2f}",
                "priceCurrency": "USD",
                "availability": "https://schema.org/InStock",
            },
        }
        node["sku" if index % 3 else "productID"] = product.sku
        if index % 3 == 0:
            node["image"] = image_urls[0] if len(image_urls) == 1 else image_urls
        elif index % 3 == 1:
            node["image"] = [{"@type": "ImageObject", "contentUrl": u} for u in image_urls]
        else:
            node["image"] = list(product.images)  # root-relative: resolved against the page
        if index == 5:
            node["offers"] = [node["offers"]]
        data: object = node
        if index == 2:
            data = {"@context": "https://schema.org", "@graph": [{"@type": "BreadcrumbList"}, node]}
        script = json.dumps(data).replace("</", "<\\/")
        body = _page(
            product.name,
            f"<h1>{html.escape(product.name)}</h1>",
            head=f"<script type='application/ld+json'>{script}</script>",
        )
        sites.add(
            f"/estes/products/{product.sku.lower()}", "text/html; charset=utf-8", _constant(body)
        )


def _loc(sites: DemoSites) -> None:
    products = _catalog("loc", 7, "LOC", sites)
    page_size = 4
    items = []
    for index, product in enumerate(products):
        handle = product.name.lower().replace(" ", "-").replace("&", "and")
        items.append(
            {
                "id": 7000 + index,
                "title": product.name,
                "handle": handle,
                "variants": [
                    {
                        "id": 9000 + index,
                        "sku": product.sku,
                        "price": f"{product.price:.2f}",
                        "available": True,
                    },
                    {
                        "id": 9500 + index,
                        "sku": f"{product.sku}-B",
                        "price": f"{product.price + 5:.2f}",
                        "available": False,
                    },
                ],
                "images": [
                    {"id": 100 * index + i, "position": i + 1, "src": sites.url(p)}
                    for i, p in enumerate(product.images)
                ],
            }
        )
    total_pages = (len(items) + page_size - 1) // page_size
    for page in range(1, total_pages + 2):
        chunk = items[(page - 1) * page_size : page * page_size]
        body = json.dumps({"products": chunk}, sort_keys=True).encode()
        sites.add(
            f"/loc/products.json?limit={page_size}&page={page}",
            "application/json",
            _constant(body),
        )


def _rocketarium(sites: DemoSites) -> None:
    products = _catalog("rocketarium", 8, "RKT", sites)
    per_page = 3
    pages = [products[i : i + per_page] for i in range(0, len(products), per_page)]
    for number, chunk in enumerate(pages, start=1):
        tiles = "".join(
            f"<div class='product-tile'><a class='title' href='/rocketarium/product/{p.sku.lower()}.html'>"
            f"{html.escape(p.name)}</a></div>"
            for p in chunk
        )
        nav = (
            f"<a class='next' href='/rocketarium/shop/page/{number + 1}/'>Next &raquo;</a>"
            if number < len(pages)
            else ""
        )
        path = "/rocketarium/shop/" if number == 1 else f"/rocketarium/shop/page/{number}/"
        body = _page(f"Shop page {number}", tiles + nav)
        sites.add(path, "text/html; charset=utf-8", _constant(body))
    for index, product in enumerate(products):
        imgs = []
        for slot, path in enumerate(product.images):
            url = path  # relative URLs: the extractor resolves them against the page
            if slot % 3 == 0:
                imgs.append(f"<img src='{url}' alt='kit'>")
            elif slot % 3 == 1:
                imgs.append(
                    f"<img src='/rocketarium/placeholder.gif' srcset='{url}?w=400 400w, {url} 1600w'>"
                )
            else:
                imgs.append(f"<img class='lazy' data-src='{url}'>")
        head = ""
        if index == 1 and product.images:
            head = f"<meta property='og:image' content='{sites.url(product.images[0])}'>"
            imgs = []
        gallery = f"<div class='gallery'>{''.join(imgs)}</div>"
        body = _page(
            product.name,
            f"<h1 class='product-title'>\n  {html.escape(product.name)}\n</h1>"
            f"<p>SKU: <span class='sku'>{product.sku}</span></p>"
            f"<p class='price'>${product.price:,.2f}</p>"
            f"<meta itemprop='priceCurrency' content='USD'>{gallery}",
            head=head,
        )
        sites.add(
            f"/rocketarium/product/{product.sku.lower()}.html",
            "text/html; charset=utf-8",
            _constant(body),
        )


def build_sites(base_url: str) -> DemoSites:
    """Every demo site's routes for a server reachable at ``base_url``."""
    sites = DemoSites(base_url=base_url)
    sites.add("/robots.txt", "text/plain", lambda: ROBOTS_TXT)
    _estes(sites)
    _loc(sites)
    _rocketarium(sites)
    return sites
