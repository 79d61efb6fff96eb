"""Crawl a vendor's catalog into raw pages kept in the blob store.

The crawl only fetches and follows links; parsing products from the stored
pages is a separate, network-free step (:func:`parse_products`), so a parser
fix can be re-run over the raw pages without touching the vendor's server.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from image_assets.failures import FailureKind
from image_assets.layout import http_cache_key, page_key
from image_assets.records import PageRecord, Product
from image_assets.scraping.cache import ValidatorCache
from image_assets.scraping.embedded import extract_embedded
from image_assets.scraping.extractors import (
    discover_links,
    extract_css,
    extract_shopify,
    extract_structured,
    extract_woocommerce,
    merge_products,
    shopify_page_url,
    woocommerce_page_url,
)
from image_assets.scraping.http import FetchError, HttpClient, HttpSettings, RefusedURL
from image_assets.scraping.identity import keep_published_ids
from image_assets.scraping.registry import (
    CssCatalog,
    EmbeddedJsonCatalog,
    ListingCatalog,
    ShopifyCatalog,
    StructuredCatalog,
    Vendor,
    WooCommerceCatalog,
)
from image_assets.storage import BlobStore

log = logging.getLogger(__name__)
Progress = Callable[[str], None]


class CatalogUnavailable(RuntimeError):
    """The vendor's catalog could not be fetched at all; the partition must fail."""


def http_settings_for(vendor: Vendor, base: HttpSettings | None = None) -> HttpSettings:
    """The HTTP settings for one vendor: the base settings with the vendor's policy applied."""
    base = base or HttpSettings()
    policy = vendor.http
    return replace(
        base,
        per_host_concurrency=policy.per_host_concurrency or base.per_host_concurrency,
        requests_per_second=policy.requests_per_second or base.requests_per_second,
        read_timeout=policy.read_timeout or base.read_timeout,
        respect_robots=policy.respect_robots and base.respect_robots,
        allowed_private_networks=tuple(vendor.allow_private_networks),
    )


@dataclass(frozen=True)
class CrawlStats:
    """Counts over the pages a crawl returned (computed from the records, never kept
    in counters that threads share)."""

    fetched: int = 0
    not_modified: int = 0
    failed: int = 0
    refused: int = 0  # refused before any request (scheme, private address), not by robots
    robots: int = 0  # disallowed by the vendor's robots.txt: its wish, not a failure
    bytes_fetched: int = 0

    @classmethod
    def of(cls, pages: list[PageRecord]) -> CrawlStats:
        by_status = Counter(p.status for p in pages)
        robots = sum(1 for p in pages if p.failure == FailureKind.ROBOTS)
        return cls(
            fetched=by_status["fetched"],
            not_modified=by_status["not_modified"],
            failed=by_status["failed"],
            refused=by_status["refused"] - robots,
            robots=robots,
            bytes_fetched=sum(p.bytes_fetched for p in pages),
        )


@dataclass
class CrawlResult:
    pages: list[PageRecord] = field(default_factory=list)

    @property
    def stats(self) -> CrawlStats:
        return CrawlStats.of(self.pages)


