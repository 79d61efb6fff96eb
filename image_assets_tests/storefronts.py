"""Storefronts built the way common platforms build their pages, served on 127.0.0.1.

Each shop is written from the platform's public shapes, not from the demo's sites:

- ``woo``: a WooCommerce shop. Its public Store API
  (``/wp-json/wc/store/v1/products``: prices in minor units with
  ``currency_minor_unit``, ``X-WP-Total``/``X-WP-TotalPages``, 400
  ``rest_invalid_param`` for ``per_page`` over 100 and 400
  ``rest_post_invalid_page_number`` past the last page, as WordPress answers), and
  its product pages with an SEO plugin's schema.org ``@graph``: the Product's image
  is an ``@id`` reference to an ImageObject, its offer is priced only through a
  ``priceSpecification`` next to a ``StrikethroughPrice``.
- ``alt``: an older shop. Microdata only (a breadcrumb's ``itemprop=name`` before the
  product's), pages in Latin-1, Windows-1252, Shift_JIS (declared only by
  ``http-equiv``) and UTF-8 with a BOM under a wrong HTTP charset, old product URLs
  that redirect (301 with a relative ``Location``, a 302 -> 307 chain, a 308),
  relative image paths, ``<base href>``, one page in RDFa, German prices.
- ``modern``: JSON-LD as Google's Product documentation shows it: a ProductGroup
  with ``hasVariant``, an AggregateOffer, ``StrikethroughPrice``, ImageObjects; the
  listing is a schema.org ItemList only.
- ``next``: a client-rendered Next.js shop: ``__NEXT_DATA__`` on listing and product
  pages, and a page that assigns ``window.__STATE__`` as a JavaScript literal.
- ``shopify``: ``products.json`` with a handle in Unicode and no sku.

``EXPECTED`` holds what a reader must find for every product: name, price,
currency, id and every image path.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, quote, urlsplit

from image_assets.demo.images import ImageSpec, render_image
from image_assets.demo.serving import serve


@dataclass(frozen=True)
class Expected:
    product_id: str
    name: str
    price: float
    currency: str
    images: tuple[str, ...]  # paths on the shop's server


Response = tuple[int, dict[str, str], bytes]


def _image(seed: str) -> bytes:
    return render_image(ImageSpec(seed, 160, 120))


def _html(head: str, body: str) -> str:
    return f"<!DOCTYPE html><html><head>{head}</head><body>{body}</body></html>"


def _ld(data: object) -> str:
    return f'<script type="application/ld+json">{json.dumps(data, ensure_ascii=False)}</script>'


class Storefronts:
    """Every shop's routes; ``hits`` counts requests per path (with query)."""

    def __init__(self, base: str):
        self.base = base
        self.routes: dict[str, Callable[[], Response]] = {}
        self.hits: dict[str, int] = {}
        self.lock = threading.Lock()
        self.images: set[str] = set()
        self._woo()
        self._alt()
        self._modern()
        self._next()
        self._nuxt()
        self._shopify()

    # -- helpers ------------------------------------------------------------------
    def page(
        self,
        path: str,
        text: str,
        charset: str | None = "utf-8",
        encoding: str = "utf-8",
        bom: bool = False,
    ) -> None:
        body = text.encode(encoding)
        if bom:
            body = b"\xef\xbb\xbf" + body
        content_type = f"text/html; charset={charset}" if charset else "text/html"
        self.routes[path] = lambda: (200, {"Content-Type": content_type}, body)

    def redirect(self, path: str, status: int, location: str) -> None:
        self.routes[path] = lambda: (status, {"Location": location}, b"")

    def image(self, path: str) -> str:
        data = _image(path)
        self.images.add(path)
        self.routes[path] = lambda: (200, {"Content-Type": "image/jpeg"}, data)
        return path

    def url(self, path: str) -> str:
        return self.base + path

    # -- WooCommerce + an SEO plugin's graph ----------------------------------------
    WOO_PRODUCTS = [
        {
            "id": 101,
            "name": "Aerotech Initiator &#8211; Kit",
            "slug": "initiator",
            "sku": "AT-INIT",
            "prices": {
                "price": "129900",
                "regular_price": "149900",
                "sale_price": "129900",
                "currency_code": "EUR",
                "currency_minor_unit": 2,
            },
            "images": [
                "/woo/wp-content/uploads/2026/03/initiator.jpg",
                "/woo/wp-content/uploads/2026/03/initiator-2.jpg",
            ],
        },
        {
            "id": 102,
            "name": "Mini-Rakete",
            "slug": "mini-rakete",
            "sku": "",
            "prices": {
                "price": "995",
                "regular_price": "995",
                "sale_price": "995",
                "currency_code": "EUR",
                "currency_minor_unit": 2,
            },
            "images": ["/woo/wp-content/uploads/2026/03/mini.jpg"],
        },
        {
            "id": 103,
            "name": "Zubeh&ouml;r-Set &amp; Starter",
            "slug": "zubehoer-set",
            "sku": "ZS-1",
            "prices": {
                "price": "1500",
                "regular_price": "1500",
                "sale_price": "1500",
                "currency_code": "EUR",
                "currency_minor_unit": 2,
            },
            # the same photo as the Initiator's: downloaded once per run
            "images": ["/woo/wp-content/uploads/2026/03/initiator.jpg"],
        },
    ]

    def _woo(self) -> None:
        for item in self.WOO_PRODUCTS:
            for path in item["images"]:
                self.image(path)
        self.routes["/woo/wp-json/wc/store/v1/products"] = self._store_api
        links = "".join(
            f'<li class="product"><a href="/woo/produkt/{p["slug"]}/">{p["name"]}</a></li>'
            for p in self.WOO_PRODUCTS
        )
        self.page("/woo/shop/", _html("<title>Shop</title>", f'<ul class="products">{links}</ul>'))
        for item in self.WOO_PRODUCTS:
            page_url = self.url(f"/woo/produkt/{item['slug']}/")
            amount = int(item["prices"]["price"]) / 100
            graph = {
                "@context": "https://schema.org",
                "@graph": [
                    {
                        "@type": "WebPage",
                        "@id": page_url,
                        "url": page_url,
                        "primaryImageOfPage": {"@id": page_url + "#primaryimage"},
                        "breadcrumb": {"@id": page_url + "#breadcrumb"},
                    },
                    {
                        "@type": "ImageObject",
                        "@id": page_url + "#primaryimage",
                        "url": self.url(item["images"][0]),
                        "contentUrl": self.url(item["images"][0]),
                        "width": 160,
                        "height": 120,
                    },
                    {
                        "@type": "BreadcrumbList",
                        "@id": page_url + "#breadcrumb",
                        "itemListElement": [
                            {
                                "@type": "ListItem",
                                "position": 1,
                                "name": "Startseite",
                                "item": self.url("/woo/"),
                            },
                            {"@type": "ListItem", "position": 2, "name": "Shop"},
                        ],
                    },
                    {
                        "@type": "Organization",
                        "@id": self.url("/woo/#organization"),
                        "name": "Woo Raketen",
                    },
                    {
                        "@type": "Product",
                        "@id": page_url + "#product",
                        "name": item["name"],
                        "url": page_url,
                        "mainEntityOfPage": {"@id": page_url},
                        "image": {"@id": page_url + "#primaryimage"},
                        **({"sku": item["sku"]} if item["sku"] else {"productID": str(item["id"])}),
                        "offers": [
                            {
                                "@type": "Offer",
                                "priceSpecification": [
                                    {
                                        "@type": "UnitPriceSpecification",
                                        "price": f"{amount:.2f}",
                                        "priceCurrency": "EUR",
                                        "valueAddedTaxIncluded": True,
                                    },
                                    {
                                        "@type": "UnitPriceSpecification",
                                        "priceType": "https://schema.org/StrikethroughPrice",
                                        "price": f"{amount * 1.2:.2f}",
                                        "priceCurrency": "EUR",
                                    },
                                ],
                                "availability": "http://schema.org/InStock",
                                "seller": {"@id": self.url("/woo/#organization")},
                            }
                        ],
                    },
                ],
            }
            self.page(
                f"/woo/produkt/{item['slug']}/", _html(_ld(graph), f"<h1>{item['name']}</h1>")
            )

    def _store_api(self, query: dict[str, list[str]] | None = None) -> Response:
        query = query or {}
        allowed = {"page", "per_page", "category", "orderby", "order"}
        unknown = set(query) - allowed
        try:
            page = int(query.get("page", ["1"])[0])
            per_page = int(query.get("per_page", ["10"])[0])
        except ValueError:
            return _wp_error("rest_invalid_param", "Invalid parameter(s): page")
        if unknown:
            return _wp_error(
                "rest_invalid_param", f"Invalid parameter(s): {', '.join(sorted(unknown))}"
            )
        if not 1 <= per_page <= 100:
            return _wp_error("rest_invalid_param", "Invalid parameter(s): per_page")
        total = len(self.WOO_PRODUCTS)
        pages = max(1, -(-total // per_page))
        if page < 1 or page > pages:
            return _wp_error(
                "rest_post_invalid_page_number",
                "The page number requested is larger than the number of pages available.",
            )
        chunk = self.WOO_PRODUCTS[(page - 1) * per_page : page * per_page]
        body = [
            {
                "id": item["id"],
                "name": item["name"],
                "slug": item["slug"],
                "permalink": self.url(f"/woo/produkt/{item['slug']}/"),
                "sku": item["sku"],
                "prices": {
                    **item["prices"],
                    "currency_symbol": "€",
                    "currency_prefix": "",
                    "currency_suffix": " €",
                    "currency_decimal_separator": ",",
                    "currency_thousand_separator": ".",
                    "price_range": None,
                },
                "images": [
                    {
                        "id": n,
                        "src": self.url(path),
                        "thumbnail": self.url(path),
                        "srcset": "",
                        "sizes": "",
                        "name": path.rsplit("/", 1)[-1],
                        "alt": "",
                    }
                    for n, path in enumerate(item["images"], start=1)
                ],
                "is_in_stock": True,
                "variations": [],
            }
            for item in chunk
        ]
        headers = {
            "Content-Type": "application/json; charset=UTF-8",
            "X-WP-Total": str(total),
            "X-WP-TotalPages": str(pages),
        }
        return 200, headers, json.dumps(body).encode()

    # -- an older shop: microdata, legacy charsets, redirects -----------------------
    def _alt(self) -> None:
        crumbs = (
            '<ol itemscope itemtype="https://schema.org/BreadcrumbList">'
            '<li itemprop="itemListElement" itemscope itemtype="https://schema.org/ListItem">'
            '<a itemprop="item" href="/alt/"><span itemprop="name">Startseite</span></a>'
            '<meta itemprop="position" content="1"></li></ol>'
        )
        listing = "".join(
            f'<a class="artikel" href="/alt/artikel.php?id={n}">Artikel {n}</a>'
            for n in (7, 8, 9, 10)
        )
        self.page(
            "/alt/katalog.php",
            _html("<title>Katalog</title>", listing),
            charset="iso-8859-1",
            encoding="latin-1",
        )

        # 7: Latin-1 by HTTP charset only; moved with a relative Location
        self.redirect("/alt/artikel.php?id=7", 301, "raketen/premiere.html")
        self.image("/alt/raketen/bilder/premiere.jpg")
        self.image("/alt/raketen/bilder/premiere-seite.jpg")
        self.page(
            "/alt/raketen/premiere.html",
            _html(
                "<title>Première 2000</title>",
                crumbs + '<div itemscope itemtype="https://schema.org/Product">'
                '<h1 itemprop="name">Première 2000</h1>'
                '<img itemprop="image" src="bilder/premiere.jpg" alt="">'
                '<img itemprop="image" src="bilder/premiere-seite.jpg" alt="">'
                '<span itemprop="sku">PR-2000</span>'
                '<div itemprop="offers" itemscope itemtype="https://schema.org/Offer">'
                '<span>EUR 1.299,-</span><meta itemprop="price" content="1299.00">'
                '<meta itemprop="priceCurrency" content="EUR"></div></div>',
            ),
            charset="iso-8859-1",
            encoding="latin-1",
        )
        # 8: Windows-1252 (curly quotes, euro sign), a 302 -> 307 chain, price only as text
        self.redirect("/alt/artikel.php?id=8", 302, "/alt/weiter/8")
        self.redirect("/alt/weiter/8", 307, "/alt/raketen/blitz.html")
        self.image("/alt/raketen/bilder/blitz.jpg")
        self.page(
            "/alt/raketen/blitz.html",
            _html(
                "<title>Blitz</title>",
                crumbs + '<div itemscope itemtype="https://schema.org/Product">'
                '<h1 itemprop="name">Große Rakete „Blitz“</h1>'
                '<img itemprop="image" src="bilder/blitz.jpg">'
                '<meta itemprop="sku" content="GR-BLITZ">'
                '<p itemprop="offers" itemscope itemtype="https://schema.org/Offer">'
                '<span itemprop="price">1.049,95</span> <span itemprop="priceCurrency" content="EUR">€</span></p></div>',
            ),
            charset="windows-1252",
            encoding="cp1252",
        )
        # 9: RDFa, UTF-8 with a BOM under a wrong HTTP charset; a 308 to an absolute URL;
        # no sku: the id is the text of its (percent-encoded) path
        target = "/alt/raketen/" + quote("fusée-élan") + ".html"
        self.redirect("/alt/artikel.php?id=9", 308, self.url(target))
        self.image("/alt/raketen/bilder/fusee.jpg")
        self.page(
            target,
            _html(
                "<title>Fusée</title>",
                '<div vocab="https://schema.org/" typeof="Product">'
                '<h1 property="name">Fusée Élan</h1>'
                '<img property="image" src="bilder/fusee.jpg">'
                '<div property="offers" typeof="Offer"><span property="price" content="19.90">19,90 €</span>'
                '<meta property="priceCurrency" content="EUR"></div></div>',
            ),
            charset="iso-8859-1",
            bom=True,
        )
        # 10: Shift_JIS declared only by http-equiv; <base href> moves relative images
        self.image("/alt/media/r1.jpg")
        self.page(
            "/alt/artikel.php?id=10",
            '<!DOCTYPE html><html><head><meta http-equiv="Content-Type" content="text/html; charset=Shift_JIS">'
            '<base href="/alt/media/"><title>ロケット</title></head><body>'
            '<div itemscope itemtype="http://schema.org/Product"><h1 itemprop="name">ロケット一号</h1>'
            '<img itemprop="image" src="r1.jpg"><meta itemprop="mpn" content="JP-001">'
            '<div itemprop="offers" itemscope itemtype="http://schema.org/Offer">'
            '<meta itemprop="price" content="2500"><meta itemprop="priceCurrency" content="JPY"></div></div>'
            "</body></html>",
            charset=None,
            encoding="shift_jis",
        )

    # -- Google's Product documentation shapes ----------------------------------------
    def _modern(self) -> None:
        coat = self.url("/modern/coat")
        items = [
            {"@type": "ListItem", "position": 1, "url": coat},
            {
                "@type": "ListItem",
                "position": 2,
                "item": {"@type": "Product", "url": self.url("/modern/executive-anvil")},
            },
            {"@type": "ListItem", "position": 3, "url": self.url("/modern/nice-trainers")},
        ]
        self.page(
            "/modern/",
            _html(
                _ld(
                    {
                        "@context": "https://schema.org",
                        "@type": "ItemList",
                        "itemListElement": items,
                    }
                ),
                "<div id=app></div>",
            ),
        )
        for path in (
            "/modern/coat_small_green.jpg",
            "/modern/coat_small_lightblue.jpg",
            "/modern/coat_large_green.jpg",
            "/modern/anvil_executive.jpg",
            "/modern/trainers-1x1.jpg",
            "/modern/trainers-4x3.jpg",
        ):
            self.image(path)
        group = {
            "@context": "https://schema.org/",
            "@type": "ProductGroup",
            "name": "Wool winter coat",
            "url": coat,
            "brand": {"@type": "Brand", "name": "Good brand"},
            "productGroupID": "44E01",
            "variesBy": ["https://schema.org/size", "https://schema.org/color"],
            "hasVariant": [
                {
                    "@type": "Product",
                    "sku": "44E01-M11000",
                    "gtin14": "98766051104214",
                    "image": self.url("/modern/coat_small_green.jpg"),
                    "name": "Small green coat",
                    "color": "Green",
                    "size": "small",
                    "offers": {
                        "@type": "Offer",
                        "url": coat + "?size=small&color=green",
                        "priceCurrency": "USD",
                        "price": 39.99,
                        "availability": "https://schema.org/InStock",
                    },
                },
                {
                    "@type": "Product",
                    "sku": "44E01-K11000",
                    "gtin14": "98766051104207",
                    "image": self.url("/modern/coat_small_lightblue.jpg"),
                    "name": "Small light blue coat",
                    "color": "light blue",
                    "size": "small",
                    "offers": {
                        "@type": "Offer",
                        "url": coat + "?size=small&color=lightblue",
                        "priceCurrency": "USD",
                        "price": 39.99,
                    },
                },
                {
                    "@type": "Product",
                    "sku": "44E01-X1100000",
                    "gtin14": "98766051104399",
                    "image": self.url("/modern/coat_large_green.jpg"),
                    "name": "Large green coat",
                    "color": "Green",
                    "size": "large",
                    "offers": {
                        "@type": "Offer",
                        "url": coat + "?size=large&color=green",
                        "priceCurrency": "USD",
                        "price": 49.99,
                    },
                },
            ],
        }
        self.page(
            "/modern/coat",
            _html(
                _ld(group),
                "<picture><source srcset='/modern/coat_small_green.jpg'><img src='/x.gif'></picture>",
            ),
        )
        anvil = {
            "@context": "https://schema.org/",
            "@type": "Product",
            "name": "Executive Anvil",
            "image": [self.url("/modern/anvil_executive.jpg")],
            "description": "Sleeker than ACME's Classic Anvil.",
            "mpn": "925872",
            "brand": {"@type": "Brand", "name": "ACME"},
            "offers": {
                "@type": "AggregateOffer",
                "offerCount": "5",
                "lowPrice": "119.99",
                "highPrice": "199.99",
                "priceCurrency": "USD",
            },
        }
        self.page("/modern/executive-anvil", _html(_ld(anvil), ""))
        trainers = {
            "@context": "https://schema.org/",
            "@type": "Product",
            "sku": "trainer-38",
            "image": [
                {"@type": "ImageObject", "contentUrl": self.url("/modern/trainers-1x1.jpg")},
                {"@type": "ImageObject", "url": "/modern/trainers-4x3.jpg"},
            ],
            "name": "Nice trainers",
            "gtin14": "98766051104214",
            "offers": {
                "@type": "Offer",
                "url": self.url("/modern/nice-trainers"),
                "priceSpecification": [
                    {"@type": "UnitPriceSpecification", "price": 10.49, "priceCurrency": "USD"},
                    {
                        "@type": "UnitPriceSpecification",
                        "priceType": "https://schema.org/StrikethroughPrice",
                        "price": 14.99,
                        "priceCurrency": "USD",
                    },
                ],
            },
        }
        self.page("/modern/nice-trainers", _html(_ld(trainers), ""))

    # -- a client-rendered Next.js shop ---------------------------------------------
    NEXT_PRODUCTS = [
        {
            "id": "prod_01HXA",
            "title": "Astro Launcher",
            "handle": "astro-launcher",
            "price": {"amount": "24.99", "currencyCode": "USD"},
            "images": [
                {"url": "/next/images/astro-1.jpg", "altText": "front"},
                {"url": "/next/images/astro-2.jpg", "altText": "side"},
            ],
        },
        {
            "id": "prod_01HXB",
            "title": "Nova Rocket™",
            "handle": "nova",
            "price": {"amount": "9", "currencyCode": "USD"},
            "images": [{"url": "/next/images/nova.jpg", "altText": ""}],
        },
    ]

    def _next(self) -> None:
        for item in self.NEXT_PRODUCTS:
            for image in item["images"]:
                self.image(image["url"])
        listing = {
            "props": {"pageProps": {"products": self.NEXT_PRODUCTS, "page": 1}},
            "page": "/rockets",
            "query": {},
            "buildId": "b1",
            "isFallback": False,
        }
        links = "".join(
            f'<a href="/next/products/{p["handle"]}">{p["title"]}</a>' for p in self.NEXT_PRODUCTS
        )
        self.page("/next/rockets", _next_page(listing, f'<div id="__next">{links}</div>'))
        for item in self.NEXT_PRODUCTS:
            data = {
                "props": {"pageProps": {"product": item, "related": [self.NEXT_PRODUCTS[0]]}},
                "page": "/products/[handle]",
                "query": {"handle": item["handle"]},
                "buildId": "b1",
            }
            self.page(
                f"/next/products/{item['handle']}", _next_page(data, f"<h1>{item['title']}</h1>")
            )
        # a state object assigned in a script: JavaScript, not JSON (quotes, trailing commas)
        self.image("/next/images/vega.jpg")
        script = (
            "<script>window.__STATE__ = {product: {sku: 'VG-1', name: 'Vega \\'Mk II\\'', "
            "price: 129.5, currency: 'EUR', photos: ['/next/images/vega.jpg',],}, cart: null,};"
            "</script>"
        )
        self.page("/next/state/vega", _html(script, "<div id=app></div>"))

    # -- a Nuxt 3 shop: devalue's flattened payload in __NUXT_DATA__ --------------------
    def _nuxt(self) -> None:
        self.image("/nuxt/img/orbit-1.jpg")
        self.image("/nuxt/img/orbit-2.jpg")
        # as Nuxt 3 renders it: one flat array, every member an index into it; the data
        # key is the page's own useFetch key
        payload = [
            ["ShallowReactive", 1],
            {"data": 2, "state": 10, "once": 12, "_errors": 13, "serverRendered": 15, "path": 16},
            ["ShallowReactive", 3],
            {"product-orbit": 4},
            {"id": 5, "name": 6, "price": 7, "currency": 8, "images": 9},
            88123,
            "Orbit Explorer",
            34.5,
            "GBP",
            [17, 18],
            ["Reactive", 11],
            {},
            ["Set"],
            ["ShallowReactive", 14],
            {"product-orbit": -1},
            True,
            "/products/orbit",
            "/nuxt/img/orbit-1.jpg",
            "/nuxt/img/orbit-2.jpg",
        ]
        script = (
            '<script type="application/json" data-nuxt-data="nuxt-app" data-ssr="true" '
            f'id="__NUXT_DATA__">{json.dumps(payload)}</script>'
        )
        self.page(
            "/nuxt/products/orbit",
            _html("<title>Orbit</title>", f'<div id="__nuxt"></div>{script}'),
        )

    # -- Shopify ----------------------------------------------------------------------
    def _shopify(self) -> None:
        self.image("/shopify/cdn/files/dog.jpg")
        self.image("/shopify/cdn/files/cat.jpg")
        products = [
            {
                "id": 7423861,
                "title": "Little Dog",
                "handle": "little-dog-über",
                "vendor": "x",
                "variants": [
                    {
                        "id": 1,
                        "title": "Default Title",
                        "sku": "",
                        "price": "12.00",
                        "available": True,
                    }
                ],
                "images": [{"id": 5, "position": 1, "src": self.url("/shopify/cdn/files/dog.jpg")}],
            },
            {
                "id": 7423862,
                "title": "Big Cat",
                "handle": "big-cat",
                "vendor": "x",
                "variants": [
                    {
                        "id": 2,
                        "title": "Default Title",
                        "sku": "CAT-1",
                        "price": "1299.00",
                        "available": True,
                    }
                ],
                "images": [{"id": 6, "position": 1, "src": self.url("/shopify/cdn/files/cat.jpg")}],
            },
        ]

        def products_json(query: dict[str, list[str]] | None = None) -> Response:
            page = int((query or {}).get("page", ["1"])[0])
            chunk = products if page == 1 else []
            return (
                200,
                {"Content-Type": "application/json"},
                json.dumps({"products": chunk}).encode(),
            )

        self.routes["/shopify/products.json"] = products_json
        self.page(
            "/shopify/products/big-cat",
            _html('<meta property="og:site_name" content="Little Shop">', "<h1>Big Cat</h1>"),
        )


def _next_page(data: dict, body: str) -> str:
    return _html(
        '<meta charset="utf-8"><title>Next shop</title>',
        body + f'<script id="__NEXT_DATA__" type="application/json">{json.dumps(data)}</script>',
    )


def _wp_error(code: str, message: str) -> Response:
    body = json.dumps({"code": code, "message": message, "data": {"status": 400}}).encode()
    return 400, {"Content-Type": "application/json; charset=UTF-8"}, body


def expected(base: str) -> dict[str, dict[str, Expected]]:
    """vendor key -> product id -> what every reader must find."""
    woo = {
        "at-init": Expected(
            "at-init",
            "Aerotech Initiator \u2013 Kit",
            1299.0,
            "EUR",
            (
                "/woo/wp-content/uploads/2026/03/initiator.jpg",
                "/woo/wp-content/uploads/2026/03/initiator-2.jpg",
            ),
        ),
        "102": Expected(
            "102", "Mini-Rakete", 9.95, "EUR", ("/woo/wp-content/uploads/2026/03/mini.jpg",)
        ),
        "zs-1": Expected(
            "zs-1",
            "Zubehör-Set & Starter",
            15.0,
            "EUR",
            ("/woo/wp-content/uploads/2026/03/initiator.jpg",),
        ),
    }
    # the SEO graph names one primary image per product page
    woo_pages = {
        k: Expected(v.product_id, v.name, v.price, v.currency, v.images[:1]) for k, v in woo.items()
    }
    shops = {
        "woo": woo,
        "woo-pages": woo_pages,
        "alt": {
            "pr-2000": Expected(
                "pr-2000",
                "Première 2000",
                1299.0,
                "EUR",
                ("/alt/raketen/bilder/premiere.jpg", "/alt/raketen/bilder/premiere-seite.jpg"),
            ),
            "gr-blitz": Expected(
                "gr-blitz",
                "Große Rakete „Blitz“",
                1049.95,
                "EUR",
                ("/alt/raketen/bilder/blitz.jpg",),
            ),
            "fusee-elan": Expected(
                "fusee-elan", "Fusée Élan", 19.9, "EUR", ("/alt/raketen/bilder/fusee.jpg",)
            ),
            "jp-001": Expected("jp-001", "ロケット一号", 2500.0, "JPY", ("/alt/media/r1.jpg",)),
        },
        "modern": {
            "44e01": Expected(
                "44e01",
                "Wool winter coat",
                39.99,
                "USD",
                (
                    "/modern/coat_small_green.jpg",
                    "/modern/coat_small_lightblue.jpg",
                    "/modern/coat_large_green.jpg",
                ),
            ),
            "925872": Expected(
                "925872", "Executive Anvil", 119.99, "USD", ("/modern/anvil_executive.jpg",)
            ),
            "trainer-38": Expected(
                "trainer-38",
                "Nice trainers",
                10.49,
                "USD",
                ("/modern/trainers-1x1.jpg", "/modern/trainers-4x3.jpg"),
            ),
        },
        "next": {
            "prod_01hxa": Expected(
                "prod_01hxa",
                "Astro Launcher",
                24.99,
                "USD",
                ("/next/images/astro-1.jpg", "/next/images/astro-2.jpg"),
            ),
            "prod_01hxb": Expected(
                "prod_01hxb", "Nova Rocket™", 9.0, "USD", ("/next/images/nova.jpg",)
            ),
        },
        "nuxt": {
            "88123": Expected(
                "88123",
                "Orbit Explorer",
                34.5,
                "GBP",
                ("/nuxt/img/orbit-1.jpg", "/nuxt/img/orbit-2.jpg"),
            )
        },
        "next-state": {
            "vg-1": Expected("vg-1", "Vega 'Mk II'", 129.5, "EUR", ("/next/images/vega.jpg",))
        },
        "shopify": {
            "7423861": Expected(
                "7423861", "Little Dog", 12.0, "USD", ("/shopify/cdn/files/dog.jpg",)
            ),
            "cat-1": Expected("cat-1", "Big Cat", 1299.0, "USD", ("/shopify/cdn/files/cat.jpg",)),
        },
    }
    shops["next-listing"] = shops["next"]  # the same products, read from the listing's JSON
    return shops


def found(products, base: str) -> dict[str, tuple]:
    """product id -> (name, price, currency, image paths): what a reader found."""
    return {
        p.product_id: (
            p.name,
            p.price,
            p.currency,
            tuple(u.removeprefix(base) for u in p.image_urls),
        )
        for p in products
    }


def wanted(base: str, vendor: str) -> dict[str, tuple]:
    """product id -> (name, price, currency, image paths): what a reader must find."""
    return {k: (e.name, e.price, e.currency, e.images) for k, e in expected(base)[vendor].items()}


def registry_yaml(base: str) -> str:
    """The shops declared with only what the README documents."""
    return f"""
vendors:
  - key: woo
    name: Woo Raketen (Store API)
    allow_private_networks: [127.0.0.0/8]
    catalog: {{kind: woocommerce, base_url: "{base}/woo", per_page: 2}}
  - key: woo-pages
    name: Woo Raketen (product pages)
    allow_private_networks: [127.0.0.0/8]
    catalog: {{kind: structured, start_urls: ["{base}/woo/shop/"], product_links: "li.product a"}}
  - key: alt
    name: Altes Raketenhaus
    locale: de-DE
    allow_private_networks: [127.0.0.0/8]
    catalog: {{kind: structured, start_urls: ["{base}/alt/katalog.php"], product_links: "a.artikel"}}
  - key: modern
    name: Modern Outfitters
    allow_private_networks: [127.0.0.0/8]
    catalog: {{kind: jsonld, start_urls: ["{base}/modern/"], product_links: "a.none"}}
  - key: next
    name: Next Rockets
    allow_private_networks: [127.0.0.0/8]
    catalog:
      kind: embedded_json
      start_urls: ["{base}/next/rockets"]
      product_links: "a[href^='/next/products/']"
      script: "script#__NEXT_DATA__"
      products: props.pageProps.product
      fields:
        name: title
        id: id
        price: price.amount
        currency: price.currencyCode
        images: images[].url
  - key: next-listing
    name: Next Rockets (listing data only)
    allow_private_networks: [127.0.0.0/8]
    catalog:
      kind: embedded_json
      start_urls: ["{base}/next/rockets"]
      products: props.pageProps.products
      fields: {{name: title, id: id, price: price.amount, currency: price.currencyCode, images: "images[].url"}}
  - key: next-state
    name: Vega Store
    allow_private_networks: [127.0.0.0/8]
    catalog:
      kind: embedded_json
      start_urls: ["{base}/next/state/vega"]
      assignment: window.__STATE__
      products: product
      fields: {{name: name, sku: sku, price: price, currency: currency, images: photos}}
  - key: nuxt
    name: Orbit Store
    allow_private_networks: [127.0.0.0/8]
    catalog:
      kind: embedded_json
      start_urls: ["{base}/nuxt/products/orbit"]
      script: "script#__NUXT_DATA__"
      products: data.*
      fields: {{name: name, id: id, price: price, currency: currency, images: images}}
  - key: shopify
    name: Little Shop
    currency: USD
    allow_private_networks: [127.0.0.0/8]
    catalog: {{kind: shopify, base_url: "{base}/shopify"}}
"""


@contextmanager
def storefront_server() -> Iterator[Storefronts]:
    """All the shops on one server on 127.0.0.1 (each path under its shop's prefix)."""
    holder: dict[str, Storefronts] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            shops = holder["shops"]
            parts = urlsplit(self.path)
            with shops.lock:
                shops.hits[self.path] = shops.hits.get(self.path, 0) + 1
            route = shops.routes.get(self.path) or shops.routes.get(parts.path)
            if route is None:
                return self._send(404, {"Content-Type": "text/plain"}, b"not found")
            if route in (shops._store_api,) or getattr(route, "__name__", "") == "products_json":
                status, headers, body = route(parse_qs(parts.query))
            else:
                status, headers, body = route()
            if status == 200:  # weak validators, as most shops' servers send them
                etag = 'W/"' + hashlib.sha1(body).hexdigest()[:16] + '"'
                headers = {**headers, "ETag": etag}
                if self.headers.get("If-None-Match") == etag:
                    return self._send(304, {"ETag": etag}, b"")
            return self._send(status, headers, body)

        def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    with serve(Handler) as server:
        holder["shops"] = Storefronts(server.url)
        yield holder["shops"]
