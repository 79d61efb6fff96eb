import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from image_assets.layout import MAX_ID_LENGTH, sanitize_id
from image_assets.scraping.identity import product_id_for
from image_assets.storage import BlobNotFound, InvalidKey, LocalBlobStore, validate_key


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("EST-1234", "est-1234"),
        ("../../etc/passwd", "etc-passwd"),
        ("a b\tc", "a-b-c"),
        ("Fusée Ariane 5", "fusee-ariane-5"),
        ("..", ""),
        ("kit..v2", "kit.v2"),
        ("/abs/path", "abs-path"),
        ("x/../y", "x-.-y"),
    ],
)
def test_sanitize_id(raw, expected):
    assert sanitize_id(raw) == expected


def test_sanitized_ids_are_always_safe_keys():
    for raw in ["../x", "..", "a/b", "ÆØÅ", "🚀", " ", "a" * 500, "%2e%2e/", "\\..\\"]:
        pid = product_id_for(raw, None)
        assert pid and len(pid) <= MAX_ID_LENGTH
        validate_key(f"kits/estes/{pid}")  # raises if unsafe


def test_long_ids_keep_distinct_hash_suffixes():
    a, b = sanitize_id("x" * 100 + "a"), sanitize_id("x" * 100 + "b")
    assert a != b and len(a) == len(b) == MAX_ID_LENGTH


def test_product_id_falls_back_to_url_slug_then_hash():
    assert product_id_for(None, "https://shop.example/products/big-bertha.html") == "big-bertha"
    assert product_id_for("", "https://shop.example/item?id=42") == "item-id-42"
    assert product_id_for("🚀", None).startswith("p-")


def test_blob_store_refuses_traversal(tmp_path):
    store = LocalBlobStore(tmp_path / "root")
    for key in ["../evil", "a/../../evil", "/etc/passwd", "a//b", "", "a/./b"]:
        with pytest.raises(InvalidKey):
            store.put(key, b"x")
    assert not (tmp_path / "evil").exists()


def test_blob_store_round_trip_and_atomic_listing(tmp_path):
    store = LocalBlobStore(tmp_path)
    store.put("kits/estes_kits.csv", b"a")
    store.put("kits/estes_kits.csv", b"b")
    (tmp_path / "kits" / ".tmp-leftover").write_bytes(b"partial")
    assert store.get("kits/estes_kits.csv") == b"b"
    assert list(store.list("kits")) == ["kits/estes_kits.csv"]
    assert store.delete("kits/estes_kits.csv") and not store.exists("kits/estes_kits.csv")


# every failure to read a key is BlobNotFound (or InvalidKey for an unsafe one), whatever
# the key: a path through a file, a name over the filesystem's limit, a folder, unicode


keys = st.lists(
    st.one_of(
        st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=300),
        st.sampled_from(["a", "a.txt", "dir", "..", ".", "", "x" * 256]),
    ),
    min_size=1,
    max_size=5,
).map("/".join)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(key=keys)
def test_a_local_store_read_fails_only_as_not_found_or_invalid(tmp_path, key):
    store = LocalBlobStore(tmp_path / "store")
    store.put("a.txt", b"a")
    store.put("dir/b.txt", b"b")
    with contextlib.suppress(BlobNotFound, InvalidKey):
        store.get(key)
    with contextlib.suppress(BlobNotFound, InvalidKey):
        store.info(key)
    assert store.exists(key) in (True, False)


def test_an_s3_key_s3_cannot_hold_is_not_found(aws_env):
    import functools

    import boto3

    from image_assets.storage.s3 import S3BlobStore

    boto3.client("s3").create_bucket(Bucket="keys")
    store = S3BlobStore(functools.partial(boto3.client, "s3"), "keys")
    long_key = "é" * 600  # 600 characters, 1200 bytes: over S3's 1024-byte limit
    with pytest.raises(BlobNotFound):
        store.get(long_key)
    assert store.exists(long_key) is False
