"""Extractors: turn fetched catalog pages into :class:`Product` records.

Pure functions over bytes; no network. Three kinds cover most shops:
``jsonld`` (schema.org Product), ``shopify`` (``products.json``) and ``css``
(selectors declared in the registry). Link discovery for crawling lives here
too, so the crawler stays generic.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Iterator
from decimal import Decimal, InvalidOperation
from urllib.parse import urljoin, urlsplit

from bs4 import BeautifulSoup, Tag

from image_assets.records import Product, Variant
from image_assets.scraping.identity import product_id_for
from image_assets.scraping.registry import CssCatalog, FieldSelector
from image_assets.scraping.urls import canonical_url

_WS = re.compile(r"\s+")
_PRICE = re.compile(r"[-+]?\d[\d.,\s]*")


def soup(html: bytes | str) -> BeautifulSoup:
    return BeautifulSoup(html, "html.parser")


def clean_text(value: object) -> str | None:
    """Collapse whitespace and decode leftover HTML entities (JSON-LD often has ``&amp;``)."""
    if value is None or isinstance(value, dict | list):
        return None
    text = _WS.sub(" ", html.unescape(str(value))).strip()
    return text or None


def parse_price(value: object) -> float | None:
    """Parse ``"$1,234.50"``, ``"1.234,50 €"``, ``12`` or ``"12.5"`` into a number."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    match = _PRICE.search(str(value))
    if not match:
        return None
    text = match.group(0).replace(" ", "").strip(".,")
    if "," in text and "." in text:
        # the right-most separator is the decimal one
        if text.rfind(",") > text.rfind("."):
            text = text.replace(".", "").replace(",", ".")
        else:
            text = text.replace(",", "")
    elif "," in text:
        head, _, tail = text.rpartition(",")
        text = f"{head.replace(',', '')}.{tail}" if len(tail) != 3 else text.replace(",", "")
    try:
        return float(Decimal(text))
    except InvalidOperation:
        return None


def parse_srcset(srcset: str) -> list[tuple[str, float]]:
    """``srcset`` candidates as (url, width-or-density), per the HTML parsing rules.

    URLs are runs of non-whitespace and may contain commas (CDN transformation
    URLs such as ``w_400,h_300`` do); a comma ends a candidate only after the
    URL's descriptors or at the URL's very end.
    """
    candidates: list[tuple[str, float]] = []
    pos, n = 0, len(srcset)
    while pos < n:
        while pos < n and (srcset[pos].isspace() or srcset[pos] == ","):
            pos += 1
        start = pos
        while pos < n and not srcset[pos].isspace():
            pos += 1
        url = srcset[start:pos]
        descriptor = ""
        if url.endswith(","):
            url = url.rstrip(",")
        else:
            start = pos
            while pos < n and srcset[pos] != ",":
                pos += 1
            descriptor = srcset[start:pos].strip().lower()
        if not url:
            continue
        score = 1.0
        if descriptor and descriptor[-1] in "wx":
            try:
                score = float(descriptor[:-1])
            except ValueError:
                score = 1.0
        candidates.append((url, score))
    return candidates


def largest_srcset_candidate(srcset: str | None) -> str | None:
    """The URL of the widest (or highest density) candidate of a ``srcset``."""
    candidates = parse_srcset(srcset or "")
    return max(candidates, key=lambda c: c[1])[0] if candidates else None


def image_url_from_tag(tag: Tag) -> str | None:
    """Best image URL of an ``<img>``/``<source>``: largest srcset, then lazy attrs, then src."""
    for attr in ("srcset", "data-srcset"):
        url = largest_srcset_candidate(_attr(tag, attr))
        if url:
            return url
    for attr in ("data-src", "data-original", "data-lazy-src", "src"):
        value = _attr(tag, attr)
        if value and not value.startswith("data:"):
            return value
    return None


def _attr(tag: Tag, name: str) -> str | None:
    value = tag.get(name)
    if isinstance(value, list):
        value = " ".join(value)
    return value.strip() if isinstance(value, str) and value.strip() else None


def absolute(url: str | None, base: str) -> str | None:
    if not url:
        return None
    return urljoin(base, url.strip())


def unique(values: Iterable[str | None]) -> list[str]:
    seen: dict[str, None] = {}
    for value in values:
        if value and value not in seen:
            seen[value] = None
    return list(seen)


# -- link discovery -----------------------------------------------------------------


def _itemlist_urls(doc: BeautifulSoup, page_url: str) -> Iterator[str | None]:
    """Product URLs of schema.org ``ItemList`` blocks (``itemListElement[].url``/``item``)."""
    for script in doc.find_all("script", attrs={"type": "application/ld+json"}):
        try:
            data = json.loads(script.string or script.get_text(), strict=False)
        except (json.JSONDecodeError, TypeError):
            continue
        for node in _jsonld_nodes(data):
            if "ItemList" not in _types(node):
                continue
            for element in node.get("itemListElement") or []:
                if not isinstance(element, dict):
                    continue
                item = element.get("item")
                url = element.get("url") or (item.get("url") if isinstance(item, dict) else item)
                if isinstance(url, str):
                    yield absolute(url, page_url)


