"""One reader for the structured data shops publish: JSON-LD, microdata, RDFa, OpenGraph.

extruct reads the syntaxes; this module normalises what it finds into one view of a
schema.org Product, the way search engines read it:

- ``@id`` references are followed across every ``@graph`` of the page (an SEO
  plugin's Product names its image as ``{"@id": ".../#primaryimage"}``);
- offers: ``Offer``, ``AggregateOffer`` (its ``lowPrice``, or its offers) and an
  Offer priced only through ``priceSpecification``; the current price, never a
  ``StrikethroughPrice``/``ListPrice``; the lowest of several offers;
- images from strings, ``ImageObject`` (``contentUrl``, ``url``, or an ``@id`` that
  is the image's own URL), variants' images, and ``og:image`` as the last fallback;
- ``ProductGroup``/``hasVariant`` (and variants pointing back with ``isVariantOf``)
  are one product;
- ``sku``, ``mpn``, ``gtin*``, ``productID`` are id candidates, in that order.

JSON-LD wins where a page has several syntaxes; a lone product in another syntax
fills the fields JSON-LD left empty. A page's breadcrumb is never its product (only
nodes typed Product are read).
"""

from __future__ import annotations

import html
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import extruct
import lxml.etree
from extruct.jsonld import JsonLdExtractor
from extruct.utils import parse_xmldom_html

from image_assets.records import Product
from image_assets.scraping.decoding import base_url_from, decode_html
from image_assets.scraping.identity import product_id_for
from image_assets.scraping.prices import NO_HINT, PriceHint, currency_code, parse_price
from image_assets.scraping.urls import canonical_url
from image_assets.scraping.urls import page_canonical as canonical_of_page

log = logging.getLogger(__name__)

SYNTAXES = ("json-ld", "microdata", "rdfa")
PRODUCT_TYPES = frozenset({"Product", "ProductGroup", "IndividualProduct", "ProductModel"})
ID_KEYS = ("sku", "mpn", "gtin14", "gtin13", "gtin12", "gtin8", "gtin", "productID")
NOT_CURRENT_PRICE = frozenset({"StrikethroughPrice", "ListPrice", "SRP", "MSRP", "InvoicePrice"})
_VOCABULARIES = ("http://schema.org/", "https://schema.org/", "schema:", "http://schema.org")
_CONTAINER_KEYS = ("@graph", "mainEntity", "mainEntityOfPage", "itemListElement", "item")
_MAX_DEPTH = 12


@dataclass
class StructuredResult:
    """The products of one page, what each syntax found, and what could not be read."""

    products: list[Product] = field(default_factory=list)
    found_by: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    og_image: str | None = None


def parse_tree(text: str) -> lxml.etree._Element | None:
    """The page as the lxml tree extruct reads (None for a page with no markup at all)."""
    if not text.strip():
        return None
    try:
        return parse_xmldom_html(text.encode("utf-8"), encoding="UTF-8")
    except (lxml.etree.ParserError, ValueError):
        return None


def jsonld_blocks(tree: lxml.etree._Element, page_url: str) -> tuple[list[object], list[str]]:
    """Every JSON-LD block's data; a malformed block is a problem, the others still count."""
    blocks: list[object] = []
    problems: list[str] = []
    reader = JsonLdExtractor()
    for script in tree.xpath("//script"):
        kind = (script.get("type") or "").split(";", 1)[0].strip().lower()
        if kind != "application/ld+json":
            continue
        try:
            blocks.extend(reader.extract_items(script))
        except RecursionError:
            problems.append(f"malformed JSON-LD on {page_url}: nested too deeply")
        except ValueError as exc:  # json's and jstyleson's errors are ValueErrors
            message = getattr(exc, "msg", None) or str(exc)
            problems.append(f"malformed JSON-LD on {page_url}: {message[:200]}")
    return blocks, problems


def jsonld_nodes(data: object, depth: int = 0) -> Iterator[dict]:
    """Every node of a JSON-LD block: top level, ``@graph`` and the usual containers
    (``mainEntity``, ``ItemList`` elements). Not every nested value: related
    products (``isSimilarTo``...) are not this page's products."""
    if depth > _MAX_DEPTH:
        return
    if isinstance(data, list):
        for item in data:
            yield from jsonld_nodes(item, depth + 1)
    elif isinstance(data, dict):
        yield data
        for key in _CONTAINER_KEYS:
            if key in data and isinstance(data[key], dict | list):
                yield from jsonld_nodes(data[key], depth + 1)


def types_of(node: dict) -> set[str]:
    """A node's types, without vocabulary prefixes (``https://schema.org/Product`` -> Product)."""
    types = node.get("@type")
    types = types if isinstance(types, list) else [types]
    return {t.rsplit("/", 1)[-1].rsplit(":", 1)[-1] for t in types if isinstance(t, str)}


