"""The vendor registry: manufacturers declared in YAML, not Python.

Each entry says where the catalog lives and which extractor reads it. The keys
become the manufacturer partitions of the asset graph. Values may reference
environment variables as ``${NAME}`` or ``${NAME:-default}`` so one registry
serves laptops, CI and production.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
from collections.abc import Mapping
from functools import cached_property
from importlib import resources
from pathlib import Path
from types import UnionType
from typing import Annotated, Literal, Union, get_args, get_origin

import jmespath
import jmespath.exceptions
import soupsieve
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from image_assets.catalog.quality import CheckThresholds
from image_assets.scraping.prices import PriceHint, valid_locale

DEFAULT_REGISTRY = "vendors.yaml"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


class RegistryError(ValueError):
    """The registry file is missing, malformed, or references an unset variable."""


def _css(selector: str) -> str:
    """The selector, checked to compile (a typo fails at load, naming the selector)."""
    try:
        soupsieve.compile(selector)
    except soupsieve.SelectorSyntaxError as exc:
        first = str(exc).splitlines()[0]
        raise ValueError(f"CSS selector {selector!r} does not parse: {first}") from None
    return selector


CssSelector = Annotated[str, AfterValidator(_css)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldSelector(_Strict):
    """A CSS selector and the attribute to read (text content when ``attr`` is empty)."""

    selector: CssSelector
    attr: str | None = None


class PageParam(_Strict):
    """Pagination by a query parameter (``?page=2``) until a page lists no products."""

    name: str = "page"
    start: int = 1


class StructuredCatalog(_Strict):
    """Listing pages link to product pages that describe their product in structured data:
    schema.org JSON-LD (``@graph`` and ``@id`` references followed), microdata, RDFa, with
    OpenGraph's ``og:image`` as the last image fallback.

    Product links come from the ``product_links`` selector and from any JSON-LD
    ``ItemList`` on the listing page; pagination by ``next_page`` links and/or
    a ``page_param``. ``jsonld`` is the older name of this kind and still accepted.
    """

    kind: Literal["structured", "jsonld"] = "structured"
    start_urls: list[str] = Field(min_length=1)
    product_links: CssSelector | None = Field(
        default="a[href]", description="null: only the listing's schema.org ItemList links"
    )
    next_page: CssSelector | None = "a[rel~=next]"
    page_param: PageParam | None = None


JsonLdCatalog = StructuredCatalog  # the kind's older name


class EmbeddedFields(_Strict):
    """JMESPath expressions for a product's fields, evaluated on each product object."""

    name: str
    price: str | None = None
    currency: str | None = None
    sku: str | None = None
    id: str | None = Field(default=None, description="the platform's own product id")
    images: str | None = None
    url: str | None = None
    availability: str | None = None

    @field_validator("*")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        return _jmespath(value) if value is not None else None


class EmbeddedJsonCatalog(_Strict):
    """A client-rendered shop: product data read from JSON embedded in the page.

    The JSON is a script's text (``script``: a CSS selector, ``script#__NEXT_DATA__``
    for Next.js, ``script[type="application/json"]``...) or the object a script assigns
    (``assignment: window.__STATE__``, parsed as a JavaScript literal, never run).
    ``products`` (JMESPath) selects the product object, or a list of them on listing
    pages; ``fields`` are JMESPath expressions relative to each product. With neither
    ``script`` nor ``assignment``, the script is ``script#__NEXT_DATA__``.
    ``product_links`` may be omitted when the listing pages carry every product.
    """

    kind: Literal["embedded_json"] = "embedded_json"
    start_urls: list[str] = Field(min_length=1)
    product_links: CssSelector | None = None
    next_page: CssSelector | None = None
    page_param: PageParam | None = None
    script: CssSelector | None = Field(
        default=None,
        description="CSS selector of the JSON script (script#__NEXT_DATA__ when unset)",
    )
    assignment: str | None = Field(default=None, pattern=r"^[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)*$")
    products: str = "@"
    fields: EmbeddedFields

    @field_validator("products")
    @classmethod
    def _products_compiles(cls, value: str) -> str:
        return _jmespath(value)


class WooCommerceCatalog(_Strict):
    """A WooCommerce shop's public Store API: ``/wp-json/wc/store/v1/products?page=N&per_page=N``,
    prices in minor units, pages until ``X-WP-TotalPages``."""

    kind: Literal["woocommerce"] = "woocommerce"
    base_url: str
    per_page: int = Field(default=100, ge=1, le=100)
    category: str | None = Field(default=None, description="a category id or slug to limit to")


class ShopifyCatalog(_Strict):
    """A Shopify store: ``/products.json?page=N`` (or a collection's) until an empty page."""

    kind: Literal["shopify"] = "shopify"
    base_url: str
    collection: str | None = None
    page_size: int = Field(default=250, ge=1, le=250)
    currency: str | None = Field(default=None, description="products.json has no currency")


