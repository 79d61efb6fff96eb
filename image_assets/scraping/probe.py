"""``image-assets probe URL``: which catalog kinds read a shop, what each finds, and the
registry entry to paste.

Adding a vendor used to mean reading its HTML and guessing selectors. The probe
fetches one product page (or, with ``listing``, a listing page and its first
product), tries every kind on it — the platform APIs (Shopify's ``products.json``,
WooCommerce's Store API) near the URL, structured data, JSON embedded in the page,
CSS selectors — and prints what each found (name, price, currency, id, images)
with the expressions or selectors it used, then one registry entry for the best
kind. A person reviews it; nothing is written.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import chompjs
from bs4 import BeautifulSoup, Tag

from image_assets.failures import FailureKind
from image_assets.records import Product
from image_assets.scraping.decoding import read_page
from image_assets.scraping.embedded import extract_embedded, unflatten_devalue
from image_assets.scraping.extractors import (
    discover_links,
    extract_css,
    extract_shopify,
    extract_woocommerce,
    page_canonical_url,
    shopify_page_url,
    woocommerce_page_url,
)
from image_assets.scraping.http import FetchError, HttpClient
from image_assets.scraping.prices import valid_locale
from image_assets.scraping.registry import CssCatalog, EmbeddedJsonCatalog
from image_assets.scraping.structured import read_structured
from image_assets.scraping.urls import canonical_url

KIND_ORDER = ("shopify", "woocommerce", "structured", "embedded_json", "css")
_NAME_KEYS = ("title", "name", "productName")
_PRICE_KEYS = ("price", "amount", "salePrice", "currentPrice", "value")
_CURRENCY_KEYS = ("currency", "currencyCode", "priceCurrency", "currency_code")
_ID_KEYS = ("id", "productId", "product_id", "handle", "slug")
_SKU_KEYS = ("sku", "SKU", "mpn")
_IMAGE_KEY = re.compile(r"image|photo|picture|media|gallery", re.IGNORECASE)
_URL_KEYS = ("url", "src", "contentUrl", "originalSrc", "href")
_ASSIGNMENT = re.compile(r"((?:window\.)?[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*)\s*=\s*[\[{]")
_IDENT = re.compile(r"^[A-Za-z_][\w]*$")
_MAX_WALK = 20_000


@dataclass
class KindFinding:
    """What one kind found on the page, and the catalog entry that reads it so."""

    kind: str
    products: list[Product] = field(default_factory=list)
    catalog: dict | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def found(self) -> bool:
        return any(p.name for p in self.products)


@dataclass
class ProbeReport:
    url: str
    final_url: str
    content_type: str | None
    encoding: str
    findings: list[KindFinding]
    vendor: dict | None  # the registry entry to paste (None when no kind found a product)
    listing: dict | None = None  # product links found on a listing page
    product_url: str | None = None  # with a listing: the product page that was read


def _q(key: str) -> str:
    """A JMESPath identifier (quoted when it is not a plain name)."""
    return key if _IDENT.match(key) else json.dumps(key)


def _image_expression(key: str, value: object) -> str | None:
    if isinstance(value, str):
        return _q(key)
    if isinstance(value, dict):
        inner = next((k for k in _URL_KEYS if isinstance(value.get(k), str)), None)
        return f"{_q(key)}.{inner}" if inner else None
    if isinstance(value, list) and value:
        first = value[0]
        if isinstance(first, str):
            return _q(key)
        if isinstance(first, dict):
            inner = next((k for k in _URL_KEYS if isinstance(first.get(k), str)), None)
            if inner:
                return f"{_q(key)}[].{inner}"
            # Shopify-style {"edges": [{"node": {"url": ...}}]} and the like are left to a person
    return None


def _leaf(obj: dict, keys: tuple[str, ...], nested: tuple[str, ...] = ()) -> str | None:
    """The expression of the first scalar under one of ``keys`` (or ``key.nested``)."""
    for key in keys:
        value = obj.get(key)
        if (
            isinstance(value, str | int | float)
            and not isinstance(value, bool)
            and str(value).strip()
        ):
            return _q(key)
        if isinstance(value, dict):
            for inner in nested:
                leaf = value.get(inner)
                if isinstance(leaf, str | int | float) and not isinstance(leaf, bool):
                    return f"{_q(key)}.{_q(inner)}"
    return None


def product_fields(obj: dict) -> dict[str, str] | None:
    """JMESPath fields for a product-like object (a name, and a price or an image)."""
    name = _leaf(obj, _NAME_KEYS)
    if not name or not isinstance(obj.get(name.strip('"')), str):
        return None
    fields = {"name": name}
    price = _leaf(obj, _PRICE_KEYS, ("amount", "value", "current", "price"))
    if price is None:
        for key, value in obj.items():  # priceRange.minVariantPrice.amount and the like
            if "price" in key.lower() and isinstance(value, dict):
                for inner, leaf in value.items():
                    if isinstance(leaf, dict) and "amount" in leaf:
                        price = f"{_q(key)}.{_q(inner)}.amount"
                        currency = next((c for c in _CURRENCY_KEYS if c in leaf), None)
                        if currency:
                            fields["currency"] = f"{_q(key)}.{_q(inner)}.{currency}"
                        break
            if price:
                break
    if price:
        fields["price"] = price
    currency = _leaf(obj, _CURRENCY_KEYS)
    if currency is None and price and "." in price:
        holder = obj.get(price.split(".", 1)[0].strip('"'))
        if isinstance(holder, dict):
            inner = next((c for c in _CURRENCY_KEYS if c in holder), None)
            currency = f"{price.rsplit('.', 1)[0]}.{inner}" if inner else None
    if currency:
        fields.setdefault("currency", currency)
    for target, keys in (("sku", _SKU_KEYS), ("id", _ID_KEYS)):
        found = _leaf(obj, keys)
        if found:
            fields[target] = found
    for key, value in obj.items():
        if _IMAGE_KEY.search(key):
            expression = _image_expression(key, value)
            if expression:
                fields["images"] = expression
                break
    if "price" not in fields and "images" not in fields:
        return None
    return fields


def _walk(data: object, path: str = "", depth: int = 0) -> Iterator[tuple[str, object]]:
    """(JMESPath, value) of every dict and list in ``data``, breadth first within reason."""
    queue = [(path, data, depth)]
    seen = 0
    while queue and seen < _MAX_WALK:
        path, value, depth = queue.pop(0)
        seen += 1
        yield path, value
        if depth > 12:
            continue
        if isinstance(value, dict):
            for key, item in value.items():
                if isinstance(item, dict | list) and isinstance(key, str):
                    queue.append((f"{path}.{_q(key)}" if path else _q(key), item, depth + 1))


def find_products_in(data: object) -> tuple[str, dict[str, str], int] | None:
    """The best (products expression, fields, how many) for product-like objects in data.

    A list of product-like objects (a listing) beats a single one; nearer the top wins.
    """
    best: tuple[int, int, str, dict[str, str], int] | None = None
    for path, value in _walk(data):
        if isinstance(value, dict):
            fields = product_fields(value)
            if fields:
                score = (len(fields), -path.count("."))
                candidate = (score[0], score[1], path or "@", fields, 1)
                if best is None or (candidate[0], candidate[1]) > (best[0], best[1]):
                    best = candidate
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value[:5]):
            fields = product_fields(value[0])
            if fields and len(value) > 1:
                candidate = (len(fields) + 1, -path.count("."), path, fields, len(value))
                if best is None or (candidate[0], candidate[1]) > (best[0], best[1]):
                    best = candidate
    if best is None:
        return None
    # a key that names this page's own data ("product-orbit", a Nuxt fetch key) differs on
    # every page: any key there instead
    path = ".".join("*" if part.startswith('"') else part for part in best[2].split("."))
    return path, best[3], best[4]


def embedded_sources(doc: BeautifulSoup) -> Iterator[tuple[dict, object]]:
    """(catalog keys that select it, data) of every JSON object a page embeds."""
    data: object
    for tag in doc.find_all("script"):
        text = tag.string or tag.get_text() or ""
        kind = str(tag.get("type") or "").lower()
        if kind == "application/ld+json":
            continue
        if kind == "application/json" or tag.get("id") == "__NEXT_DATA__":
            tag_id = tag.get("id")
            selector = f"script#{tag_id}" if tag_id and _IDENT.match(str(tag_id)) else None
            if selector is None:
                continue  # a JSON script without an id cannot be chosen by selector reliably
            try:
                data = json.loads(text, strict=False)
            except (ValueError, RecursionError):
                continue
            if tag.get("id") == "__NUXT_DATA__" and isinstance(data, list):
                data = unflatten_devalue(data)
            yield {"script": selector}, data
            continue
        for match in _ASSIGNMENT.finditer(text):
            name = match.group(1)
            if name in ("var", "let", "const"):
                continue
            try:
                data = chompjs.parse_js_object(text[match.end() - 1 :])
            except (ValueError, RecursionError):
                continue
            yield {"assignment": name}, data


def _css_guess(doc: BeautifulSoup) -> dict | None:
    """Selectors for a plain HTML product page: its h1, an element classed *price*, a gallery."""
    heading = doc.find("h1")
    if not isinstance(heading, Tag) or not heading.get_text(strip=True):
        return None
    classes = list(heading.get("class") or [])
    catalog: dict = {"name": {"selector": f"h1.{classes[0]}" if classes else "h1"}}
    price = doc.find(class_=re.compile(r"price", re.IGNORECASE))
    if isinstance(price, Tag):
        cls = next(c for c in price.get("class") or [] if re.search("price", c, re.IGNORECASE))
        catalog["price"] = {"selector": f".{cls}"}
    gallery = doc.find(class_=re.compile(r"gallery|product-image|product__media", re.IGNORECASE))
    if isinstance(gallery, Tag) and gallery.find("img"):
        cls = next(
            c
            for c in gallery.get("class") or []
            if re.search("gallery|product-image|product__media", c, re.IGNORECASE)
        )
        catalog["images"] = {"selector": f".{cls} img"}
    return catalog


def _prefixes(url: str) -> list[str]:
    """Base URLs a shop's API may live under: the origin, then the first path segment."""
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}"
    segments = [s for s in parts.path.split("/") if s]
    bases = [origin]
    if segments:
        bases.append(f"{origin}/{segments[0]}")
    return bases