class _PageFetcher:
    """Fetch one URL conditionally and keep its body in the store."""

    def __init__(self, vendor: Vendor, client: HttpClient, store: BlobStore, cache: ValidatorCache):
        self.vendor, self.client, self.store, self.cache = vendor, client, store, cache

    def fetch(self, url: str, role: str) -> tuple[PageRecord, bytes | None]:
        key = page_key(self.vendor.key, url, role)
        cached = self.cache.get(url)
        validators = self.cache.validators(url) if cached and self.store.exists(key) else None
        try:
            result = self.client.fetch(url, validators)
        except FetchError as exc:
            status = "refused" if isinstance(exc, RefusedURL) else "failed"
            record = PageRecord(
                url=url,
                role=role,
                status=status,
                reason=exc.reason,
                failure=exc.kind,
                http_status=exc.status_code,
            )
            return record, None
        final_url = result.final_url or url
        if result.not_modified and cached:
            body = self.store.get(key)
            return (
                PageRecord(
                    url=url,
                    role=role,
                    final_url=final_url,
                    key=key,
                    sha256=cached.get("sha256"),
                    content_type=cached.get("content_type"),
                    status="not_modified",
                ),
                body,
            )
        body = result.content
        sha = hashlib.sha256(body).hexdigest()
        if not cached or cached.get("sha256") != sha or not self.store.exists(key):
            self.store.put(key, body, result.content_type)
        entry: dict[str, object] = {
            "etag": result.validators.etag,
            "last_modified": result.validators.last_modified,
            "sha256": sha,
            "content_type": result.content_type,
        }
        if final_url != url:
            entry["final_url"] = final_url
        if result.headers.get("x-wp-totalpages", "").isdigit():
            entry["total_pages"] = int(result.headers["x-wp-totalpages"])
        self.cache.put(url, **entry)
        record = PageRecord(
            url=url,
            role=role,
            final_url=final_url,
            key=key,
            sha256=sha,
            content_type=result.content_type,
            status="fetched",
            bytes_fetched=len(body),
        )
        return record, body


def crawl_vendor(
    vendor: Vendor,
    client: HttpClient,
    store: BlobStore,
    progress: Progress | None = None,
) -> CrawlResult:
    """Fetch every catalog page of ``vendor``; raise :class:`CatalogUnavailable` if none can be.

    Individual product pages that fail are recorded with their reason and the
    crawl goes on; only a catalog whose first listing page fails is fatal.
    """
    cache = ValidatorCache(store, http_cache_key(vendor.key, "pages"))
    fetcher = _PageFetcher(vendor, client, store, cache)
    say = progress or (lambda msg: log.info(msg))
    catalog = vendor.catalog
    try:
        if isinstance(catalog, ShopifyCatalog):
            pages = _crawl_shopify(vendor, catalog, fetcher, say)
        elif isinstance(catalog, WooCommerceCatalog):
            pages = _crawl_woocommerce(vendor, catalog, fetcher, say)
        else:
            pages = _crawl_listing(vendor, catalog, fetcher, client, say)
    finally:
        cache.save()
    return CrawlResult(pages=pages)


def _fail_if_first(vendor: Vendor, record: PageRecord) -> None:
    if record.status in ("failed", "refused"):
        raise CatalogUnavailable(
            f"catalog of vendor {vendor.key!r} cannot be fetched: {record.url}: {record.reason}"
        )


@dataclass(frozen=True)
class _ApiPages:
    """A platform API read page by page: where page N is, how many products a body holds
    (``ValueError`` when it is not the API's answer), and what says the listing ended."""

    label: str
    url: Callable[[int], str]
    count: Callable[[bytes], int]
    page_size: int | None = None  # a shorter page is the last (the Store API)
    end_status: int | None = None  # an answer that means "past the last page"


def _crawl_api(
    vendor: Vendor, api: _ApiPages, fetcher: _PageFetcher, say: Progress
) -> list[PageRecord]:
    pages: list[PageRecord] = []
    for page in range(1, vendor.max_pages + 1):
        url = api.url(page)
        record, body = fetcher.fetch(url, "api")
        if page == 1:
            _fail_if_first(vendor, record)
        if body is None:
            if api.end_status is not None and record.http_status == api.end_status and page > 1:
                break
            pages.append(record)
            break
        try:
            count = api.count(body)
        except ValueError as exc:
            reason = unexpected_body(url, record.content_type, body, str(exc))
            if page == 1:
                raise CatalogUnavailable(f"catalog of vendor {vendor.key!r}: {reason}") from None
            failed = {"status": "failed", "reason": reason, "failure": FailureKind.UNPARSABLE}
            pages.append(record.model_copy(update=failed))
            break
        if count == 0:
            break  # the empty page that ends the listing is not kept
        pages.append(record)
        total = (fetcher.cache.get(url) or {}).get("total_pages")  # X-WP-TotalPages, kept for 304s
        say(
            f"{vendor.key}: {api.label} page {page}{f'/{total}' if total else ''}: {count} products"
        )
        if isinstance(total, int) and page >= total:
            break
        if api.page_size is not None and count < api.page_size:
            break
    return pages


