"""What reading a product page costs, per kind and page shape, against a bare JSON-LD reader.

The structured reader decodes the page by the browser's precedence, parses it twice
(BeautifulSoup for links and the canonical URL, lxml for extruct) and runs every syntax
whose markers the page has. The peer is the least a JSON-LD-only reader can do:
BeautifulSoup, then ``json.loads`` of each ld+json script. Prints ms per page and the ratio.

    .venv/bin/python benchmarks/extractors.py [--pages 300]
"""

from __future__ import annotations

import argparse
import json
import time

from bs4 import BeautifulSoup

from image_assets.scraping.embedded import extract_embedded
from image_assets.scraping.extractors import extract_structured
from image_assets.scraping.registry import EmbeddedJsonCatalog

FILLER = "".join(f"<li><a href='/c/{n}'>Category {n}</a></li>" for n in range(80))  # a real nav


def _page(head: str, body: str) -> bytes:
    return f"<!DOCTYPE html><html><head><meta charset=utf-8>{head}</head><body><ul>{FILLER}</ul>{body}</body></html>".encode()


def shapes(n: int) -> dict[str, bytes]:
    graph = {
        "@context": "https://schema.org",
        "@graph": [
            {"@type": "WebPage", "@id": "https://s.example/p/#page"},
            {
                "@type": "ImageObject",
                "@id": "https://s.example/p/#img",
                "contentUrl": f"/i/{n}.jpg",
            },
            {
                "@type": "Product",
                "name": f"Kit {n}",
                "sku": f"K{n}",
                "image": {"@id": "https://s.example/p/#img"},
                "offers": [
                    {
                        "@type": "Offer",
                        "priceSpecification": {"price": "12.00", "priceCurrency": "EUR"},
                    }
                ],
            },
        ],
    }
    microdata = (
        '<div itemscope itemtype="https://schema.org/Product"><h1 itemprop="name">Kit</h1>'
        f'<img itemprop="image" src="/i/{n}.jpg"><meta itemprop="sku" content="K{n}">'
        '<div itemprop="offers" itemscope itemtype="https://schema.org/Offer"><meta itemprop="price" content="12">'
        '<meta itemprop="priceCurrency" content="EUR"></div></div>'
    )
    rdfa = (
        '<div vocab="https://schema.org/" typeof="Product"><h1 property="name">Kit</h1>'
        f'<img property="image" src="/i/{n}.jpg"><div property="offers" typeof="Offer">'
        '<span property="price" content="12">12</span></div></div>'
    )
    nxt = {
        "props": {
            "pageProps": {
                "product": {
                    "id": n,
                    "title": "Kit",
                    "price": 12,
                    "images": [{"url": f"/i/{n}.jpg"}],
                }
            }
        }
    }
    return {
        "json-ld graph": _page(
            f'<script type="application/ld+json">{json.dumps(graph)}</script>', "<h1>Kit</h1>"
        ),
        "microdata": _page("", microdata),
        "rdfa": _page("", rdfa),
        "next.js": _page(
            "", f'<script id="__NEXT_DATA__" type="application/json">{json.dumps(nxt)}</script>'
        ),
    }


def bare_jsonld(body: bytes) -> int:
    doc = BeautifulSoup(body, "html.parser")
    found = 0
    for script in doc.find_all("script", attrs={"type": "application/ld+json"}):
        data = json.loads(script.string or "", strict=False)
        found += len(data.get("@graph", [data]))
    return found


def timed(fn, pages: list[bytes]) -> float:
    start = time.perf_counter()
    for page in pages:
        fn(page)
    return (time.perf_counter() - start) / len(pages) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=300)
    args = parser.parse_args()
    catalog = EmbeddedJsonCatalog(
        start_urls=["https://s.example/"],
        products="props.pageProps.product",
        fields={"name": "title", "id": "id", "price": "price", "images": "images[].url"},
    )
    by_shape: dict[str, list[bytes]] = {}
    for n in range(args.pages):
        for shape, page in shapes(n).items():
            by_shape.setdefault(shape, []).append(page)
    url = "https://s.example/p/"
    print(f"{args.pages} pages per shape, {len(FILLER) // 1000} kB of navigation each, one core")
    print(f"{'shape':<16}{'reader':<26}{'ms/page':>9}{'bare JSON-LD':>14}{'ratio':>8}")
    bare = timed(bare_jsonld, by_shape["json-ld graph"])
    for shape, pages in by_shape.items():
        if shape == "next.js":
            reader, cost = (
                "embedded_json",
                timed(lambda b: extract_embedded(b, url, catalog, "m"), pages),
            )
        else:
            reader, cost = (
                "structured (all syntaxes)",
                timed(lambda b: extract_structured(b, url, "m"), pages),
            )
        print(f"{shape:<16}{reader:<26}{cost:>9.2f}{bare:>14.2f}{cost / bare:>7.1f}x")


if __name__ == "__main__":
    main()