def _probe_platform(client: HttpClient, url: str, kind: str, manufacturer: str) -> KindFinding:
    finding = KindFinding(kind)
    for base in _prefixes(url):
        api = (
            shopify_page_url(base, 1, 3, None)
            if kind == "shopify"
            else woocommerce_page_url(base, 1, 3, None)
        )
        try:
            result = client.fetch(api)
        except FetchError as exc:
            finding.notes.append(f"{api}: {exc.reason}")
            continue
        try:
            products = (
                extract_shopify(result.content, base, manufacturer)
                if kind == "shopify"
                else extract_woocommerce(result.content, base, manufacturer)
            )
        except ValueError as exc:
            finding.notes.append(f"{api}: {exc}")
            continue
        if products:
            finding.products = products
            finding.catalog = {"kind": kind, "base_url": base}
            finding.notes.append(f"read {api}")
            return finding
    return finding


def probe(
    url: str,
    client: HttpClient,
    *,
    listing: bool = False,
    manufacturer: str = "probe",
    platforms: bool = True,
    key: str | None = None,
) -> ProbeReport:
    """Fetch ``url`` and try every kind on it (on its first product, with ``listing``)."""
    result = client.fetch(url)
    start_url, listing_final = url, result.final_url
    site_doc = read_page(result.content, result.content_type, result.final_url)[1]
    listing_info: dict | None = None
    if listing:
        listing_info = _listing_links(result.content, result.final_url, result.content_type)
        links = listing_info["products"]
        if not links:
            raise FetchError(
                url, "no product links found on the listing page", FailureKind.UNPARSABLE
            )
        result = client.fetch(links[0])
    page, doc = read_page(result.content, result.content_type, result.final_url)
    canonical = page_canonical_url(doc, result.final_url, page.base_url)
    findings: list[KindFinding] = []
    if platforms:
        findings += [
            _probe_platform(client, result.final_url, k, manufacturer) for k in KIND_ORDER[:2]
        ]

    structured = read_structured(page.text, page.base_url, canonical, manufacturer)
    syntaxes = ", ".join(f"{s}: {n}" for s, n in structured.found_by.items())
    findings.append(
        KindFinding(
            "structured",
            structured.products,
            {"kind": "structured"},
            [
                f"found in {syntaxes}" if syntaxes else "no schema.org Product on the page",
                *structured.problems,
            ],
        )
    )
    findings.append(
        _probe_embedded(result.content, result.content_type, result.final_url, doc, manufacturer)
    )
    css = _css_guess(doc)
    css_finding = KindFinding("css", notes=["no <h1> to read a name from"])
    if css:
        catalog = CssCatalog(start_urls=[url], product_links="a", **css)
        css_finding = KindFinding(
            "css",
            extract_css(
                result.content,
                result.final_url,
                catalog,
                manufacturer,
                content_type=result.content_type,
            ),
            {"kind": "css", **css},
            ["selectors guessed from the page: review them"],
        )
    findings.append(css_finding)

    best = next(
        (
            f
            for k in KIND_ORDER
            for f in findings
            if f.kind == k and f.found and any(p.image_urls for p in f.products)
        ),
        next((f for k in KIND_ORDER for f in findings if f.kind == k and f.found), None),
    )
    vendor = None
    if best is not None and best.catalog is not None:
        vendor = _entry(best, start_url, site_doc, listing_info, listing_final, key)
    return ProbeReport(
        url,
        listing_final,
        result.content_type,
        page.encoding,
        findings,
        vendor,
        listing_info,
        result.final_url if listing else None,
    )