class CssCatalog(_Strict):
    """A plain HTML shop read with CSS selectors."""

    kind: Literal["css"] = "css"
    start_urls: list[str] = Field(min_length=1)
    product_links: CssSelector
    next_page: CssSelector | None = None
    page_param: PageParam | None = None
    name: FieldSelector
    sku: FieldSelector | None = None
    price: FieldSelector | None = None
    currency: FieldSelector | None = None
    images: FieldSelector = FieldSelector(selector="img")


Catalog = Annotated[
    StructuredCatalog | ShopifyCatalog | CssCatalog | EmbeddedJsonCatalog | WooCommerceCatalog,
    Field(discriminator="kind"),
]
ListingCatalog = StructuredCatalog | CssCatalog | EmbeddedJsonCatalog


def _jmespath(expression: str) -> str:
    """The expression, checked to compile (the error names it and says where it broke)."""
    try:
        jmespath.compile(expression)
    except jmespath.exceptions.JMESPathError as exc:
        raise ValueError(f"JMESPath expression {expression!r} does not parse: {exc}") from None
    return expression


class HttpPolicy(_Strict):
    """How gently to treat this vendor's servers (unset values use the HTTP resource's)."""

    per_host_concurrency: int | None = Field(default=None, ge=1, le=64)
    requests_per_second: float | None = Field(default=None, gt=0)
    respect_robots: bool = True
    read_timeout: float | None = Field(default=None, gt=0)


class Vendor(_Strict):
    """One manufacturer: partition key, display name, catalog source, crawl limits."""

    key: str
    name: str
    catalog: Catalog
    allow_private_networks: list[str] = Field(
        default_factory=list,
        description="CIDRs of private/loopback addresses this vendor may be fetched from "
        "(demo and test sites: 127.0.0.0/8). Everything else private is refused.",
    )
    http: HttpPolicy = HttpPolicy()
    checks: CheckThresholds = CheckThresholds()
    max_pages: int = Field(default=500, ge=1)
    max_products: int = Field(default=20_000, ge=1)
    currency: str | None = Field(
        default=None,
        pattern=r"^[A-Z]{3}$",
        description="ISO 4217 code for prices whose page names no currency (any catalog kind)",
    )
    locale: str | None = Field(
        default=None,
        description="how the shop writes numbers (de-DE: 1.299,00); decides ambiguous prices",
    )
    decimal_separator: Literal[",", "."] | None = Field(
        default=None, description="the shop's decimal separator, when no locale says it"
    )
    retention_days: int = Field(
        default=30,
        ge=1,
        le=3650,
        description="days an image no kits CSV names stays on the CDN before housekeeping "
        "deletes it (a product back within them keeps its image)",
    )

    @property
    def price_hint(self) -> PriceHint:
        return PriceHint.of(self.locale, self.decimal_separator, self.default_currency)

    @field_validator("locale")
    @classmethod
    def _known_locale(cls, value: str | None) -> str | None:
        if value is not None and not valid_locale(value):
            raise ValueError(f"unknown locale {value!r} (a CLDR locale such as de-DE or en-US)")
        return value

    @property
    def default_currency(self) -> str | None:
        """The vendor's currency, else a Shopify catalog's (the older place for it)."""
        catalog_currency = (
            self.catalog.currency if isinstance(self.catalog, ShopifyCatalog) else None
        )
        return self.currency or catalog_currency

    @field_validator("allow_private_networks")
    @classmethod
    def _valid_networks(cls, value: list[str]) -> list[str]:
        for cidr in value:
            ipaddress.ip_network(cidr, strict=False)  # raises ValueError with a clear message
        return value

    @field_validator("key")
    @classmethod
    def _key_is_slug(cls, value: str) -> str:
        if not _KEY.match(value):
            raise ValueError(
                f"vendor key {value!r} must be a lowercase slug ([a-z0-9_-], at most 40 chars)"
            )
        return value


class Registry(_Strict):
    vendors: list[Vendor]

    @field_validator("vendors")
    @classmethod
    def _unique_keys(cls, vendors: list[Vendor]) -> list[Vendor]:
        seen: set[str] = set()
        for vendor in vendors:
            if vendor.key in seen:
                raise ValueError(f"duplicate vendor key {vendor.key!r}")
            seen.add(vendor.key)
        return vendors

    @cached_property
    def by_key(self) -> dict[str, Vendor]:
        return {v.key: v for v in self.vendors}

    @property
    def keys(self) -> list[str]:
        return [v.key for v in self.vendors]

    def get(self, key: str) -> Vendor:
        try:
            return self.by_key[key]
        except KeyError:
            raise RegistryError(
                f"unknown vendor {key!r}; the registry has: {', '.join(self.keys)}"
            ) from None


