"""Pages read as browsers read them: the charset precedence, the URL that answered, ids from text."""

from __future__ import annotations

import html
import json
from http.server import BaseHTTPRequestHandler
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from image_assets.demo.serving import serve
from image_assets.layout import MAX_ID_LENGTH
from image_assets.scraping.decoding import decode_html
from image_assets.scraping.extractors import extract_structured
from image_assets.scraping.http import HttpClient, HttpSettings
from image_assets.scraping.identity import product_id_for, slug_text, url_slug
from image_assets.storage import validate_key

ENCODINGS = ["latin-1", "cp1252", "shift_jis", "euc-jp", "gb18030", "koi8-r", "iso-8859-2", "utf-8"]
DECLARATIONS = ["http", "meta", "http-equiv", "bom"]


def _encodable(char: str, encoding: str) -> bool:
    try:
        char.encode(encoding)
    except UnicodeEncodeError:
        return False
    return True


def names_in(encoding: str) -> st.SearchStrategy[str]:
    """Names written only with characters the encoding has (the page could not hold others)."""
    chars = st.characters(blacklist_categories=("Cc", "Cs", "Co", "Cn", "Zl", "Zp")).filter(
        lambda c: c != "\ufeff" and _encodable(c, encoding)
    )
    return st.text(chars, min_size=1, max_size=40).filter(lambda t: t.strip())


def _page(name: str, encoding: str, declared: str, syntax: str) -> tuple[bytes, str | None]:
    if syntax == "json-ld":
        node = {"@type": "Product", "name": html.escape(name, quote=False), "sku": "X1"}
        data = json.dumps(node).replace("<", "\\u003c")  # no "</script>" inside the script
        body = f'<script type="application/ld+json">{data}</script>'
    else:
        body = (
            '<div itemscope itemtype="https://schema.org/Product">'
            f'<h1 itemprop="name">{html.escape(name)}</h1><meta itemprop="sku" content="X1"></div>'
        )
    head = ""
    if declared == "meta":
        head = f'<meta charset="{encoding}">'
    elif declared == "http-equiv":
        head = f'<meta http-equiv="Content-Type" content="text/html; charset={encoding}">'
    page = f"<!DOCTYPE html><html><head>{head}<title>t</title></head><body>{body}</body></html>"
    if declared == "bom":
        return b"\xef\xbb\xbf" + page.encode("utf-8"), "text/html; charset=iso-8859-1"  # BOM wins
    content_type = f"text/html; charset={encoding}" if declared == "http" else "text/html"
    return page.encode(encoding), content_type


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(data=st.data())
def test_a_name_survives_any_encoding_however_it_is_declared(data):
    encoding = data.draw(st.sampled_from(ENCODINGS), "encoding")
    declared = data.draw(st.sampled_from(DECLARATIONS), "declared")
    syntax = data.draw(st.sampled_from(["json-ld", "microdata"]), "syntax")
    name = data.draw(names_in("utf-8" if declared == "bom" else encoding), "name")
    body, content_type = _page(name, encoding, declared, syntax)
    (product,), problems = extract_structured(
        body, "https://shop.example/p/1", "m", content_type=content_type
    )
    assert product.name == " ".join(name.split()), (encoding, declared, problems)


@pytest.mark.parametrize(
    ("body", "content_type", "text"),
    [
        ("Première".encode("latin-1"), "text/html; charset=iso-8859-1", "Première"),
        ("€ „quoted“".encode("cp1252"), "text/html; charset=windows-1252", "€ „quoted“"),
        (
            "<meta charset=shift_jis>ロケット".encode("shift_jis"),
            "text/html",
            "<meta charset=shift_jis>ロケット",
        ),
        (b"\xef\xbb\xbf" + "Fusée".encode(), "text/html; charset=iso-8859-1", "Fusée"),
    ],
)
def test_charset_precedence(body, content_type, text):
    assert decode_html(body, content_type)[0] == text


def test_the_http_charset_beats_the_meta_tag():
    body = '<meta charset="utf-8"><p>Première</p>'.encode("latin-1")
    assert "Première" in decode_html(body, "text/html; charset=iso-8859-1")[0]


# -- redirects -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def redirecting_site():
    routes = {
        "/a/301": (301, "../b/target"),  # relative, up a level
        "/a/302": (302, "/b/target"),
        "/a/307": (307, "http://127.0.0.1:{port}/b/target"),
        "/a/308": (308, "target2"),  # relative to /a/
        "/chain/1": (301, "/chain/2"),
        "/chain/2": (302, "3"),
        "/chain/3": (307, "/chain/4"),
        "/chain/4": (308, "/b/target"),
    }

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            if self.path in routes:
                status, location = routes[self.path]
                self.send_response(status)
                self.send_header("Location", location.format(port=self.server.server_address[1]))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = (
                f"<p>{self.path}</p>".encode() if self.path in ("/b/target", "/a/target2") else b""
            )
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    with serve(Handler) as server:
        yield server.url