def _probe_embedded(
    body: bytes, content_type: str | None, final_url: str, doc: BeautifulSoup, manufacturer: str
) -> KindFinding:
    finding = KindFinding("embedded_json")
    for selects, data in embedded_sources(doc):
        found = find_products_in(data)
        if found is None:
            continue
        expression, fields, _count = found
        catalog = EmbeddedJsonCatalog(
            start_urls=[final_url], products=expression, fields=fields, **selects
        )
        extracted = extract_embedded(
            body, final_url, catalog, manufacturer, content_type=content_type
        )
        if extracted.products:
            finding.products = extracted.products
            finding.catalog = {
                "kind": "embedded_json",
                **selects,
                "products": expression,
                "fields": fields,
            }
            finding.notes = [f"data from {next(iter(selects.values()))}", *extracted.problems]
            return finding
    finding.notes.append(
        "no JSON in the page holds a product (no __NEXT_DATA__, JSON script or state assignment)"
    )
    return finding


def _listing_links(body: bytes, final_url: str, content_type: str | None) -> dict:
    """Product links of a listing page and the selector that finds them."""
    page, doc = read_page(body, content_type, final_url)
    here = urlsplit(final_url)
    groups: dict[str, list[str]] = {}
    classes: dict[str, Counter[str]] = {}
    for anchor in doc.find_all("a", href=True):
        href = str(anchor["href"]).strip()
        if not href or href.startswith(("#", "javascript:", "mailto:", "tel:")):
            continue
        absolute = urlsplit(canonical_url(urljoin(page.base_url, href)))
        if absolute.netloc != here.netloc or absolute.path == here.path:
            continue  # other sites, and this page's own pagination
        if "next" in (anchor.get("rel") or []):
            continue
        prefix = absolute.path.rstrip("/").rsplit("/", 1)[0] + "/"  # the links' folder
        groups.setdefault(prefix, []).append(absolute.geturl())
        classes.setdefault(prefix, Counter()).update([" ".join(anchor.get("class") or [])])
    ranked = sorted(groups.items(), key=lambda kv: len(set(kv[1])), reverse=True)
    selector = None
    if ranked and len(set(ranked[0][1])) >= 2:
        prefix, hrefs = ranked[0]
        common, count = classes[prefix].most_common(1)[0]
        if common and count == len(hrefs) and " " not in common:
            selector = f"a.{common}"
        else:
            needle = prefix.rstrip("/").rsplit("/", 1)[-1] or prefix
            selector = f'a[href*="{needle}"]'
    products, nexts = discover_links(body, final_url, selector, "a[rel~=next]", content_type)
    return {
        "product_links": selector,
        "next_page": "a[rel~=next]" if nexts else None,
        "products": products,
    }