def expand_env(value: object, environ: Mapping[str, str] | None = None) -> object:
    """Replace ``${NAME}`` / ``${NAME:-default}`` in every string of a YAML tree."""
    env = os.environ if environ is None else environ
    if isinstance(value, str):

        def repl(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in env and env[name] != "":
                return env[name]
            if default is not None:
                return default
            raise RegistryError(f"environment variable {name} is not set and has no default")

        return _ENV_REF.sub(repl, value)
    if isinstance(value, list):
        return [expand_env(v, env) for v in value]
    if isinstance(value, dict):
        return {k: expand_env(v, env) for k, v in value.items()}
    return value


def registry_text(path: str | os.PathLike[str] | None = None) -> str:
    """The registry's YAML text: ``path`` if given, else the bundled default."""
    if path:
        try:
            return Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise RegistryError(f"cannot read vendor registry {path}: {exc}") from exc
    return resources.files("image_assets").joinpath(DEFAULT_REGISTRY).read_text(encoding="utf-8")


def parse_registry(text: str, source: str = "<registry>") -> Registry:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RegistryError(f"{source} is not valid YAML: {exc}") from exc
    try:
        return Registry.model_validate(expand_env(data))
    except ValidationError as exc:
        raise RegistryError(describe_errors(exc, data, source)) from None


def describe_errors(exc: ValidationError, data: object, source: str) -> str:
    """One line per problem: the vendor (by its key), the field's path, what is wrong and
    what is allowed, with a did-you-mean for a misspelt field name."""
    lines = []
    for error in exc.errors(include_url=False):
        where, parent = _locate(list(error["loc"]), data)
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            name = str(error["loc"][-1])
            allowed = sorted(parent.model_fields) if parent else []
            guess = difflib.get_close_matches(name, allowed, n=1, cutoff=0.6)
            message = f"unknown field {name!r}"
            message += f"; did you mean {guess[0]!r}?" if guess else ""
            message += f" (allowed: {', '.join(allowed)})" if allowed else ""
        elif error["type"] == "missing":
            message = "required field is missing"
        lines.append(f"{source}: {where}: {message}")
    return "\n".join(lines)


def _locate(loc: list, data: object) -> tuple[str, type[BaseModel] | None]:
    """("vendor 'estes': catalog.name", the model that holds the last field)."""
    prefix = ""
    annotation: object = Registry
    if len(loc) >= 2 and loc[0] == "vendors" and isinstance(loc[1], int):
        entries = data.get("vendors") if isinstance(data, dict) else None
        entry = entries[loc[1]] if isinstance(entries, list) and loc[1] < len(entries) else None
        key = entry.get("key") if isinstance(entry, dict) else None
        prefix = f"vendor {key!r}" if key else f"vendor #{loc[1] + 1}"
        loc, annotation = loc[2:], Vendor
    names: list[str] = []
    parent: type[BaseModel] | None = None
    for element in loc:
        model = _model_of(annotation, element)
        if model is not None and model is not _model_of(annotation, None):  # a union's tag
            annotation = model
            continue
        if isinstance(element, int):
            names.append(f"[{element}]")
            annotation = _item_type(annotation)
            continue
        model = _model_of(annotation, None)
        parent = model
        field = model.model_fields.get(str(element)) if model else None
        names.append(str(element))
        annotation = field.annotation if field else None
    path = ".".join(names).replace(".[", "[") or "(top level)"
    return (f"{prefix}: {path}" if prefix else path), parent


def _members(annotation: object) -> list[object]:
    """The types inside Optional/Annotated/Union wrappers."""
    if get_origin(annotation) is Annotated:
        return _members(get_args(annotation)[0])
    if get_origin(annotation) in (Union, UnionType):
        return [m for arg in get_args(annotation) for m in _members(arg)]
    return [annotation]


def _model_of(annotation: object, tag: object) -> type[BaseModel] | None:
    """The model an annotation names; with ``tag``, the union member whose ``kind`` is it."""
    models = [m for m in _members(annotation) if isinstance(m, type) and issubclass(m, BaseModel)]
    if tag is None:
        return models[0] if len(models) == 1 else None
    for model in models:
        kind = model.model_fields.get("kind")
        if kind is not None and tag in get_args(kind.annotation):
            return model
    return None


def _item_type(annotation: object) -> object:
    for member in _members(annotation):
        if get_origin(member) is list:
            return get_args(member)[0]
    return None


def load_registry(path: str | os.PathLike[str] | None = None) -> Registry:
    """Load and validate a registry (``IMAGE_ASSETS_REGISTRY`` or the bundled default)."""
    path = path or os.environ.get("IMAGE_ASSETS_REGISTRY") or None
    return parse_registry(registry_text(path), str(path or DEFAULT_REGISTRY))


def registry_keys(path: str | os.PathLike[str] | None = None) -> list[str]:
    """Partition keys, read without expanding variables (definitions load must not need them)."""
    path = path or os.environ.get("IMAGE_ASSETS_REGISTRY") or None
    data = yaml.safe_load(registry_text(path)) or {}
    keys = [str(v.get("key")) for v in data.get("vendors", []) if isinstance(v, dict)]
    for key in keys:
        if not _KEY.match(key):
            raise RegistryError(f"vendor key {key!r} is not a lowercase slug")
    return keys
