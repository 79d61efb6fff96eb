"""Tags: perceptual hashes, colours in CIELAB, near-duplicate groups without comparing
every pair, taggers (Amazon Rekognition on the moto server) and what happens when an
image or the tagger is bad."""

from __future__ import annotations

import hashlib
import http.server
import io
import itertools
import json
import random
import threading

import boto3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw, ImageFilter

from image_assets.demo.images import ImageSpec, render_image
from image_assets.imaging.fingerprint import colour_difference, fingerprint
from image_assets.imaging.labels import RekognitionTagger, TaggerUnavailable
from image_assets.imaging.near_duplicates import hamming, near_duplicate_groups
from image_assets.records import ImageLabel, ImageRenditions, RenditionFile, TagRow
from image_assets.steps.tags import (
    MAX_TAGGER_FAILURES,
    SAME_COLOUR,
    SharedPicture,
    shared_picture_verdict,
    shared_pictures,
    tag_images,
)
from image_assets.storage import LocalBlobStore


def _encoded(img: Image.Image, fmt: str = "JPEG", **options) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return Image.open(io.BytesIO(buf.getvalue()))


def _photo(seed: str, size=(640, 480)) -> Image.Image:
    return Image.open(io.BytesIO(render_image(ImageSpec(seed, *size)))).convert("RGB")


def _camera_photo(seed: int, size=(800, 600)) -> Image.Image:
    """Photo-like content (shapes, soft edges, sensor noise): what pHash is made for."""
    rng = random.Random(seed)
    img = Image.linear_gradient("L").resize(size).convert("RGB")
    draw = ImageDraw.Draw(img)
    for _ in range(25):
        x, y, r = rng.randrange(size[0]), rng.randrange(size[1]), rng.randrange(20, 160)
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        draw.ellipse([x - r, y - r, x + r, y + r], fill=colour)
    img = img.filter(ImageFilter.GaussianBlur(2))
    return Image.blend(img, Image.effect_noise(size, 30).convert("RGB"), 0.1)


def test_dominant_colours_are_found_in_cielab_with_their_shares():
    img = Image.new("RGB", (400, 300), (200, 30, 30))
    img.paste((20, 40, 200), (0, 0, 100, 300))  # a quarter blue
    facts = fingerprint(img)
    (red, red_share), (blue, blue_share) = facts.dominant[:2]
    assert colour_difference(red, "#c81e1e") < 3 and colour_difference(blue, "#1428c8") < 3
    assert abs(red_share - 0.75) < 0.03 and abs(blue_share - 0.25) < 0.03
    assert fingerprint(img) == facts  # deterministic
    grey = fingerprint(Image.new("RGB", (50, 50), (128, 128, 128)))
    assert grey.dominant == (("#808080", 1.0),) and grey.average == "#808080"


@pytest.mark.parametrize("seed", range(4))
def test_hashes_survive_resizing_and_reencoding_but_tell_photos_apart(seed):
    photo = _camera_photo(seed)
    a = fingerprint(photo)
    for size, quality in (((400, 300), 60), ((1200, 900), 90), ((200, 150), 50)):
        copy = _encoded(photo.resize(size, Image.Resampling.LANCZOS), "WEBP", quality=quality)
        b = fingerprint(copy)
        assert hamming(a.phash, b.phash) <= 4 and hamming(a.dhash, b.dhash) <= 4, size
        assert colour_difference(a.average, b.average) < 3
    other = fingerprint(_camera_photo(seed + 100))
    assert hamming(a.phash, other.phash) > 8
    assert len(a.phash) == len(a.dhash) == 16


