"""Canonical product URLs: one URL per product, however the shop linked to it.

Listing pages decorate links with tracking parameters (``?utm_source=list``,
``?ref=home``); the same product linked twice would otherwise become two
products, uploaded twice. A canonical URL drops known tracking parameters and
the fragment, sorts what remains, lowercases the scheme and host, drops default
ports, and is a URI (an IRI's non-ASCII characters percent-encoded, the host in
IDNA), so the kits CSV carries links every client accepts.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, quote, urlencode, urljoin, urlsplit, urlunsplit

# query parameters that only say where a click came from (exact names, and prefixes)
TRACKING_PARAMS = frozenset(
    {
        "gclid",
        "gbraid",
        "wbraid",
        "dclid",
        "fbclid",
        "msclkid",
        "yclid",
        "igshid",
        "srsltid",
        "ref",
        "ref_src",
        "referrer",
        "_ga",
        "_gl",
        "mkt_tok",
        "spm",
    }
)
TRACKING_PREFIXES = ("utm_", "mc_", "pk_", "hsa_", "_hs")
_SAFE_PATH = "/%:@!$&'()*+,;=-._~"
_SAFE_QUERY = "%:@!$'()*,;/?-._~"
_DEFAULT_PORTS = {"http": 80, "https": 443}
_SPACE = re.compile(r"\s")


def is_tracking(name: str) -> bool:
    lowered = name.lower()
    return lowered in TRACKING_PARAMS or lowered.startswith(TRACKING_PREFIXES)


def canonical_url(url: str) -> str:
    """The canonical form of an http(s) URL (other URLs come back unchanged)."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return url
    host = _idna(parts.hostname)
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    if parts.username:  # credentials in a product link are kept, as given
        netloc = f"{parts.netloc.rsplit('@', 1)[0]}@{netloc}"
    query = sorted(
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not is_tracking(k)
    )
    path = quote(_SPACE.sub("%20", parts.path or "/"), safe=_SAFE_PATH)
    return urlunsplit((scheme, netloc, path, urlencode(query, safe=_SAFE_QUERY), ""))


def page_canonical(declared: list[str | None], page_url: str, base_url: str | None = None) -> str:
    """A page's own canonical URL: the first ``declared`` value (``<link rel=canonical>``,
    then ``og:url``) that resolves against ``base_url`` to an http(s) URL, else the page's
    URL (the one that answered); canonicalized either way."""
    for value in declared:
        if value and value.strip():
            candidate = urljoin(base_url or page_url, value.strip())
            if urlsplit(candidate).scheme in ("http", "https"):
                return canonical_url(candidate)
    return canonical_url(page_url)


def _idna(host: str) -> str:
    host = host.lower()
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return quote(host, safe=".-")