def _crawl_shopify(
    vendor: Vendor, catalog: ShopifyCatalog, fetcher: _PageFetcher, say: Progress
) -> list[PageRecord]:
    """``products.json`` pages until an empty one."""
    api = _ApiPages(
        "products.json",
        lambda page: shopify_page_url(
            catalog.base_url, page, catalog.page_size, catalog.collection
        ),
        lambda body: len(extract_shopify(body, catalog.base_url, vendor.key)),
    )
    return _crawl_api(vendor, api, fetcher, say)


def _crawl_woocommerce(
    vendor: Vendor, catalog: WooCommerceCatalog, fetcher: _PageFetcher, say: Progress
) -> list[PageRecord]:
    """Store API pages 1..N: N from ``X-WP-TotalPages``, else until a short or empty page
    (WordPress answers 400 ``rest_post_invalid_page_number`` past the end)."""
    api = _ApiPages(
        "Store API",
        lambda page: woocommerce_page_url(
            catalog.base_url, page, catalog.per_page, catalog.category
        ),
        lambda body: len(extract_woocommerce(body, catalog.base_url, vendor.key)),
        page_size=catalog.per_page,
        end_status=400,
    )
    return _crawl_api(vendor, api, fetcher, say)


def unexpected_body(url: str, content_type: str | None, body: bytes, problem: str) -> str:
    """One line on a page that is not what its extractor reads: the URL, what came back
    (content type, size, first bytes) and what was wrong with it."""
    head = body[:80].decode("utf-8", "replace")
    head = " ".join(head.split())  # control characters and newlines out of a log line
    return (
        f"{url} answered {content_type or 'no content type'} ({len(body)} bytes, starting "
        f"{head!r}): {problem}"
    )


def with_query_param(url: str, name: str, value: int) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != name]
    query.append((name, str(value)))
    return urlunsplit(parts._replace(query=urlencode(query)))


def _crawl_listing(
    vendor: Vendor,
    catalog: ListingCatalog,
    fetcher: _PageFetcher,
    client: HttpClient,
    say: Progress,
) -> list[PageRecord]:
    param = catalog.page_param
    # (url, start url it paginates, page number when paginating by parameter)
    queue: list[tuple[str, str, int | None]] = [
        (
            with_query_param(u, param.name, param.start) if param else u,
            u,
            param.start if param else None,
        )
        for u in catalog.start_urls
    ]
    seen_listings: set[str] = set()
    product_urls: dict[str, None] = {}
    pages: list[PageRecord] = []
    first = True
    while (
        queue and len(seen_listings) < vendor.max_pages and len(product_urls) < vendor.max_products
    ):
        url, origin, number = queue.pop(0)
        if url in seen_listings:
            continue
        seen_listings.add(url)
        record, body = fetcher.fetch(url, "listing")
        if first:
            _fail_if_first(vendor, record)
            first = False
        if body is None and number is not None and record.http_status == 404:
            continue  # paginating by parameter ran past the last page
        pages.append(record)
        if body is None:
            continue
        products, nexts = discover_links(
            body,
            record.final_url or url,
            catalog.product_links,
            catalog.next_page,
            content_type=record.content_type,
        )
        new = [p for p in products if p not in product_urls]
        for product_url in new:
            product_urls[product_url] = None
        queue.extend((n, origin, None) for n in nexts if n not in seen_listings)
        listed = isinstance(catalog, EmbeddedJsonCatalog) and _embedded_count(
            vendor, catalog, record, body
        )
        if param is not None and number is not None and (new or listed):
            queue.append((with_query_param(origin, param.name, number + 1), origin, number + 1))
        say(f"{vendor.key}: listing page {len(seen_listings)}: {len(products)} product links")

    targets = list(product_urls)[: vendor.max_products]
    total = len(targets)
    workers = max(1, client.settings.per_host_concurrency)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"crawl-{vendor.key}") as pool:
        for done, (record, _body) in enumerate(
            pool.map(lambda u: fetcher.fetch(u, "product"), targets), start=1
        ):
            pages.append(record)
            if done == total or done % 25 == 0:
                say(f"{vendor.key}: product pages {done}/{total}")
    return pages