def _brute_force(hashes: list[str], distance: int) -> list[list[int]]:
    parent = list(range(len(hashes)))

    def find(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for i, j in itertools.combinations(range(len(hashes)), 2):
        if hamming(hashes[i], hashes[j]) <= distance:
            parent[find(j)] = find(i)
    groups: dict[int, list[int]] = {}
    for i in range(len(hashes)):
        groups.setdefault(find(i), []).append(i)
    return sorted((g for g in groups.values() if len(g) > 1), key=lambda g: (-len(g), g[0]))


@settings(max_examples=60, deadline=None)
@given(
    seeds=st.lists(st.integers(0, 2**64 - 1), min_size=0, max_size=40),
    flips=st.lists(st.tuples(st.integers(0, 39), st.integers(0, 63)), max_size=60),
    distance=st.integers(0, 10),
)
def test_multi_index_grouping_equals_comparing_every_pair(seeds, flips, distance):
    values = list(seeds)
    for index, bit in flips:  # near copies: a few bits flipped from another hash
        if values and index < len(values):
            values.append(values[index] ^ (1 << bit))
    hashes = [f"{v:016x}" for v in values]
    assert near_duplicate_groups(hashes, distance) == _brute_force(hashes, distance)


def test_grouping_refuses_a_distance_it_cannot_index():
    with pytest.raises(ValueError, match="distance must be 0 to 63"):
        near_duplicate_groups(["0" * 16, "f" * 16], 64)


# ------------------------------------------------------------ the tags step


class FlakyTagger:
    name = "flaky"

    def __init__(self, fail_from: int):
        self.calls = 0
        self.fail_from = fail_from

    def labels(self, image: bytes) -> list[ImageLabel]:
        self.calls += 1
        if self.calls > self.fail_from:
            raise TaggerUnavailable("flaky: ThrottlingException: Rate exceeded")
        with Image.open(io.BytesIO(image)) as img:
            assert img.format == "JPEG"  # what Rekognition accepts
        return [ImageLabel(name="Rocket", confidence=97.5)]


def _made(store: LocalBlobStore, count: int, broken: set[int] = frozenset()) -> list:
    made = []
    for i in range(count):
        key = f"renditions/p{i}/w400.jpeg"
        sha256 = "0" * 64
        if i not in broken:
            img = _photo(f"tag-{i % 3}", (400, 300))
            buf = io.BytesIO()
            img.save(buf, "JPEG", quality=85)
            store.put(key, buf.getvalue())
            sha256 = hashlib.sha256(buf.getvalue()).hexdigest()
        made.append(
            ImageRenditions(
                product_id=f"p{i}",
                position=1,
                original_sha256=f"{i:064x}",
                renditions=[
                    RenditionFile(
                        name="w400",
                        format="jpeg",
                        width=400,
                        height=300,
                        bytes=1,
                        key=key,
                        sha256=sha256,
                    )
                ],
            )
        )
    made.append(
        ImageRenditions(
            product_id="bad",
            position=2,
            original_sha256="f" * 64,
            status="failed",
            reason="corrupt or truncated image: JPEG has no end-of-image marker",
        )
    )
    return made


def test_every_image_gets_a_row_and_a_down_tagger_never_fails_the_catalogue(tmp_path):
    store = LocalBlobStore(tmp_path)
    tagger = FlakyTagger(fail_from=2)
    rows, stats = tag_images("m", _made(store, 9, broken={4}), store, tagger)
    assert len(rows) == 10 and stats.images == 10
    by_key = {r.key: r for r in rows}
    assert by_key["m/bad/2"].status == "failed" and "end-of-image" in by_key["m/bad/2"].reason
    assert by_key["m/p4/1"].status == "failed" and "BlobNotFound" in by_key["m/p4/1"].reason
    ok = [r for r in rows if r.status == "ok"]
    assert all(r.phash and r.average_colour and r.dominant_colours for r in ok)
    assert [r.labels_status for r in ok[:2]] == ["ok", "ok"]
    assert ok[0].labels == [ImageLabel(name="Rocket", confidence=97.5)]
    missing = [r for r in ok if r.labels_status == "missing"]
    assert len(missing) == len(ok) - 2 and all(r.labels_reason for r in missing)
    assert tagger.calls == 2 + MAX_TAGGER_FAILURES  # then not asked again this run
    assert "not asked again" in (missing[-1].labels_reason or "")
    off, _ = tag_images("m", _made(store, 2), store, None)
    assert {r.labels_status for r in off if r.status == "ok"} == {"off"}


class CountingStore(LocalBlobStore):
    reads: int = 0

    def get(self, key: str) -> bytes:
        self.reads += 1
        return super().get(key)


def test_a_rerun_with_the_same_bytes_reuses_rows_without_decoding_or_asking_the_tagger(
    tmp_path,
):
    store = CountingStore(tmp_path)
    made = _made(store, 5)
    tagger = FlakyTagger(fail_from=100)
    first, _ = tag_images("m", made, store, tagger)
    assert tagger.calls == 5 and all(r.labels_by == "flaky" for r in first if r.status == "ok")
    previous = {r.key: r for r in first}

    store.reads = 0
    again, stats = tag_images("m", made, store, tagger, previous=previous)
    assert again == first and stats.reused == 5 and stats.tagged == 5
    assert tagger.calls == 5 and store.reads == 0  # nothing read, nothing asked

    # p2's rendition changed: its row is computed again from the new bytes
    changed = _photo("tag-changed", (400, 300))
    buf = io.BytesIO()
    changed.save(buf, "JPEG", quality=85)
    store.put("renditions/p2/w400.jpeg", buf.getvalue())
    made[2].renditions[0].sha256 = hashlib.sha256(buf.getvalue()).hexdigest()
    store.reads = 0
    third, stats = tag_images("m", made, store, tagger, previous=previous)
    assert stats.reused == 4 and store.reads == 1 and tagger.calls == 6
    assert third[2].phash == fingerprint(Image.open(io.BytesIO(buf.getvalue()))).phash
    assert third[2].phash != first[2].phash

    # another tagger: the labels are asked of it, the hashes and colours are kept
    class OtherTagger(FlakyTagger):
        name = "other"

    other = OtherTagger(fail_from=100)
    fourth, stats = tag_images("m", made, store, other, previous={r.key: r for r in third})
    assert stats.reused == 0 and other.calls == 5
    assert [r.phash for r in fourth] == [r.phash for r in third]
    assert {r.labels_by for r in fourth if r.status == "ok"} == {"other"}

    # labels switched off: rows with labels are not passed off as label-free
    off, stats = tag_images("m", made, store, None, previous={r.key: r for r in fourth})
    assert stats.reused == 0 and {r.labels_status for r in off if r.status == "ok"} == {"off"}
    assert all(r.labels == [] for r in off)


def test_products_sharing_a_picture_are_reported_and_colourways_are_not(tmp_path):
    store = LocalBlobStore(tmp_path)
    rows, _ = tag_images("m", _made(store, 6), store, None)  # p0,p3 / p1,p4 / p2,p5 alike
    passed, summary, over = shared_picture_verdict(rows, max_products=1, distance=4)
    assert not passed and len(over) == 3 and "shown by more than 1 product" in summary
    assert sorted(s.products for s in over) == [("p0", "p3"), ("p1", "p4"), ("p2", "p5")]
    assert shared_picture_verdict(rows, max_products=2, distance=4)[0]
    red = Image.new("RGB", (400, 300), (200, 30, 30))
    blue = Image.new("RGB", (400, 300), (30, 30, 200))
    for img in (red, blue):  # the same composition in two colourways
        img.paste((240, 240, 240), (150, 50, 250, 250))
    colourways = [
        TagRow(key=f"m/{name}/1", product_id=name, status="ok", **_facts(img))
        for name, img in (("red", red), ("blue", blue))
    ]
    assert shared_picture_verdict(colourways, max_products=1, distance=4)[0]


def _shared_by_every_pair(rows: list[TagRow], distance: int) -> list[SharedPicture]:
    """shared_pictures the slow way: every pair of rows compared, joined transitively."""
    hashed = [r for r in rows if r.status == "ok" and r.phash and r.dhash]
    parent = list(range(len(hashed)))

    def find(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for i, j in itertools.combinations(range(len(hashed)), 2):
        a, b = hashed[i], hashed[j]
        if (
            hamming(a.phash, b.phash) <= distance
            and hamming(a.dhash, b.dhash) <= distance
            and colour_difference(a.average_colour, b.average_colour) <= SAME_COLOUR
        ):
            parent[find(j)] = find(i)
    groups: dict[int, list[TagRow]] = {}
    for i, row in enumerate(hashed):
        groups.setdefault(find(i), []).append(row)
    found = [
        SharedPicture(
            products=tuple(sorted({m.product_id for m in members})),
            images=tuple(sorted(m.key for m in members)),
        )
        for members in groups.values()
        if len(members) > 1
    ]
    return sorted(found, key=lambda s: (-len(s.products), s.images))


_LOOK = st.tuples(
    st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1), st.sampled_from(["#808080", "#c81e1e"])
)


@settings(max_examples=60, deadline=None)
@given(
    looks=st.lists(_LOOK, min_size=1, max_size=6),
    picks=st.lists(
        st.tuples(st.integers(0, 5), st.integers(-1, 63), st.integers(0, 9)), max_size=40
    ),
    distance=st.integers(0, 6),
)
def test_shared_pictures_equal_comparing_every_pair_with_many_exact_copies(looks, picks, distance):
    """Exact copies (a placeholder, one photo reused) are grouped before comparing; the
    groups must be those of comparing every pair, near copies (a bit flipped) included."""
    rows = []
    for n, (look, bit, product) in enumerate(picks):
        phash, dhash, colour = looks[look % len(looks)]
        if bit >= 0:
            phash ^= 1 << bit
        rows.append(
            TagRow(
                key=f"m/p{product}/{n}",
                product_id=f"p{product}",
                status="ok",
                phash=f"{phash:016x}",
                dhash=f"{dhash:016x}",
                average_colour=colour,
            )
        )
    assert shared_pictures(rows, distance) == _shared_by_every_pair(rows, distance)


def test_a_placeholder_shown_by_twenty_thousand_products_is_one_picture():
    placeholder = {"phash": "f0f0f0f00f0f0f0f", "dhash": "0123456789abcdef"}
    rows = [
        TagRow(
            key=f"m/p{i}/1",
            product_id=f"p{i}",
            status="ok",
            average_colour="#808080",
            **placeholder,
        )
        for i in range(20_000)
    ] + [TagRow(key="m/own/1", product_id="own", status="ok", phash="0" * 16, dhash="f" * 16)]
    (picture,) = shared_pictures(rows, 4)
    assert len(picture.products) == 20_000 and "own" not in picture.products


def _facts(img: Image.Image) -> dict:
    f = fingerprint(img)
    return {"phash": f.phash, "dhash": f.dhash, "average_colour": f.average}


# ------------------------------------------------------------ Amazon Rekognition (moto)


def test_rekognition_labels_through_boto3_on_the_moto_server(aws_env):
    jpeg = io.BytesIO()
    _photo("rekognition").save(jpeg, "JPEG")
    tagger = RekognitionTagger(boto3.client("rekognition"), max_labels=5, min_confidence=50)
    labels = tagger.labels(jpeg.getvalue())
    assert labels and all(isinstance(label, ImageLabel) for label in labels)
    assert all(0 <= label.confidence <= 100 and label.name for label in labels)


def test_an_unreachable_rekognition_is_unavailable_with_one_line(aws_env):
    from botocore.config import Config

    client = boto3.client(
        "rekognition",
        endpoint_url="http://127.0.0.1:9",  # nothing listens there
        config=Config(retries={"max_attempts": 1}, connect_timeout=1),
    )
    with pytest.raises(TaggerUnavailable) as refused:
        RekognitionTagger(client).labels(b"\xff\xd8\xff\xd9")
    assert str(refused.value).startswith("rekognition: EndpointConnectionError")
    assert "\n" not in str(refused.value)


def test_hashes_of_many_random_pictures_are_spread(tmp_path):
    """pHash is not degenerate on varied pictures: no two of 12 distinct photos collide."""
    rng = random.Random(7)
    hashes = [fingerprint(_photo(f"spread-{rng.random()}", (320, 240))).phash for _ in range(12)]
    assert len(set(hashes)) == 12


class _Throttling(http.server.BaseHTTPRequestHandler):
    """Rekognition's JSON protocol: ``throttle`` answers of ThrottlingException (HTTP 400,
    the service's own code for it), then DetectLabels answers."""

    throttle = 0
    calls: list[str] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        target = self.headers.get("X-Amz-Target", "")
        type(self).calls.append(target)
        assert target == "RekognitionService.DetectLabels" and json.loads(body)["Image"]["Bytes"]
        if len(type(self).calls) <= type(self).throttle:
            status, answer = 400, {"__type": "ThrottlingException", "message": "Rate exceeded"}
        else:
            status, answer = 200, {"Labels": [{"Name": "Rocket", "Confidence": 91.26}]}
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.mark.parametrize(("throttle", "labelled"), [(1, True), (5, False)])
def test_rekognition_throttling_is_retried_then_marked_unavailable(aws_env, throttle, labelled):
    from botocore.config import Config

    _Throttling.throttle, _Throttling.calls = throttle, []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Throttling)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = boto3.client(
            "rekognition",
            endpoint_url=f"http://127.0.0.1:{server.server_address[1]}",
            config=Config(retries={"mode": "standard", "max_attempts": 3}),
        )
        tagger = RekognitionTagger(client)
        if labelled:
            assert tagger.labels(b"\xff\xd8\xff\xd9") == [
                ImageLabel(name="Rocket", confidence=91.3)
            ]
            assert len(_Throttling.calls) == 2  # throttled once, retried by the client
        else:
            with pytest.raises(TaggerUnavailable, match="rekognition: ThrottlingException"):
                tagger.labels(b"\xff\xd8\xff\xd9")
            assert 2 <= len(_Throttling.calls) < 5  # retried by the client, then unavailable
    finally:
        server.shutdown()
        server.server_close()


def test_the_tagger_setting_picks_rekognition_and_refuses_what_it_does_not_know(
    aws_env, tmp_path, monkeypatch
):
    from pydantic import ValidationError

    from image_assets.defs.profiles import build_resources

    monkeypatch.delenv("IMAGE_ASSETS_TAGGER", raising=False)

    def configured():  # as Dagster resolves it in a run (EnvVars read then)
        return build_resources(str(tmp_path))["tagger"].process_config_and_initialize()

    assert configured().tagger() is None  # hashes and colours only
    monkeypatch.setenv("IMAGE_ASSETS_TAGGER", "rekognition")
    tagger = configured().tagger()
    assert isinstance(tagger, RekognitionTagger)
    jpeg = io.BytesIO()
    _photo("setting").save(jpeg, "JPEG")
    assert tagger.labels(jpeg.getvalue())  # through the moto server (AWS_ENDPOINT_URL)
    monkeypatch.setenv("IMAGE_ASSETS_TAGGER", "clip")
    with pytest.raises(ValidationError, match="rekognition"):
        build_resources(str(tmp_path))