def discover_links(
    html: bytes, page_url: str, product_selector: str, next_selector: str | None
) -> tuple[list[str], list[str]]:
    """Product-page links and next-page links of a listing page, absolute, same order.

    Product links come from ``product_selector`` and from JSON-LD ``ItemList`` blocks.
    """
    doc = soup(html)
    found = [
        *(absolute(_attr(a, "href"), page_url) for a in doc.select(product_selector)),
        *_itemlist_urls(doc, page_url),
    ]
    # one link per product, however it was decorated (tracking parameters, fragments)
    products = unique(canonical_url(u) if u else None for u in found)
    nexts = (
        unique(absolute(_attr(a, "href"), page_url) for a in doc.select(next_selector))
        if next_selector
        else []
    )
    web = [u for u in products if urlsplit(u).scheme in ("http", "https")]
    return web, nexts


def page_canonical_url(doc: BeautifulSoup, page_url: str) -> str:
    """The page's own canonical URL (``<link rel=canonical>``, else ``og:url``) when it
    names an http(s) URL, else the page's URL; canonicalized either way."""
    for tag, attr in (
        (doc.select_one('link[rel~="canonical"]'), "href"),
        (doc.select_one('meta[property="og:url"]'), "content"),
    ):
        declared = absolute(_attr(tag, attr), page_url) if tag is not None else None
        if declared and urlsplit(declared).scheme in ("http", "https"):
            return canonical_url(declared)
    return canonical_url(page_url)


# -- JSON-LD ---------------------------------------------------------------------------


_CONTAINER_KEYS = ("@graph", "mainEntity", "mainEntityOfPage", "itemListElement", "item")


def _jsonld_nodes(data: object) -> Iterator[dict]:
    """Every node of a JSON-LD block: top level, ``@graph`` and the usual containers
    (``mainEntity``, ``ItemList`` elements). Not every nested value: related
    products (``isSimilarTo``...) are not this page's products."""
    if isinstance(data, list):
        for item in data:
            yield from _jsonld_nodes(item)
    elif isinstance(data, dict):
        yield data
        for key in _CONTAINER_KEYS:
            if key in data and isinstance(data[key], dict | list):
                yield from _jsonld_nodes(data[key])


def _types(node: dict) -> set[str]:
    types = node.get("@type")
    types = types if isinstance(types, list) else [types]
    return {t.rsplit("/", 1)[-1].rsplit(":", 1)[-1] for t in types if isinstance(t, str)}


def _is_product(node: dict) -> bool:
    return bool(_types(node) & {"Product", "ProductGroup", "IndividualProduct", "ProductModel"})