def _entry(
    best: KindFinding,
    start_url: str,
    doc: BeautifulSoup,
    listing: dict | None,
    final_url: str,
    key: str | None = None,
) -> dict:
    """The registry entry for the best kind. ``doc`` is the page the user named (the
    listing, with ``--listing``): its ``og:site_name`` or host names the vendor."""
    host = urlsplit(final_url).hostname or "vendor"
    if key is None:
        labels = [label for label in host.split(".") if label not in ("www", "shop", "store")]
        key = re.sub(
            r"[^a-z0-9_-]+", "-", (labels[-2] if len(labels) >= 2 else labels[0]).lower()
        ).strip("-")
        if not key or not key[0].isalpha():
            key = "new-vendor"
    site = doc.find("meta", attrs={"property": "og:site_name"})
    name = (site.get("content") if isinstance(site, Tag) else None) or host
    catalog = dict(best.catalog or {})
    if catalog["kind"] not in ("shopify", "woocommerce"):
        catalog = {"kind": catalog.pop("kind"), "start_urls": [start_url], **catalog}
        if listing is not None:
            catalog["product_links"] = listing.get("product_links")  # None: ItemList only
            if listing.get("next_page"):
                catalog["next_page"] = listing["next_page"]
    entry: dict = {"key": key[:40], "name": str(name)[:80], "catalog": catalog}
    html_tag = doc.find("html")
    lang = html_tag.get("lang") if isinstance(html_tag, Tag) else None
    if isinstance(lang, str) and "-" in lang and valid_locale(lang):
        entry["locale"] = lang
    return entry


def review_notes(report: ProbeReport) -> list[str]:
    """What a person must still decide before pasting the entry."""
    notes = []
    entry = report.vendor or {}
    catalog = entry.get("catalog", {})
    best = next(
        (f for f in report.findings if f.catalog and f.catalog.get("kind") == catalog.get("kind")),
        None,
    )
    if best and best.products and not any(p.currency for p in best.products):
        notes.append("the page names no currency: add `currency: XXX` (ISO 4217) to the entry")
    if "start_urls" in catalog and report.listing is None:
        notes.append(
            "start_urls is this product page: point it at a listing page and run "
            "`image-assets probe LISTING_URL --listing` for its product_links"
        )
        if catalog.get("kind") == "css":
            catalog.setdefault("product_links", "a[href]")
    if urlsplit(report.final_url).hostname in ("127.0.0.1", "localhost", "::1"):
        notes.append("the shop is on this machine: keep allow_private_networks only for test sites")
    return notes