def compact(value: object, depth: int = 0) -> object:
    """Expanded JSON-LD (RDFa's output) in the compact shape: schema.org keys without their
    IRI, ``{"@value": x}`` as ``x``, one-element lists as their element."""
    if depth > _MAX_DEPTH:
        return None
    if isinstance(value, list):
        items = [compact(v, depth + 1) for v in value]
        return items[0] if len(items) == 1 else items
    if isinstance(value, dict):
        if "@value" in value:
            return value["@value"]
        out = {}
        for key, item in value.items():
            short = key
            for prefix in _VOCABULARIES:
                if key.startswith(prefix):
                    short = key[len(prefix) :].lstrip("/")
                    break
            out[short] = item if key == "@type" else compact(item, depth + 1)
        return out
    return value


class Graph:
    """Nodes of a page by ``@id``, so references can be followed."""

    def __init__(self, roots: list[object]):
        self.by_id: dict[str, dict] = {}
        for root in roots:
            self._index(root, 0)

    def _index(self, value: object, depth: int) -> None:
        if depth > _MAX_DEPTH:
            return
        if isinstance(value, list):
            for item in value:
                self._index(item, depth + 1)
        elif isinstance(value, dict):
            node_id = value.get("@id")
            if isinstance(node_id, str) and len(value) > 1:
                known = self.by_id.setdefault(node_id, value)
                if known is not value:  # one node described in two places: one view of it
                    for key, item in value.items():
                        known.setdefault(key, item)
            for item in value.values():
                if isinstance(item, dict | list):
                    self._index(item, depth + 1)

    def deref(self, value: object) -> object:
        """The node a bare ``{"@id": ...}`` reference names (the reference itself if unknown)."""
        seen: set[str] = set()
        while isinstance(value, dict) and set(value) <= {"@id", "@type"}:
            node_id = value.get("@id")
            if not isinstance(node_id, str) or node_id in seen or node_id not in self.by_id:
                break
            seen.add(node_id)
            value = self.by_id[node_id]
        return value

    def get(self, node: dict, key: str) -> list:
        """The values of ``node[key]``, references followed, always as a list."""
        value = node.get(key)
        if value is None:
            return []
        values = value if isinstance(value, list) else [value]
        return [self.deref(v) for v in values if v is not None]

    def first(self, node: dict, key: str) -> object:
        values = self.get(node, key)
        return values[0] if values else None


def text_of(value: object) -> str | None:
    """A text value: a string, a number, or the first of a list (``{"@value"}`` unwrapped)."""
    if isinstance(value, list):
        return next((t for t in (text_of(v) for v in value) if t), None)
    if isinstance(value, dict):
        return text_of(value.get("@value")) if "@value" in value else None
    if value is None or isinstance(value, bool):
        return None
    text = " ".join(str(value).split())
    return text or None


def _image_urls(graph: Graph, value: object, depth: int = 0) -> Iterator[str]:
    if depth > _MAX_DEPTH:
        return
    value = graph.deref(value)
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _image_urls(graph, item, depth + 1)
    elif isinstance(value, dict):
        for key in ("contentUrl", "url"):
            found = list(_image_urls(graph, value.get(key), depth + 1)) if key in value else []
            if found:
                yield from found
                return
        node_id = value.get("@id")
        if isinstance(node_id, str) and not urlsplit(node_id).fragment:
            yield node_id  # RDFa and some JSON-LD name an image by its own URL


@dataclass(frozen=True)
class _Offer:
    price: float | None
    currency: str | None
    availability: str | None


def _offers(graph: Graph, node: dict, hint: PriceHint, depth: int = 0) -> list[_Offer]:
    """Every priced offer of a node (AggregateOffers expanded)."""
    found: list[_Offer] = []
    if depth > _MAX_DEPTH:
        return found
    for offer in graph.get(node, "offers"):
        if not isinstance(offer, dict):
            continue
        inner = [o for o in graph.get(offer, "offers") if isinstance(o, dict)]
        if "AggregateOffer" in types_of(offer) and inner:
            expanded = _offers(graph, {"offers": inner}, hint, depth + 1)
            if any(o.price is not None for o in expanded):
                found.extend(expanded)
                continue
        currency = text_of(offer.get("priceCurrency"))
        price = parse_price(text_of(offer.get("price")), hint)
        if price is None and "lowPrice" in offer:
            price = parse_price(text_of(offer.get("lowPrice")), hint)
        if price is None:
            price, spec_currency = _specified_price(graph, offer, hint)
            currency = currency or spec_currency
        availability = text_of(offer.get("availability"))
        found.append(
            _Offer(
                price,
                currency_code(currency, hint.currency) if currency else None,
                availability.rsplit("/", 1)[-1] if availability else None,
            )
        )
    return found