@pytest.mark.parametrize(
    ("path", "final"),
    [
        ("/a/301", "/b/target"),
        ("/a/302", "/b/target"),
        ("/a/307", "/b/target"),
        ("/a/308", "/a/target2"),
        ("/chain/1", "/b/target"),
    ],
)
def test_the_final_url_is_the_one_that_answered(redirecting_site, path, final):
    with HttpClient(
        HttpSettings(allowed_private_networks=("127.0.0.0/8",), respect_robots=False)
    ) as client:
        result = client.fetch(redirecting_site + path)
    assert result.final_url == redirecting_site + final
    assert result.url == redirecting_site + path
    assert result.content == f"<p>{final}</p>".encode()


def test_relative_links_resolve_against_the_final_url_then_base_href():
    page = b'<img itemprop="image" src="x.jpg"><div itemscope itemtype="https://schema.org/Product"><span itemprop="name">N</span><img itemprop="image" src="pics/a.jpg"></div>'
    (product,), _ = extract_structured(page, "https://shop.example/new/dir/page.html", "m")
    assert product.image_urls == ["https://shop.example/new/dir/pics/a.jpg"]
    based = b'<base href="/media/">' + page
    (product,), _ = extract_structured(based, "https://shop.example/new/dir/page.html", "m")
    assert product.image_urls == ["https://shop.example/media/pics/a.jpg"]
    assert product.url == "https://shop.example/new/dir/page.html"  # the page is where it is


# -- ids from text -----------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(text=st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=60))
def test_an_id_is_the_same_from_a_url_and_its_percent_encoding(text):
    raw = f"https://shop.example/products/{text.replace('/', '-').replace('?', '-').replace('#', '-')}"
    encoded = f"https://shop.example/products/{quote(raw.rsplit('/', 1)[1], safe='')}"
    assert url_slug(raw) is None or url_slug(encoded) == url_slug(raw)
    pid = product_id_for(None, encoded)
    assert pid == product_id_for(None, raw)
    assert pid and len(pid) <= MAX_ID_LENGTH and "%" not in pid
    validate_key(f"kits/m/{pid}")


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("little-dog-über", "little-dog-uber"),
        ("Große Straße", "grosse-strasse"),
        ("ロケット", "roketto"),
        ("Fusée 🚀 X", "fusee-x"),
        ("Ærø-Ølfabrik", "aero-olfabrik"),
    ],
)
def test_slugs_are_transliterated_text(text, slug):
    assert slug_text(text) == slug


def test_the_shopify_handle_in_unicode_gives_a_readable_id():
    assert (
        product_id_for(None, "https://shop.example/products/little-dog-%C3%BCber")
        == "little-dog-uber"
    )
    assert (
        product_id_for(None, "https://shop.example/products/little-dog-über") == "little-dog-uber"
    )
    # the platform's own id wins over the handle; a sku over both
    assert product_id_for(None, "https://s.example/products/x", 7423861) == "7423861"
    assert product_id_for("SKU-1", "https://s.example/products/x", 7423861) == "sku-1"


ACCENTED = [chr(c) for c in range(0xC0, 0x100) if c not in (0xD7, 0xF7)]
# European words: letters, spaces and digits, an accented letter never right after another
# (two adjacent ones are also a valid EUC-KR syllable; a page so short and undeclared is
# a guess for browsers too)
WESTERN = st.lists(
    st.tuples(st.sampled_from(list("abcdeXYZ -,.0123")), st.sampled_from(["", *ACCENTED])),
    min_size=1,
    max_size=30,
).map(lambda pairs: "".join(a + b for a, b in pairs))


@settings(max_examples=300, deadline=None)
@given(text=WESTERN)
def test_an_undeclared_western_page_reads_as_windows_1252(text):
    body = f"<p>{text}</p>".encode("cp1252")
    assert decode_html(body, "text/html")[0] == f"<p>{text}</p>"


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("ロケット一号 価格", "shift_jis"),
        ("ロケット一号 価格", "euc-jp"),
        ("로켓 발사 키트", "euc-kr"),
        ("Fusée 🚀", "utf-8"),
    ],
)
def test_an_undeclared_east_asian_page_is_detected(text, encoding):
    assert decode_html(f"<h1>{text}</h1>".encode(encoding), "text/html")[0] == f"<h1>{text}</h1>"
