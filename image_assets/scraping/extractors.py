"""Extractors: turn fetched catalog pages into :class:`Product` records.

Pure functions over bytes; no network. The kinds: ``structured`` (schema.org
Product in JSON-LD, microdata or RDFa: ``scraping/structured.py``; ``jsonld`` is
its older name), ``shopify`` (``products.json``), ``woocommerce`` (the Store API),
``embedded_json`` (``scraping/embedded.py``) and ``css`` (selectors declared in the
registry). Every HTML page is decoded as a browser decodes it and its relative
links resolved against the URL that answered (``scraping/decoding.py``). Link
discovery for crawling lives here too, so the crawler stays generic.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Iterator
from urllib.parse import quote, urljoin, urlsplit

from bs4 import BeautifulSoup, Tag

from image_assets.records import Product, Variant
from image_assets.scraping.decoding import read_page
from image_assets.scraping.identity import product_id_for
from image_assets.scraping.prices import (
    NO_HINT,
    PriceHint,
    minor_units,
    parse_price,
    parse_price_text,
)
from image_assets.scraping.registry import CssCatalog, FieldSelector
from image_assets.scraping.structured import jsonld_nodes, read_structured_page, types_of
from image_assets.scraping.urls import canonical_url, page_canonical

_WS = re.compile(r"\s+")


def soup(html: bytes | str) -> BeautifulSoup:
    return BeautifulSoup(html, "html.parser")


def clean_text(value: object) -> str | None:
    """Collapse whitespace and decode leftover HTML entities (JSON-LD often has ``&amp;``)."""
    if value is None or isinstance(value, dict | list):
        return None
    text = _WS.sub(" ", html.unescape(str(value))).strip()
    return text or None


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
        for node in jsonld_nodes(data):
            if "ItemList" not in types_of(node):
                continue
            for element in node.get("itemListElement") or []:
                if not isinstance(element, dict):
                    continue
                item = element.get("item")
                url = element.get("url") or (item.get("url") if isinstance(item, dict) else item)
                if isinstance(url, str):
                    yield absolute(url, page_url)


def discover_links(
    html: bytes,
    page_url: str,
    product_selector: str | None,
    next_selector: str | None,
    content_type: str | None = None,
) -> tuple[list[str], list[str]]:
    """Product-page links and next-page links of a listing page, absolute, same order.

    Product links come from ``product_selector`` and from JSON-LD ``ItemList`` blocks;
    ``page_url`` is the URL that answered (after redirects).
    """
    page, doc = read_page(html, content_type, page_url)
    base = page.base_url
    found = [
        *(
            absolute(_attr(a, "href"), base)
            for a in (doc.select(product_selector) if product_selector else [])
        ),
        *_itemlist_urls(doc, base),
    ]
    # one link per product, however it was decorated (tracking parameters, fragments)
    products = unique(canonical_url(u) if u else None for u in found)
    nexts = (
        unique(absolute(_attr(a, "href"), base) for a in doc.select(next_selector))
        if next_selector
        else []
    )
    web = [u for u in products if urlsplit(u).scheme in ("http", "https")]
    return web, nexts


def page_canonical_url(doc: BeautifulSoup, page_url: str, base_url: str | None = None) -> str:
    """The page's own canonical URL (``<link rel=canonical>``, else ``og:url``, resolved
    against ``base_url``) when it names an http(s) URL, else the page's URL (the one that
    answered); canonicalized either way."""
    declared = [
        _attr(tag, attr) if tag is not None else None
        for tag, attr in (
            (doc.select_one('link[rel~="canonical"]'), "href"),
            (doc.select_one('meta[property="og:url"]'), "content"),
        )
    ]
    return page_canonical(declared, page_url, base_url)


# -- structured data (JSON-LD, microdata, RDFa, OpenGraph) --------------------------


def extract_structured(
    html: bytes,
    page_url: str,
    manufacturer: str,
    *,
    content_type: str | None = None,
    hint: PriceHint = NO_HINT,
) -> tuple[list[Product], list[str]]:
    """Products a page describes in structured data; also the problems met reading it.

    ``page_url`` is the URL that answered. A malformed JSON-LD block is reported and
    skipped; the page's other blocks and syntaxes still count.
    """
    result = read_structured_page(html, content_type, page_url, manufacturer, hint)
    return result.products, result.problems


extract_jsonld = extract_structured  # the kind's older name


# -- Shopify ---------------------------------------------------------------------------


def shopify_page_url(base_url: str, page: int, page_size: int, collection: str | None) -> str:
    base = base_url.rstrip("/")
    path = f"/collections/{collection}/products.json" if collection else "/products.json"
    return f"{base}{path}?limit={page_size}&page={page}"


def extract_shopify(
    payload: bytes,
    base_url: str,
    manufacturer: str,
    currency: str | None = None,
    hint: PriceHint = NO_HINT,
) -> list[Product]:
    """Products of one ``products.json`` page (raises ``ValueError`` if it is not one).

    Ids: the first variant's sku, else Shopify's product ``id``, else the handle's text.
    """
    try:
        data = json.loads(payload)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"products.json is not JSON: {getattr(exc, 'msg', exc)}") from None
    if not isinstance(data, dict) or not isinstance(data.get("products"), list):
        raise ValueError("products.json has no 'products' list")
    products = []
    for item in data["products"]:
        if not isinstance(item, dict):
            continue
        variants = [v for v in item.get("variants") or [] if isinstance(v, dict)]
        first = variants[0] if variants else {}
        handle = item.get("handle")
        url = (
            canonical_url(f"{base_url.rstrip('/')}/products/{handle}")
            if isinstance(handle, str) and handle
            else None
        )
        images = sorted(
            (i for i in item.get("images") or [] if isinstance(i, dict)),
            key=lambda i: i.get("position") or 0,
        )
        image_urls = [absolute(i.get("src"), base_url + "/") for i in images]
        for variant in variants:
            if isinstance(variant.get("featured_image"), dict):
                image_urls.append(absolute(variant["featured_image"].get("src"), base_url + "/"))
        sku = clean_text(first.get("sku"))
        variant_records = [
            Variant(
                sku=clean_text(v.get("sku")),
                title=clean_text(v.get("title")),
                price=parse_price(v.get("price"), hint),
                available=v.get("available") if isinstance(v.get("available"), bool) else None,
            )
            for v in variants
        ]
        products.append(
            Product(
                product_id=product_id_for(sku, url, _platform_id(item.get("id"))),
                name=clean_text(item.get("title")),
                manufacturer=manufacturer,
                url=url,
                sku=sku,
                image_urls=unique(image_urls),
                price=parse_price(first.get("price"), hint),
                currency=currency,
                availability="InStock" if any(v.get("available") for v in variants) else None,
                variants=variant_records,
            )
        )
    return products


def _platform_id(value: object) -> str | None:
    """A platform's product id (numbers or strings; never a bool or a structure)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    text = str(value).strip()
    return text or None