def _jsonld_images(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _jsonld_images(item)
    elif isinstance(value, dict):
        url = value.get("contentUrl") or value.get("url")
        if isinstance(url, str):
            yield url


def _first_offer(offers: object) -> dict:
    if isinstance(offers, list):
        return next((o for o in offers if isinstance(o, dict)), {})
    if isinstance(offers, dict):
        if offers.get("@type") == "AggregateOffer" and "offers" in offers:
            inner = _first_offer(offers["offers"])
            return inner or offers
        return offers
    return {}


def extract_jsonld(
    html: bytes, page_url: str, manufacturer: str
) -> tuple[list[Product], list[str]]:
    """Products from every JSON-LD block of a page; also returns parse problems.

    A malformed block is reported and skipped; the page's other blocks still count.
    """
    doc = soup(html)
    page_canonical = page_canonical_url(doc, page_url)
    products: list[Product] = []
    problems: list[str] = []
    for script in doc.find_all("script", attrs={"type": "application/ld+json"}):
        raw = script.string or script.get_text()
        try:
            data = json.loads(raw, strict=False)  # real sites put raw newlines in strings
        except (json.JSONDecodeError, TypeError) as exc:
            problems.append(
                f"malformed JSON-LD on {page_url}: {exc.msg if hasattr(exc, 'msg') else exc}"
            )
            continue
        nodes = list(_jsonld_nodes(data))
        in_groups = {
            id(v)
            for n in nodes
            if "ProductGroup" in _types(n)
            for v in (n.get("hasVariant") or [])
            if isinstance(v, dict)
        }
        for node in nodes:
            if not _is_product(node) or id(node) in in_groups:
                continue
            variants = [v for v in node.get("hasVariant") or [] if isinstance(v, dict)]
            offer = _first_offer(node.get("offers")) or next(
                (o for o in (_first_offer(v.get("offers")) for v in variants) if o), {}
            )
            declared = node.get("url") if isinstance(node.get("url"), str) else None
            url = canonical_url(absolute(declared, page_url) or "") if declared else page_canonical
            sku = next(
                (
                    str(node[k]).strip()
                    for k in ("sku", "productID", "productGroupID", "mpn")
                    if node.get(k) not in (None, "")
                ),
                None,
            )
            availability = offer.get("availability")
            products.append(
                Product(
                    product_id=product_id_for(sku, url),
                    name=clean_text(node.get("name")),
                    manufacturer=manufacturer,
                    url=url,
                    sku=sku,
                    image_urls=unique(
                        absolute(u, page_url)
                        for source in [node, *variants]
                        for u in _jsonld_images(source.get("image"))
                    ),
                    price=parse_price(offer.get("price", offer.get("lowPrice"))),
                    currency=clean_text(offer.get("priceCurrency")),
                    availability=availability.rsplit("/", 1)[-1]
                    if isinstance(availability, str)
                    else None,
                )
            )
    return products, problems


# -- Shopify ---------------------------------------------------------------------------


def shopify_page_url(base_url: str, page: int, page_size: int, collection: str | None) -> str:
    base = base_url.rstrip("/")
    path = f"/collections/{collection}/products.json" if collection else "/products.json"
    return f"{base}{path}?limit={page_size}&page={page}"


def extract_shopify(
    payload: bytes, base_url: str, manufacturer: str, currency: str | None = None
) -> list[Product]:
    """Products of one ``products.json`` page (raises ``ValueError`` if it is not one)."""
    try:
        data = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise ValueError(f"products.json is not JSON: {exc.msg}") from None
    if not isinstance(data, dict) or not isinstance(data.get("products"), list):
        raise ValueError("products.json has no 'products' list")
    products = []
    for item in data["products"]:
        if not isinstance(item, dict):
            continue
        variants = [v for v in item.get("variants") or [] if isinstance(v, dict)]
        first = variants[0] if variants else {}
        handle = item.get("handle")
        url = canonical_url(f"{base_url.rstrip('/')}/products/{handle}") if handle else None
        images = sorted(
            (i for i in item.get("images") or [] if isinstance(i, dict)),
            key=lambda i: i.get("position") or 0,
        )
        image_urls = [absolute(i.get("src"), base_url + "/") for i in images]
        for variant in variants:
            if variant.get("featured_image"):
                image_urls.append(absolute(variant["featured_image"].get("src"), base_url + "/"))
        sku = first.get("sku") or None
        variant_records = [
            Variant(
                sku=clean_text(v.get("sku")),
                title=clean_text(v.get("title")),
                price=parse_price(v.get("price")),
                available=v.get("available") if isinstance(v.get("available"), bool) else None,
            )
            for v in variants
        ]
        products.append(
            Product(
                product_id=product_id_for(sku, url or str(item.get("id"))),
                name=clean_text(item.get("title")),
                manufacturer=manufacturer,
                url=url,
                sku=sku,
                image_urls=unique(image_urls),
                price=parse_price(first.get("price")),
                currency=currency,
                availability="InStock" if any(v.get("available") for v in variants) else None,
                variants=variant_records,
            )
        )
    return products


# -- CSS selectors ---------------------------------------------------------------------


def _select_value(doc: BeautifulSoup, field: FieldSelector | None) -> str | None:
    if field is None:
        return None
    tag = doc.select_one(field.selector)
    if tag is None:
        return None
    return clean_text(_attr(tag, field.attr) if field.attr else tag.get_text(" "))


def extract_css(
    html: bytes, page_url: str, catalog: CssCatalog, manufacturer: str
) -> list[Product]:
    """The product of one product page, read with the registry's selectors.

    Images come from the ``images`` selector (``<img>``/``<source>`` tags:
    largest srcset candidate, lazy attributes, src) with ``og:image`` as fallback.
    Returns no product when the name selector finds nothing (not a product page).
    """
    doc = soup(html)
    name = _select_value(doc, catalog.name)
    if not name:
        return []
    tags = doc.select(catalog.images.selector)
    urls = [
        _attr(t, catalog.images.attr) if catalog.images.attr else image_url_from_tag(t)
        for t in tags
    ]
    if not any(urls):
        og = doc.select_one('meta[property="og:image"]')
        urls = [_attr(og, "content")] if og else []
    sku = _select_value(doc, catalog.sku)
    url = page_canonical_url(doc, page_url)
    return [
        Product(
            product_id=product_id_for(sku, url),
            name=name,
            manufacturer=manufacturer,
            url=url,
            sku=sku,
            image_urls=unique(absolute(u, page_url) for u in urls),
            price=parse_price(_select_value(doc, catalog.price)),
            currency=_select_value(doc, catalog.currency),
        )
    ]


def merge_products(products: Iterable[Product]) -> list[Product]:
    """Merge duplicates by ``product_id`` (first seen wins, images unioned), sorted by id."""
    merged: dict[str, Product] = {}
    for product in products:
        existing = merged.get(product.product_id)
        if existing is None:
            merged[product.product_id] = product
            continue
        updates = {
            k: v
            for k, v in product.model_dump().items()
            if getattr(existing, k) in (None, "", []) and v not in (None, "", [])
        }
        updates["image_urls"] = unique([*existing.image_urls, *product.image_urls])
        merged[product.product_id] = existing.model_copy(update=updates)
    return [merged[k] for k in sorted(merged)]
