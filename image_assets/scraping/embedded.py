"""Products from JSON embedded in client-rendered pages (Next.js, Nuxt, plain state objects).

A Next.js page carries its data in ``<script id="__NEXT_DATA__" type="application/json">``;
a Nuxt 3 page in ``<script id="__NUXT_DATA__">`` as devalue's flattened array (every
value an index into the array), which is unflattened here; others assign it in a script (``window.__STATE__ = {...};``), which is JavaScript, not
JSON: chompjs reads the object literal without running anything. The registry says
where a product lives and where each field is, as JMESPath expressions; an expression
that finds nothing is reported by name, with the keys that were there instead, so a
changed page says what changed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import chompjs
import jmespath
from bs4 import BeautifulSoup

from image_assets.records import Product
from image_assets.scraping.decoding import read_page
from image_assets.scraping.extractors import absolute, page_canonical_url, unique
from image_assets.scraping.identity import product_id_for, slug_text
from image_assets.scraping.prices import NO_HINT, PriceHint, currency_code, parse_price
from image_assets.scraping.registry import EmbeddedJsonCatalog
from image_assets.scraping.urls import canonical_url

DEFAULT_SCRIPT = "script#__NEXT_DATA__"
_MAX_SCRIPT_CHARS = 16 * 1024 * 1024
_SIMPLE_PATH = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")


_DEVALUE_CONSTANTS = {
    -1: None,
    -2: None,
    -3: float("nan"),
    -4: float("inf"),
    -5: float("-inf"),
    -6: -0.0,
}
# Nuxt's revivers that only wrap a value (reactivity), and devalue's own typed forms
_WRAPPERS = frozenset(
    {"Reactive", "ShallowReactive", "Ref", "ShallowRef", "Object", "Date", "BigInt"}
)


def unflatten_devalue(values: list, max_depth: int = 64) -> object:
    """The value a devalue payload (Nuxt 3's ``__NUXT_DATA__``) stands for.

    devalue writes a graph as one flat JSON array; every object or array member is the
    index of its value in that array, and typed values are ``["Type", index...]``.
    """
    cache: dict[int, object] = {}

    def hydrate(index: object, depth: int) -> object:
        if not isinstance(index, int) or isinstance(index, bool):
            return None
        if index in _DEVALUE_CONSTANTS:
            return _DEVALUE_CONSTANTS[index]
        if index in cache:
            return cache[index]
        if not 0 <= index < len(values) or depth > max_depth:
            return None
        value = values[index]
        if isinstance(value, dict):
            out: dict = {}
            cache[index] = out
            for key, item in value.items():
                out[key] = hydrate(item, depth + 1)
            return out
        if isinstance(value, list):
            if value and isinstance(value[0], str):
                kind = value[0]
                if kind in _WRAPPERS and len(value) > 1:
                    inner = value[1] if kind in ("Date", "BigInt") else hydrate(value[1], depth + 1)
                    cache[index] = inner
                    return inner
                if kind in ("Set", "Map"):
                    items = [hydrate(v, depth + 1) for v in value[1:]]
                    cache[index] = (
                        items if kind == "Set" else dict(zip(items[::2], items[1::2], strict=False))
                    )
                    return cache[index]
                if kind == "null":  # an object without prototype: key, index, key, index...
                    plain = {
                        str(k): hydrate(v, depth + 1)
                        for k, v in zip(value[1::2], value[2::2], strict=False)
                    }
                    cache[index] = plain
                    return plain
                cache[index] = None  # EmptyRef, NuxtError, Island...: nothing a catalog needs
                return None
            members: list = []
            cache[index] = members
            members.extend(hydrate(v, depth + 1) for v in value)
            return members
        cache[index] = value
        return value

    return hydrate(0, 0)


def _is_devalue(tag: object) -> bool:
    attrs = getattr(tag, "attrs", {}) or {}
    return attrs.get("id") == "__NUXT_DATA__" or "data-nuxt-data" in attrs


class EmbeddedDataMissing(ValueError):
    """The page has no embedded data where the registry says it is."""


@dataclass
class EmbeddedResult:
    products: list[Product] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def embedded_data(doc: BeautifulSoup, script: str | None, assignment: str | None) -> object:
    """The data a page embeds: the JSON text of the ``script`` selector, or the object
    assigned to ``assignment`` in any script. Raises :class:`EmbeddedDataMissing`."""
    if assignment:
        pattern = re.compile(re.escape(assignment) + r"\s*=(?!=)\s*")
        for tag in doc.find_all("script"):
            text = tag.string or tag.get_text()
            match = pattern.search(text or "")
            if not match:
                continue
            literal = text[match.end() : match.end() + _MAX_SCRIPT_CHARS]
            try:
                return chompjs.parse_js_object(literal)
            except RecursionError:
                raise EmbeddedDataMissing(
                    f"the value assigned to {assignment} nests too deeply"
                ) from None
            except ValueError as exc:
                raise EmbeddedDataMissing(
                    f"the value assigned to {assignment} is not an object literal: {exc}"
                ) from None
        raise EmbeddedDataMissing(f"no script assigns {assignment}")
    selector = script or DEFAULT_SCRIPT
    chosen = doc.select_one(selector)
    if chosen is None:
        raise EmbeddedDataMissing(f"no element matches the script selector {selector!r}")
    text = (chosen.string or chosen.get_text() or "")[:_MAX_SCRIPT_CHARS]
    try:
        data = json.loads(text, strict=False)
        if _is_devalue(chosen) and isinstance(data, list):
            return unflatten_devalue(data)
        return data
    except RecursionError:
        raise EmbeddedDataMissing(f"{selector!r} holds JSON nested too deeply") from None
    except json.JSONDecodeError:
        try:
            return chompjs.parse_js_object(text)
        except RecursionError:
            raise EmbeddedDataMissing(f"{selector!r} holds JSON nested too deeply") from None
        except ValueError as exc:
            raise EmbeddedDataMissing(f"{selector!r} holds no JSON: {exc}") from None


def what_is_there(expression: str, data: object) -> str:
    """For a dotted path that found nothing: the deepest part that exists and its keys."""
    if not _SIMPLE_PATH.match(expression):
        return ""
    found, current = [], data
    for name in expression.split("."):
        if not isinstance(current, dict) or name not in current:
            break
        found.append(name)
        current = current[name]
    where = ".".join(found) or "the top level"
    if isinstance(current, dict):
        keys = ", ".join(sorted(map(str, current))[:12])
        return f"; {where} has: {keys or 'no keys'}"
    return f"; {where} is a {type(current).__name__}"


def _texts(value: object) -> list[str]:
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        text = " ".join(str(value).split())
        return [text] if text else []
    if isinstance(value, list):
        return [t for item in value for t in _texts(item)]
    if isinstance(value, dict):
        for key in ("url", "src", "contentUrl", "originalSrc", "href"):
            if key in value:
                return _texts(value[key])
    return []


def _first(value: object) -> str | None:
    texts = _texts(value)
    return texts[0] if texts else None


def extract_embedded(
    html: bytes,
    page_url: str,
    catalog: EmbeddedJsonCatalog,
    manufacturer: str,
    *,
    content_type: str | None = None,
    hint: PriceHint = NO_HINT,
    required: bool = True,
) -> EmbeddedResult:
    """The products the page's embedded JSON holds, fields by the registry's expressions.

    With ``required`` (product pages), a page without data or without a product is a
    problem; a listing page that carries no products is simply a listing.
    """
    result = EmbeddedResult()
    page, doc = read_page(html, content_type, page_url)
    canonical = page_canonical_url(doc, page_url, page.base_url)
    try:
        data = embedded_data(doc, catalog.script, catalog.assignment)
    except EmbeddedDataMissing as exc:
        if required:
            result.problems.append(f"{page_url}: embedded_json: {exc}")
        return result
    root = jmespath.search(catalog.products, data)
    items = root if isinstance(root, list) else [root] if root is not None else []
    items = [i for i in items if isinstance(i, dict)]
    if not items:
        if required:
            result.problems.append(
                f"{page_url}: embedded_json: products expression {catalog.products!r} found no "
                f"object{what_is_there(catalog.products, data)}"
            )
        return result
    fields = catalog.fields
    single = len(items) == 1 and required
    for item in items:
        name = _first(jmespath.search(fields.name, item))
        if not name:
            result.problems.append(
                f"{page_url}: embedded_json: fields.name expression {fields.name!r} found "
                f"nothing{what_is_there(fields.name, item)}"
            )
            continue

        def get(expression: str | None, _item: dict = item) -> object:
            return jmespath.search(expression, _item) if expression else None

        declared = _first(get(fields.url))
        url = canonical_url(absolute(declared, page.base_url) or "") if declared else None
        if url is None and single:
            url = canonical
        sku = _first(get(fields.sku))
        platform_id = _first(get(fields.id))
        images = [absolute(u, page.base_url) for u in _texts(get(fields.images))]
        currency = _first(get(fields.currency))
        product_id = product_id_for(sku, url, platform_id)
        if product_id.startswith("p-") and slug_text(name):
            product_id = slug_text(name)  # a listing item with no id and no URL
        result.products.append(
            Product(
                product_id=product_id,
                name=name,
                manufacturer=manufacturer,
                url=url,
                sku=sku,
                image_urls=unique(u for u in images if u and not u.startswith("data:")),
                price=parse_price(_first(get(fields.price)), hint),
                currency=currency_code(currency, hint.currency) if currency else None,
                availability=_first(get(fields.availability)),
            )
        )
    return result