def _specified_price(graph: Graph, offer: dict, hint: PriceHint) -> tuple[float | None, str | None]:
    """The current price of an Offer's ``priceSpecification`` (never a strikethrough one;
    a price per unit only when nothing else is given)."""
    specs = [s for s in graph.get(offer, "priceSpecification") if isinstance(s, dict)]
    current = []
    for spec in specs:
        kind = text_of(spec.get("priceType")) or ""
        if kind.rsplit("/", 1)[-1] in NOT_CURRENT_PRICE:
            continue
        price = parse_price(text_of(spec.get("price")), hint)
        if price is not None:
            current.append((spec.get("referenceQuantity") is not None, price, spec))
    if not current:
        return None, None
    _per_unit, price, spec = min(current, key=lambda c: c[0])  # whole-item prices first
    return price, text_of(spec.get("priceCurrency"))


def _lowest(offers: list[_Offer]) -> _Offer | None:
    priced = [o for o in offers if o.price is not None]
    if priced:
        return min(priced, key=lambda o: o.price or 0.0)
    return offers[0] if offers else None


def _identifier(node: dict) -> str | None:
    for key in (*ID_KEYS, "productGroupID"):
        value = text_of(node.get(key))
        if value:
            return value
    return None


def _products_of(
    graph: Graph,
    candidates: list[dict],
    base_url: str,
    page_canonical: str,
    manufacturer: str,
    hint: PriceHint,
) -> list[Product]:
    groups = [n for n in candidates if "ProductGroup" in types_of(n)]
    variant_ids = {id(v) for g in groups for v in graph.get(g, "hasVariant") if isinstance(v, dict)}
    variants_of: dict[int, list[dict]] = {id(g): [] for g in groups}
    for node in candidates:
        parent = graph.first(node, "isVariantOf")
        if isinstance(parent, dict) and id(parent) in variants_of:
            variants_of[id(parent)].append(node)
            variant_ids.add(id(node))
    products: list[Product] = []
    for node in candidates:
        if id(node) in variant_ids:
            continue
        variants = [v for v in graph.get(node, "hasVariant") if isinstance(v, dict)]
        variants += [v for v in variants_of.get(id(node), []) if v not in variants]
        offer = _lowest(_offers(graph, node, hint)) or _lowest(
            [o for v in variants for o in _offers(graph, v, hint)]
        )
        declared = text_of(node.get("url"))
        url = page_canonical
        if declared and urlsplit(declared).scheme in ("http", "https", ""):
            url = canonical_url(_join(base_url, declared))
        sku = _identifier(node)
        images = [
            _join(base_url, u)
            for source in [node, *variants]
            for u in _image_urls(graph, source.get("image"))
        ]
        products.append(
            Product(
                product_id=product_id_for(sku, url),
                name=text_of(_html_text(text_of(node.get("name")))),
                manufacturer=manufacturer,
                url=url,
                sku=sku,
                image_urls=_unique(u for u in images if u),
                price=offer.price if offer else None,
                currency=offer.currency if offer else None,
                availability=offer.availability if offer else None,
            )
        )
    return products


def _html_text(value: str | None) -> str | None:
    """JSON-LD names often carry HTML entities (``&amp;``, ``&#8211;``)."""
    return html.unescape(value) if value else value


def _join(base: str, url: str) -> str:
    return urljoin(base, url.strip())


def _unique(values: Iterable[str | None]) -> list[str]:
    return list(dict.fromkeys(v for v in values if v))


def _other_syntax(tree: lxml.etree._Element, syntax: str, base_url: str) -> list[object]:
    """Items of one non-JSON-LD syntax, in the compact JSON-LD shape."""
    data = extruct.extract(
        tree, base_url=base_url, syntaxes=[syntax], uniform=True, errors="strict"
    )
    items = data.get(syntax, [])
    return [compact(i) for i in items] if syntax == "rdfa" else items


def _og_image(tree: lxml.etree._Element, base_url: str) -> str | None:
    for meta in tree.xpath("//meta[@property or @name]"):
        name = (meta.get("property") or meta.get("name") or "").strip().lower()
        if name in ("og:image", "og:image:url", "og:image:secure_url"):
            content = (meta.get("content") or "").strip()
            if content and not content.startswith("data:"):
                return _join(base_url, content)
    return None


