"""Read a fetched page the way a browser does: its text and the URL its links are relative to.

The text is decoded by the precedence browsers use (a byte-order mark, the HTTP
``charset``, ``<meta charset>`` / ``http-equiv``, then detection), which is exactly
what w3lib's ``html_to_unicode`` implements. A Latin-1 page served without a meta
tag but with ``Content-Type: text/html; charset=iso-8859-1`` must say "Première",
not "Premi\ufffdre".

The base URL is the URL that answered (after redirects), then ``<base href>``:
relative image links resolved against the URL that was *requested* point at the
old location of a moved page.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from bs4 import BeautifulSoup
from w3lib.encoding import html_to_unicode


@dataclass(frozen=True)
class DecodedPage:
    """One page's text, the encoding it was read with, and its base URL."""

    text: str
    encoding: str
    base_url: str


def decode_html(body: bytes, content_type: str | None) -> tuple[str, str]:
    """(text, encoding name) of an HTML page, by the browser's precedence."""
    encoding, text = html_to_unicode(content_type or "", body)
    return text, encoding


def base_url_of(doc: BeautifulSoup, page_url: str) -> str:
    """The document's base URL: its first ``<base href>`` (resolved against the page URL,
    http(s) only), else the page URL."""
    tag = doc.find("base", href=True)
    href = tag.get("href") if tag is not None else None
    if isinstance(href, str) and href.strip():
        candidate = urljoin(page_url, href.strip())
        if urlsplit(candidate).scheme in ("http", "https"):
            return candidate
    return page_url


def read_page(
    body: bytes, content_type: str | None, final_url: str
) -> tuple[DecodedPage, BeautifulSoup]:
    """Decode ``body`` and parse it; the base URL follows ``final_url`` and ``<base href>``."""
    text, encoding = decode_html(body, content_type)
    doc = BeautifulSoup(text, "html.parser")
    return DecodedPage(text, encoding, base_url_of(doc, final_url)), doc
