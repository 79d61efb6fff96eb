"""Tag every rendered image: hashes and colours from a small rendition, labels from the
tagger when one is on.

The small rendition is the smallest ``limit``/``fit`` JPEG at least 200 px wide
(the whole picture, not a crop: a fill thumbnail would cut pictures differently
and hide that two are the same), else the master. A tagger that fails on
``MAX_TAGGER_FAILURES`` images in a row is not asked again in this run: the rest
are marked missing with its last reason, so an outage costs a few calls, not one
per image.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from PIL import Image

from image_assets.imaging.fingerprint import colour_difference, fingerprint
from image_assets.imaging.labels import Tagger, TaggerUnavailable
from image_assets.imaging.near_duplicates import hamming, near_duplicate_groups
from image_assets.records import ImageRenditions, RenditionFile, TagRow
from image_assets.storage import BlobNotFound, BlobStore

MIN_WIDTH = 200
MAX_TAGGER_FAILURES = 3
# The code_version of the image_tags asset: bump when the same rendition would get a
# different row (hash or colour algorithms, the choice of rendition), so that every
# partition turns stale and is tagged again.
TAGS_REVISION = "1"


@dataclass
class TagStats:
    images: int = 0
    tagged: int = 0
    failed: int = 0
    reused: int = 0  # rows taken from the previous run (same source bytes)
    labels: Counter = field(default_factory=Counter)  # labels_status -> images


def tag_source(made: ImageRenditions) -> RenditionFile | None:
    """The rendition the tags are computed from (see the module docstring)."""
    whole = [
        r
        for r in made.renditions
        if r.crop in ("limit", "fit") and r.format == "jpeg" and r.width >= MIN_WIDTH
    ]
    if whole:
        return min(whole, key=lambda r: r.width * r.height)
    return made.master


def tag_images(
    manufacturer: str | None,
    made: Iterable[ImageRenditions],
    images: BlobStore,
    tagger: Tagger | None,
    say: Callable[[str], None] = lambda line: None,
    previous: Mapping[str, TagRow] | None = None,
) -> tuple[list[TagRow], TagStats]:
    """One :class:`TagRow` per image, in the order given. ``manufacturer`` None: the
    images are uploads, keyed by upload id (their ``product_id``), as in the audit.

    ``previous`` (rows of the last run, by key): a row whose source rendition has the
    same sha256 is reused as it is, without reading or decoding the image, when its
    labels are what this run would ask for (none with no tagger; this tagger's); with
    other labels wanted, only the hashes and colours are reused. A re-run that changes
    nothing costs no decode and no tagger call."""
    rows: list[TagRow] = []
    stats = TagStats()
    failures_in_a_row = 0
    given_up: str | None = None
    for item in made:
        stats.images += 1
        base: dict = (
            {
                "key": f"{manufacturer}/{item.product_id}/{item.position}",
                "manufacturer": manufacturer,
                "product_id": item.product_id,
                "position": item.position,
            }
            if manufacturer is not None
            else {"key": item.product_id, "source": "upload"}
        )
        source = tag_source(item) if item.status == "ok" else None
        if source is None:
            stats.failed += 1
            rows.append(TagRow(**base, status="failed", reason=item.reason or "no rendition"))
            continue
        before = (previous or {}).get(base["key"])
        if before is not None and (before.status != "ok" or before.source_sha256 != source.sha256):
            before = None
        wanted_labels = tagger.name if tagger is not None and given_up is None else None
        if before is not None and (
            (tagger is None and before.labels_status == "off")
            or (
                tagger is not None
                and before.labels_status == "ok"
                and before.labels_by == tagger.name
            )
        ):
            stats.reused += 1
            stats.tagged += 1
            stats.labels[before.labels_status] += 1
            rows.append(before.model_copy(update=base))
            continue
        data = b""
        try:
            if before is None or wanted_labels:
                data = images.get(source.key)
            looks = _looks(before) if before is not None else _looks_of(data)
        except (BlobNotFound, OSError, ValueError) as exc:
            stats.failed += 1
            rows.append(TagRow(**base, status="failed", reason=f"{type(exc).__name__}: {exc}"))
            continue
        row = TagRow(**base, status="ok", **looks, source_sha256=source.sha256)
        if tagger is not None and given_up is None:
            try:
                row.labels = tagger.labels(data)
                row.labels_status = "ok"
                row.labels_by = tagger.name
                failures_in_a_row = 0
            except TaggerUnavailable as exc:
                row.labels_status, row.labels_reason = "missing", str(exc)
                failures_in_a_row += 1
                if failures_in_a_row >= MAX_TAGGER_FAILURES:
                    given_up = (
                        f"{tagger.name} not asked again after {failures_in_a_row} failures: {exc}"
                    )
                    say(given_up)
        elif given_up is not None:
            row.labels_status, row.labels_reason = "missing", given_up
        stats.tagged += 1
        stats.labels[row.labels_status] += 1
        rows.append(row)
    return rows, stats


def _looks_of(data: bytes) -> dict:
    """The hashes and colours of an encoded image (decodes it)."""
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        facts = fingerprint(img)
    return {
        "phash": facts.phash,
        "dhash": facts.dhash,
        "average_colour": facts.average,
        "dominant_colours": list(facts.dominant),
    }


def _looks(row: TagRow) -> dict:
    """The hashes and colours of a previous row (what :func:`_looks_of` gave then)."""
    return {
        "phash": row.phash,
        "dhash": row.dhash,
        "average_colour": row.average_colour,
        "dominant_colours": row.dominant_colours,
    }


@dataclass(frozen=True)
class SharedPicture:
    products: tuple[str, ...]  # product ids, sorted
    images: tuple[str, ...]  # image keys ({manufacturer}/{product_id}/{position})


SAME_COLOUR = 10.0  # ΔE of the average colours under which two pictures look alike


def shared_pictures(rows: list[TagRow], distance: int) -> list[SharedPicture]:
    """Near-identical pictures and the products showing them, largest first; a picture
    repeated within one product counts once.

    Near-identical: pHash and dHash both within ``distance`` bits, and average colours
    within ``SAME_COLOUR``. The hashes see luminance structure only, so the same
    composition in two colourways (the same kit in red and in blue, shot the same
    way) is two pictures, not one.
    """
    hashed = [r for r in rows if r.status == "ok" and r.phash and r.dhash]
    # Rows with the same hashes and colour are one picture whatever the distance: they
    # are grouped before any comparison, so a placeholder shown by 10,000 products is
    # one entry to compare, not 50 million pairs.
    copies: dict[tuple[str, str, str], list[TagRow]] = {}
    for row in hashed:
        copies.setdefault((row.phash or "", row.dhash or "", row.average_colour or ""), []).append(
            row
        )
    looks = list(copies)

    def alike(i: int, j: int) -> bool:
        (_, dhash_a, colour_a), (_, dhash_b, colour_b) = looks[i], looks[j]
        return hamming(dhash_a, dhash_b) <= distance and (
            colour_difference(colour_a or "#000000", colour_b or "#000000") <= SAME_COLOUR
        )

    groups = near_duplicate_groups([phash for phash, _, _ in looks], distance, alike)
    grouped = {i for group in groups for i in group}
    groups += [[i] for i in range(len(looks)) if i not in grouped and len(copies[looks[i]]) > 1]
    found = []
    for group in groups:
        members = [row for i in group for row in copies[looks[i]]]
        found.append(
            SharedPicture(
                products=tuple(sorted({m.product_id or "" for m in members})),
                images=tuple(sorted(m.key for m in members)),
            )
        )
    return sorted(found, key=lambda s: (-len(s.products), s.images))


def shared_picture_verdict(
    rows: list[TagRow], max_products: int, distance: int
) -> tuple[bool, str, list[SharedPicture]]:
    """(passed, one-line summary, the pictures over the limit)."""
    over = [s for s in shared_pictures(rows, distance) if len(s.products) > max_products]
    if not over:
        return True, f"no picture is shown by more than {max_products} product(s)", []
    first = over[0]
    summary = (
        f"{len(over)} picture(s) shown by more than {max_products} product(s); the largest by "
        f"{len(first.products)}: {', '.join(first.products[:8])}"
    )
    return False, summary, over