# -- WooCommerce Store API -----------------------------------------------------------


def woocommerce_page_url(base_url: str, page: int, per_page: int, category: str | None) -> str:
    base = base_url.rstrip("/")
    query = f"page={page}&per_page={per_page}"
    if category:
        query += f"&category={quote(category, safe='')}"
    return f"{base}/wp-json/wc/store/v1/products?{query}"


def extract_woocommerce(payload: bytes, base_url: str, manufacturer: str) -> list[Product]:
    """Products of one Store API page: a JSON list (raises ``ValueError`` if it is not one).

    Prices come in minor units with ``currency_minor_unit`` (``"129900"`` and 2 is
    1299.00); names carry HTML entities. Ids: sku, else WooCommerce's product ``id``,
    else the slug's text.
    """
    try:
        data = json.loads(payload)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"the Store API answer is not JSON: {getattr(exc, 'msg', exc)}") from None
    if not isinstance(data, list):
        detail = data.get("code") if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"the Store API answered no product list ({detail})")
    products = []
    for item in data:
        if not isinstance(item, dict):
            continue
        prices: dict = item["prices"] if isinstance(item.get("prices"), dict) else {}
        permalink = item.get("permalink")
        url = (
            canonical_url(absolute(permalink, base_url.rstrip("/") + "/") or "")
            if isinstance(permalink, str) and permalink
            else None
        )
        images = [
            absolute(i.get("src"), base_url.rstrip("/") + "/")
            for i in item.get("images") or []
            if isinstance(i, dict) and isinstance(i.get("src"), str)
        ]
        sku = clean_text(item.get("sku"))
        slug = item.get("slug") if isinstance(item.get("slug"), str) else None
        in_stock = item.get("is_in_stock")
        products.append(
            Product(
                product_id=product_id_for(sku, url or slug, _platform_id(item.get("id"))),
                name=clean_text(item.get("name")),
                manufacturer=manufacturer,
                url=url,
                sku=sku,
                image_urls=unique(images),
                price=minor_units(prices.get("price"), prices.get("currency_minor_unit")),
                currency=clean_text(prices.get("currency_code")),
                availability=None
                if not isinstance(in_stock, bool)
                else ("InStock" if in_stock else "OutOfStock"),
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
    html: bytes,
    page_url: str,
    catalog: CssCatalog,
    manufacturer: str,
    *,
    content_type: str | None = None,
    hint: PriceHint = NO_HINT,
) -> list[Product]:
    """The product of one product page, read with the registry's selectors.

    Images come from the ``images`` selector (``<img>``/``<source>`` tags:
    largest srcset candidate, lazy attributes, src) with ``og:image`` as fallback.
    Returns no product when the name selector finds nothing (not a product page).
    The price text is read by locale (``1.299,-- €``); a currency it names counts
    when no ``currency`` selector does.
    """
    page, doc = read_page(html, content_type, page_url)
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
    url = page_canonical_url(doc, page_url, page.base_url)
    price = parse_price_text(_select_value(doc, catalog.price), hint)
    currency = _select_value(doc, catalog.currency) or price.currency
    return [
        Product(
            product_id=product_id_for(sku, url),
            name=name,
            manufacturer=manufacturer,
            url=url,
            sku=sku,
            image_urls=unique(absolute(u, page.base_url) for u in urls),
            price=float(price.amount) if price.amount is not None else None,
            currency=currency,
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
