"""The ground floor: the store layout, the format table, typed failures and the retry helper."""

from __future__ import annotations

import pytest
from cloudinary import exceptions as cx
from hypothesis import given, settings
from hypothesis import strategies as st

from image_assets import layout
from image_assets.cdn.cloudinary import classify
from image_assets.failures import FailureKind
from image_assets.formats import FORMATS, extension, image_format, mime_type
from image_assets.retry import (
    Backoff,
    RetriesExhausted,
    Transient,
    call_with_retries,
    retry_after_seconds,
    seconds_until,
)
from image_assets.storage import validate_key

# ------------------------------------------------------------------ layout


@given(st.text(max_size=300))
def test_sanitized_ids_are_single_safe_key_segments(raw):
    safe = layout.sanitize_id(raw)
    assert len(safe) <= layout.MAX_ID_LENGTH
    if safe:
        assert "/" not in safe and validate_key(safe) == safe
        assert not safe.startswith(".")


@given(
    st.text(min_size=1, max_size=80).map(layout.sanitize_id).filter(bool),
    st.text(min_size=1, max_size=80).map(layout.sanitize_id).filter(bool),
    st.integers(min_value=1, max_value=50),
)
def test_public_ids_are_valid_keys_and_split_into_the_manufacturer_folder(maker, product, pos):
    image_id = layout.public_id(maker, product, pos)
    assert validate_key(image_id) == image_id
    folder, name = layout.split_public_id(image_id)
    assert folder == f"kits/{maker}" and f"{folder}/{name}" == image_id
    for fmt in ("jpeg", "webp", "png", "avif"):
        assert validate_key(layout.cdn_object_key(image_id, fmt))
        assert validate_key(layout.rendition_public_id(image_id, "thumb_200", fmt))


@given(st.text(min_size=1, max_size=120).filter(lambda s: "\x00" not in s))
def test_upload_ids_round_trip_through_their_audit_key(upload_id):
    assert layout.upload_id_from_audit_key(layout.upload_audit_key(upload_id)) == upload_id


def test_keys_of_each_store_do_not_collide():
    sha = "ab" * 32
    keys = {
        layout.original_key(sha),
        layout.renditions_prefix(sha, "f" * 16),
        layout.upload_original_key("20260101T000000_abababab.jpg"),
        layout.kits_csv_key("estes"),
        layout.vendor_audit_key("estes"),
        layout.upload_audit_key("estes"),
        layout.upload_manifest_key("estes"),
        layout.http_cache_key("estes", "pages"),
        layout.asset_state_key(["vendor_pages"], "estes"),
        layout.page_key("estes", "https://x/", "listing"),
    }
    assert len(keys) == 10 and all(validate_key(k) for k in keys)


# ------------------------------------------------------------------ formats


def test_format_table_answers_every_spelling():
    assert extension("jpeg") == extension("JPEG") == extension("jpg") == "jpg"
    assert mime_type("webp") == "image/webp" and mime_type("nope") == "application/octet-stream"
    assert image_format("jpeg").cloudinary_name == "jpg" and not image_format("jpeg").alpha
    assert all(f.max_side for f in FORMATS.values() if f.writable)
    with pytest.raises(ValueError, match="unknown image format"):
        image_format("svg")


# ------------------------------------------------------------------ failures


def _raised_while_handling(context: BaseException, error: Exception) -> Exception:
    """``error`` raised inside ``except``, as the SDK raises it: ``__context__`` is kept."""
    try:
        try:
            raise context
        except BaseException:
            raise error  # noqa: B904 - implicit chaining is what is being reproduced
    except Exception as exc:
        return exc


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (cx.AuthorizationRequired("bad key"), FailureKind.CDN_AUTH),
        (cx.RateLimited("slow down"), FailureKind.CDN_TRANSIENT),
        (cx.GeneralError("500"), FailureKind.CDN_TRANSIENT),
        (cx.BadRequest("Invalid image file"), FailureKind.CDN_REJECTED),
        (cx.Error("Socket error or Unexpected error in the text"), FailureKind.CDN_REJECTED),
        (_raised_while_handling(TimeoutError(), cx.Error("x")), FailureKind.CDN_TRANSIENT),
        (_raised_while_handling(ValueError("html"), cx.Error("x")), FailureKind.CDN_TRANSIENT),
    ],
)
def test_cloudinary_errors_are_classified_by_type_not_text(exc, kind):
    assert classify(exc) == kind


