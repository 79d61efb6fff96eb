"""Read a fetched page the way a browser does: its text and the URL its links are relative to.

The text is decoded by the precedence browsers use (a byte-order mark, the HTTP
``charset``, ``<meta charset>`` / ``http-equiv``, then detection), which is exactly
what w3lib's ``html_to_unicode`` implements; :func:`detect_encoding` is the last step. A Latin-1 page served without a meta
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


def _kana(c: str) -> bool:
    return 0x3040 <= ord(c) <= 0x30FF


def _ideograph(c: str) -> bool:
    return 0x4E00 <= ord(c) <= 0x9FFF or 0x3000 <= ord(c) <= 0x303F or 0xFF01 <= ord(c) <= 0xFF5E


def _hangul(c: str) -> bool:
    return 0xAC00 <= ord(c) <= 0xD7AF


# strict multi-byte decodes, and which characters are that language's own text. Japanese
# needs some kana (Korean decoded as EUC-JP is all kanji); Chinese pages declare their
# charset in practice, and GB18030 or Big5 would "decode" Western bytes into ideographs
_MULTIBYTE = (
    ("cp932", lambda c: _kana(c) or _ideograph(c), _kana),
    ("euc_jp", lambda c: _kana(c) or _ideograph(c), _kana),
    ("euc_kr", _hangul, _hangul),
)


def detect_encoding(body: bytes) -> str:
    """The encoding of a page that declares none: UTF-8 when it is valid UTF-8, else the
    Japanese or Korean multi-byte encoding that decodes it strictly into the most text
    of its own script (at least 80% of the non-ASCII characters), else windows-1252
    (what browsers assume for an undeclared Western page)."""
    try:
        body.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    best, best_share = "cp1252", 0.8
    for encoding, own, needed in _MULTIBYTE:
        try:
            text = body.decode(encoding)
        except UnicodeDecodeError:
            continue
        wide = [c for c in text if ord(c) > 0x7F]
        if not any(needed(c) for c in wide):
            continue
        share = sum(1 for c in wide if own(c)) / len(wide)
        if share > best_share:
            best, best_share = encoding, share
    return best


def decode_html(body: bytes, content_type: str | None) -> tuple[str, str]:
    """(text, encoding name) of an HTML page, by the browser's precedence."""
    encoding, text = html_to_unicode(content_type or "", body, auto_detect_fun=detect_encoding)
    return text, encoding


def base_url_from(href: object, page_url: str) -> str:
    """The base URL a ``<base href>`` value gives (resolved against the page URL, http(s)
    only), else the page URL."""
    if isinstance(href, str) and href.strip():
        candidate = urljoin(page_url, href.strip())
        if urlsplit(candidate).scheme in ("http", "https"):
            return candidate
    return page_url


def base_url_of(doc: BeautifulSoup, page_url: str) -> str:
    """The document's base URL: its first ``<base href>``, else the page URL."""
    tag = doc.find("base", href=True)
    return base_url_from(tag.get("href") if tag is not None else None, page_url)


def read_page(
    body: bytes, content_type: str | None, final_url: str
) -> tuple[DecodedPage, BeautifulSoup]:
    """Decode ``body`` and parse it; the base URL follows ``final_url`` and ``<base href>``."""
    text, encoding = decode_html(body, content_type)
    doc = BeautifulSoup(text, "html.parser")
    return DecodedPage(text, encoding, base_url_of(doc, final_url)), doc