def read_structured_page(
    body: bytes,
    content_type: str | None,
    page_url: str,
    manufacturer: str,
    hint: PriceHint = NO_HINT,
) -> StructuredResult:
    """Products a fetched page describes: decoded by the browser's precedence, parsed once
    (the lxml tree extruct reads also gives ``<base href>`` and the canonical URL)."""
    text, _encoding = decode_html(body, content_type)
    tree = parse_tree(text)
    if tree is None:
        return StructuredResult()
    base = base_url_from(next(iter(tree.xpath("//base/@href")), None), page_url)
    canonical_links = [
        link.get("href")
        for link in tree.xpath("//link[@rel]")
        if "canonical" in (link.get("rel") or "").lower().split()
    ]
    og_urls = [m.get("content") for m in tree.xpath("//meta[@property='og:url']")]
    canonical = canonical_of_page([*canonical_links[:1], *og_urls[:1]], page_url, base)
    return read_structured(text, base, canonical, manufacturer, hint, tree=tree)


def read_structured(
    text: str,
    base_url: str,
    page_canonical: str,
    manufacturer: str,
    hint: PriceHint = NO_HINT,
    *,
    tree: lxml.etree._Element | None = None,
) -> StructuredResult:
    """Products described by a page's structured data, one syntax preferred over the next."""
    result = StructuredResult()
    tree = tree if tree is not None else parse_tree(text)
    if tree is None:
        return result
    blocks, result.problems = jsonld_blocks(tree, page_canonical)
    per_syntax: dict[str, list[Product]] = {}
    for syntax in SYNTAXES:
        if syntax == "json-ld":
            roots: list[object] = blocks
        else:
            marker = "//*[@itemscope]" if syntax == "microdata" else "//*[@typeof]"
            if not tree.xpath(marker):
                continue  # nothing of this syntax on the page: skip the parse
            try:
                roots = list(_other_syntax(tree, syntax, base_url))
            except Exception as exc:  # a library's failure on odd markup costs one syntax only
                result.problems.append(
                    f"{syntax} on {page_canonical} could not be read: {type(exc).__name__}"
                )
                continue
        graph = Graph(roots)
        seen: set[int] = set()
        candidates: list[dict] = []
        for root in roots:
            for found in jsonld_nodes(graph.deref(root)):
                node = graph.deref(found)
                if isinstance(node, dict) and isinstance(node.get("@id"), str):
                    node = graph.by_id.get(node["@id"], node)  # one node said in two blocks
                if (
                    isinstance(node, dict)
                    and types_of(node) & PRODUCT_TYPES
                    and id(node) not in seen
                ):
                    seen.add(id(node))
                    candidates.append(node)
        for node in graph.by_id.values():  # graph members reached only by reference
            if types_of(node) & PRODUCT_TYPES and id(node) not in seen:
                seen.add(id(node))
                candidates.append(node)
        products = _products_of(graph, candidates, base_url, page_canonical, manufacturer, hint)
        if len(products) > 1:
            # a product page that also marks up a carousel of related products: the
            # page's own product is the one at the page's URL (or naming none)
            own = [p for p in products if p.url == page_canonical]
            products = own or products
        if products:
            per_syntax[syntax] = products
            result.found_by[syntax] = len(products)
    result.og_image = _og_image(tree, base_url)
    primary = next(iter(per_syntax.values()), [])
    if len(primary) == 1:
        others = [p[0] for s, p in per_syntax.items() if len(p) == 1 and p[0] is not primary[0]]
        primary = [_fill(primary[0], others)]
    if result.og_image:
        primary = [
            p if p.image_urls else p.model_copy(update={"image_urls": [result.og_image]})
            for p in primary
        ]
    result.products = primary
    return result


def _fill(product: Product, others: list[Product]) -> Product:
    """The product with empty fields taken from the same product in other syntaxes."""
    updates: dict[str, object] = {}
    for other in others:
        for name in ("name", "sku", "price", "currency", "availability"):
            if getattr(product, name) in (None, "") and name not in updates:
                value = getattr(other, name)
                if value not in (None, ""):
                    updates[name] = value
        if not product.image_urls and "image_urls" not in updates and other.image_urls:
            updates["image_urls"] = other.image_urls
    if "sku" in updates:
        updates["product_id"] = product_id_for(str(updates["sku"]), product.url)
    return product.model_copy(update=updates) if updates else product


def itemlist_urls(blocks: list[object]) -> Iterator[str]:
    """Product URLs of schema.org ``ItemList`` blocks (``itemListElement[].url``/``item``)."""
    graph = Graph(blocks)
    for root in blocks:
        for node in jsonld_nodes(root):
            if "ItemList" not in types_of(node):
                continue
            for element in graph.get(node, "itemListElement"):
                if not isinstance(element, dict):
                    continue
                item = graph.deref(element.get("item"))
                url = element.get("url") or (
                    item.get("url") or item.get("@id") if isinstance(item, dict) else item
                )
                if isinstance(url, str):
                    yield url