# ------------------------------------------------------------------ retry


def test_retries_transient_failures_then_returns():
    sleeps: list[float] = []
    calls = []

    def attempt(n: int) -> str:
        calls.append(n)
        if n < 3:
            raise Transient("HTTP 503", FailureKind.HTTP_STATUS)
        return "ok"

    assert call_with_retries(attempt, Backoff(max_retries=3, base=0.5), sleep=sleeps.append) == "ok"
    assert calls == [1, 2, 3] and len(sleeps) == 2
    assert 0.5 <= sleeps[0] <= 0.5 * 1.25 and 1.0 <= sleeps[1] <= 1.0 * 1.25


def test_a_server_wait_hint_is_honoured_never_cut_short():
    sleeps: list[float] = []
    hints = iter([7.0, 120.0])
    calls: list[int] = []

    def attempt(n: int) -> str:
        calls.append(n)
        if n < 3:
            raise Transient("HTTP 429", FailureKind.HTTP_STATUS, wait=next(hints))
        return "ok"

    with pytest.raises(RetriesExhausted) as info:
        call_with_retries(attempt, Backoff(max_retries=3, maximum=30.0), sleep=sleeps.append)
    # waited the 7 s asked for; a 120 s wait is over the 30 s limit: no early retry
    assert sleeps == [7.0] and calls == [1, 2]
    assert info.value.attempts == 2
    assert str(info.value) == (
        "HTTP 429; the server asked to wait 120s, more than the 30s allowed, so not retried"
    )


def test_retry_after_and_reset_dates_parse():
    assert retry_after_seconds("5") == 5.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412480.0) == 0.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:30:00 GMT", now=1445412480.0) == 120.0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None
    assert seconds_until("Wed, 21 Oct 2015 08:28:00 GMT", now=1445412480.0) == 3600.0


def test_exhausted_retries_name_the_last_failure_and_count():
    def attempt(n: int) -> None:
        raise Transient("timed out", FailureKind.TIMEOUT, status_code=None)

    with pytest.raises(RetriesExhausted) as info:
        call_with_retries(attempt, Backoff(max_retries=2), sleep=lambda _: None)
    assert info.value.attempts == 3 and info.value.last.kind == FailureKind.TIMEOUT
    assert str(info.value) == "timed out after 3 attempts"


def test_other_errors_are_not_retried():
    calls = []

    def attempt(n: int) -> None:
        calls.append(n)
        raise PermissionError("no")

    with pytest.raises(PermissionError):
        call_with_retries(attempt, Backoff(max_retries=5), sleep=lambda _: None)
    assert calls == [1]


@settings(max_examples=200)
@given(
    st.lists(st.booleans(), min_size=1, max_size=8),
    st.integers(min_value=0, max_value=6),
    st.floats(min_value=0.01, max_value=2.0),
)
def test_attempts_and_waits_are_bounded(outcomes, max_retries, base):
    """Whatever the sequence of failures: at most max_retries + 1 attempts, one wait
    between two attempts, every wait within [base, maximum * (1 + jitter)]."""
    backoff = Backoff(max_retries=max_retries, base=base, maximum=5.0)
    sleeps: list[float] = []
    calls: list[int] = []

    def attempt(n: int) -> int:
        calls.append(n)
        if n > len(outcomes) or not outcomes[n - 1]:
            raise Transient("flaky", FailureKind.CONNECTION)
        return n

    try:
        result = call_with_retries(attempt, backoff, sleep=sleeps.append)
        assert result == calls[-1] and outcomes[result - 1]
    except RetriesExhausted as exc:
        assert exc.attempts == max_retries + 1 == len(calls)
    assert len(calls) <= max_retries + 1 and len(sleeps) == len(calls) - 1
    assert all(min(base, 5.0) <= s <= 5.0 * 1.25 for s in sleeps)