def _embedded_count(
    vendor: Vendor, catalog: EmbeddedJsonCatalog, record: PageRecord, body: bytes
) -> int:
    """Products a listing page carries in its embedded JSON (pagination goes on while > 0)."""
    found = extract_embedded(
        body,
        record.final_url or record.url,
        catalog,
        vendor.key,
        content_type=record.content_type,
        required=False,
    )
    return len(found.products)


def parse_page(vendor: Vendor, page: PageRecord, body: bytes) -> tuple[list[Product], list[str]]:
    """The products of one stored page by the vendor's catalog kind, and its problems.

    HTML is decoded by the page's own charset and read against the URL that answered.
    """
    catalog = vendor.catalog
    hint = vendor.price_hint
    answered = page.final_url or page.url
    content_type = page.content_type
    if isinstance(catalog, ShopifyCatalog | WooCommerceCatalog):
        try:
            if isinstance(catalog, ShopifyCatalog):
                return extract_shopify(body, catalog.base_url, vendor.key, hint=hint), []
            return extract_woocommerce(body, catalog.base_url, vendor.key), []
        except ValueError as exc:
            return [], [unexpected_body(page.url, page.content_type, body, str(exc))]
    if isinstance(catalog, EmbeddedJsonCatalog):
        if page.role == "listing" and catalog.product_links and catalog.products == "@":
            return [], []  # listing pages only link to product pages
        result = extract_embedded(
            body,
            answered,
            catalog,
            vendor.key,
            required=page.role == "product",
            content_type=content_type,
            hint=hint,
        )
        return result.products, result.problems
    if page.role != "product":
        return [], []
    if isinstance(catalog, StructuredCatalog):
        return extract_structured(body, answered, vendor.key, content_type=content_type, hint=hint)
    if isinstance(catalog, CssCatalog):
        return extract_css(
            body, answered, catalog, vendor.key, content_type=content_type, hint=hint
        ), []
    return [], []


def parse_products(
    vendor: Vendor,
    pages: list[PageRecord],
    store: BlobStore,
    published: dict[str, str] | None = None,
) -> tuple[list[Product], list[str]]:
    """Products from the stored pages of a crawl, merged by id; plus parse problems.

    ``published`` (product URL -> id, from the vendor's last kits CSV) keeps every
    product on the id it was published under, whatever rule made ids since.
    """
    found: list[Product] = []
    problems: list[str] = []
    for page in pages:
        if page.key is None or page.status in ("failed", "refused"):
            problems.append(f"{page.url}: {page.reason}")
            continue
        try:
            products, page_problems = parse_page(vendor, page, store.get(page.key))
        except Exception as exc:  # one odd page must not cost the vendor's other products
            log.exception("reading %s failed", page.url)
            products, page_problems = [], [f"{page.url}: could not be read: {type(exc).__name__}"]
        problems.extend(page_problems)
        if not products and page.role == "product" and not page_problems:
            problems.append(f"{page.url}: no product found on the page")
        found.extend(products)
    default = vendor.default_currency
    if default:  # the page's own currency wins; the registry's fills the gaps
        found = [p if p.currency else p.model_copy(update={"currency": default}) for p in found]
    if published:
        found = keep_published_ids(found, published)
    return merge_products(found)[: vendor.max_products], problems
