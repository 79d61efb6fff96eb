"""Hostile requests against a real `image-assets serve`: never a 500, nothing leaked.

The invariant: every failure to read a key is a 404 (or a 400 for an id that is no
public id), whatever the key, tested with hypothesis over keys; and the four classes
an outside corpus found (a path through a file, a segment over the name limit, an
overlay that rounds to 0 px, deeply nested JSON) each by name.
"""

from __future__ import annotations

import http.client
from urllib.parse import quote

import cloudinary.utils
import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from image_assets_tests.delivery_service import MASTER, UPLOAD_TOKEN


def _raw(
    base: str,
    path: str,
    headers: dict[str, str] | None = None,
    method: str = "GET",
    body: bytes | None = None,
):
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        answer = connection.getresponse()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
    finally:
        connection.close()


def _no_traceback(service) -> None:
    log = service["log"].read_text()
    assert "Traceback" not in log and '" 500 ' not in log, log[-3000:]


segments = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=300).map(
    lambda s: quote(s, safe="")
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    parts=st.lists(
        st.one_of(
            segments,
            st.sampled_from(
                ["kits", "estes", "est0001", "est0001.jpg", "est0001.json", "uploads", "..", "."]
            ),
        ),
        min_size=1,
        max_size=6,
    ),
    ext=st.sampled_from(["jpg", "png", "webp", ""]),
)
def test_no_key_reaches_a_500(service, parts, ext):
    path = "/image/upload/v1/" + "/".join(parts) + (f".{ext}" if ext else "")
    status, headers, body = _raw(service["base"], path[:1990])
    assert status in (200, 304, 400, 404), (path, status, body[:200])
    if status != 200:
        assert body.count(b"\n") == 1 and len(body) <= 310, body[:400]
        assert headers.get("x-content-type-options") == "nosniff"


def test_the_four_classes_the_corpus_found(service):
    base, cdn = service["base"], service["cdn"]
    # a public id whose path runs through a file (the master's record is a file)
    assert _raw(base, "/image/upload/v1/kits/estes/est0001.json/x.jpg")[0] == 404
    assert _raw(base, "/image/upload/v1/kits/estes/est0001.jpg/x.jpg")[0] == 404
    # a segment over the filesystem's 255-byte name limit
    status, _, body = _raw(base, "/image/upload/v1/kits/" + "a" * 300 + ".jpg")
    assert status == 404 and len(body) <= 310
    # an overlay so small, relative to the base, that it rounds to 0 px
    for width in (0.0001, 0.001):
        url, _ = cloudinary.utils.cloudinary_url(
            MASTER,
            format="jpg",
            transformation=[
                {"width": 100, "crop": "scale"},
                {"overlay": "kits:brand:logo", "width": width, "flags": "relative"},
            ],
            **cdn._url_options(),
        )
        response = httpx.get(url)
        assert response.status_code == 200, response.text  # a 1 px logo, composited
    # deeply nested JSON on POST /uploads
    auth = {"Authorization": f"Bearer {UPLOAD_TOKEN}", "Content-Type": "application/json"}
    status, _, body = _raw(base, "/uploads", auth, "POST", b"[" * 10000 + b"]" * 10000)
    assert status == 413  # over the grant request's size: refused before parsing
    status, _, body = _raw(base, "/uploads", auth, "POST", b"[" * 4000 + b"]" * 4000)
    assert status == 400 and b"send JSON" in body
    _no_traceback(service)


def test_accept_q_values_if_none_match_star_and_nosniff(service):
    base, cdn = service["base"], service["cdn"]
    url, _ = cloudinary.utils.cloudinary_url(
        MASTER, format="jpg", width=200, crop="scale", fetch_format="auto", **cdn._url_options()
    )
    path = url.removeprefix(base)
    accept = {"Accept": "image/avif;q=0, image/webp, */*;q=0.8"}
    status, headers, _ = _raw(base, path, accept)
    assert status == 200 and headers["content-type"] == "image/webp"
    status, headers, _ = _raw(base, path, {"Accept": "image/avif;q=0,image/webp;q=0,image/*"})
    assert status == 200 and headers["content-type"] == "image/jpeg"
    status, headers, _ = _raw(base, path, {"Accept": "image/avif, image/webp"})
    assert headers["content-type"] == "image/avif"
    assert headers["x-content-type-options"] == "nosniff"
    status, headers, body = _raw(base, path, {"If-None-Match": "*", **accept})
    assert status == 304 and body == b""
    # "*" matches only what exists
    assert _raw(base, "/image/upload/v1/kits/estes/missing.jpg", {"If-None-Match": "*"})[0] == 404


def test_error_texts_are_bounded(service):
    status, _, body = _raw(service["base"], "/image/upload/v1/kits/" + "b" * 1500 + ".jpg")
    assert status in (400, 404) and len(body) <= 310 and body.endswith(b"\n")


def test_a_tampered_master_is_not_served_as_an_image(service):
    """The store's file for a master is replaced by an HTML page: untransformed, it is
    probed like any render and refused, never handed out as image/jpeg."""
    cdn = service["cdn"]
    tampered = "kits/tamper/page"
    cdn.upload(service["photo"], tampered, format="jpeg", sha256="c" * 64, width=1600, height=1200)
    (service["data"] / "cdn" / "kits" / "tamper" / "page.jpg").write_bytes(
        b"<!DOCTYPE html><html><script>alert(1)</script></html>"
    )
    status, headers, body = _raw(service["base"], f"/image/upload/v1/{tampered}.jpg")
    assert status == 400 and headers["content-type"].startswith("text/plain"), (status, headers)
    assert b"<script>" not in body
    _no_traceback(service)
