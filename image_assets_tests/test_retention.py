"""The retention rule, over any sequence of catalog changes, scraper breakages,
fallbacks, returns and deduplication: nothing a current CSV references is ever
deleted, and everything unreferenced for longer than the grace is deleted, once."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from image_assets.cdn.retention import referenced_assets, review, run_limit

GRACE = timedelta(days=3)
IDS = [f"kits/{m}/p{i}" for m in ("a", "b") for i in range(6)]
BACKENDS = ("cloudinary", "s3")

day_events = st.lists(
    st.fixed_dictionaries(
        {
            # which products each manufacturer's CSV lists today (ids of its own folder,
            # and, deduplicated, ids of the other's folder it points at)
            "catalog": st.dictionaries(
                st.sampled_from(["a", "b"]), st.sets(st.sampled_from(IDS)), min_size=2
            ),
            "fallback": st.sets(st.sampled_from(IDS), max_size=3),  # published to s3 today
            "broken": st.sets(st.sampled_from(["a", "b"]), max_size=1),  # scraper broke
            "share": st.sampled_from([0.1, 0.5, 1.0]),  # the run's deletion cap
        }
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=300, deadline=None)
@given(days=day_events)
def test_nothing_referenced_is_deleted_and_everything_unreferenced_goes_once(days):
    held = {backend: set() for backend in BACKENDS}  # (backend) -> public ids it holds
    retired: dict[tuple[str, str], dict[str, date]] = {}  # (backend, manufacturer) -> dates
    csv: dict[str, list[dict]] = {"a": [], "b": []}  # the current CSVs
    unreferenced_since: dict[tuple[str, str], date] = {}
    deletions: Counter = Counter()
    today = date(2026, 1, 1)

    def housekeeping(manufacturer: str, share: float) -> None:
        live = referenced_assets([csv["a"], csv["b"]])
        for backend in BACKENDS:
            mine = {p for p in held[backend] if p.split("/")[1] == manufacturer}
            key = (backend, manufacturer)
            result = review(
                mine, {p for s, p in live if s == backend}, retired.get(key, {}), today, GRACE
            )
            limit = run_limit(len(mine), share)
            for public_id in result.due[:limit]:
                assert (backend, public_id) not in live, "deleted what a current CSV names"
                held[backend].discard(public_id)
                deletions[(backend, public_id, unreferenced_since[(backend, public_id)])] += 1
                del result.retired[public_id]
            retired[key] = result.retired

    def publish(catalog: dict[str, set[str]], fallback: set[str]) -> None:
        for manufacturer, ids in catalog.items():
            rows = []
            for public_id in sorted(ids):
                backend = "s3" if public_id in fallback else "cloudinary"
                held[backend].add(public_id)  # uploaded, or already there
                rows.append({"storage": backend, "public_id": public_id})
            csv[manufacturer] = rows

    for event in days:
        true_catalog = event["catalog"]
        for manufacturer in event["broken"]:  # a broken scraper writes a shrunken CSV...
            true_catalog = {**true_catalog, manufacturer: set()}
        publish(true_catalog, event["fallback"])
        live = referenced_assets([csv["a"], csv["b"]])
        for backend in BACKENDS:
            for public_id in held[backend]:
                if (backend, public_id) in live:
                    unreferenced_since.pop((backend, public_id), None)
                else:
                    unreferenced_since.setdefault((backend, public_id), today)
        for manufacturer in ("a", "b"):
            if manufacturer not in event["broken"]:  # ...and housekeeping skips that vendor
                housekeeping(manufacturer, event["share"])
        today += timedelta(days=1)

    # afterwards, nothing changes: housekeeping runs daily until nothing is left to do
    for _ in range(GRACE.days + 40):
        for manufacturer in ("a", "b"):
            housekeeping(manufacturer, 0.1)
        today += timedelta(days=1)
    live = referenced_assets([csv["a"], csv["b"]])
    for backend in BACKENDS:
        assert {(backend, p) for p in held[backend]} == {r for r in live if r[0] == backend}
    assert all(count == 1 for count in deletions.values()), deletions


def test_an_asset_back_before_the_grace_ends_is_live_again():
    start = date(2026, 3, 1)
    first = review({"x", "y"}, {"y"}, {}, start, GRACE)
    assert first.retired == {"x": start} and first.due == []
    back = review({"x", "y"}, {"x", "y"}, first.retired, start + timedelta(days=2), GRACE)
    assert back.retired == {} and back.returned == ["x"]
    gone = review({"x", "y"}, {"y"}, back.retired, start + timedelta(days=3), GRACE)
    assert gone.due == []  # its grace starts again from the day it left again


def test_the_run_cap_is_a_share_but_never_zero_for_a_vendor_with_assets():
    assert run_limit(0) == 0
    assert run_limit(5) == 1
    assert run_limit(24) == 2
    assert run_limit(24, 0.5) == 12
    assert run_limit(24, 1.0) == 24


def test_file_backends_keep_their_rendition_files_alive():
    cell = [
        {"storage": "s3", "public_id": "kits/a/1", "renditions": {"thumb_300-webp": "u"}},
        {"storage": "cloudinary", "public_id": "kits/a/2", "renditions": {"thumb_300-webp": "u"}},
    ]
    assert referenced_assets([cell]) == {
        ("s3", "kits/a/1"),
        ("s3", "kits/a/1/thumb_300-webp"),
        ("cloudinary", "kits/a/2"),
    }


def test_rendition_files_of_an_old_config_are_retired_once_the_csv_names_the_new_ones():
    """A renditions config change on a file backend: the CSV now names thumb_400, so
    the thumb_300 files beside each master are unreferenced and go after the grace,
    while the master and the new files stay."""
    start = date(2026, 5, 1)
    held = {"kits/a/1", "kits/a/1/thumb_300-webp", "kits/a/1/thumb_400-webp"}
    new_csv = [{"storage": "s3", "public_id": "kits/a/1", "renditions": {"thumb_400-webp": "u"}}]
    live = {p for s, p in referenced_assets([new_csv]) if s == "s3"}
    first = review(held, live, {}, start, GRACE)
    assert first.retired == {"kits/a/1/thumb_300-webp": start} and first.due == []
    later = review(held, live, first.retired, start + GRACE, GRACE)
    assert later.due == ["kits/a/1/thumb_300-webp"]
