"""Publish each image's master (and, for CDNs that cannot transform, its renditions).

Backends form a fallback chain (Cloudinary, then S3 or local). Layout: folder
``kits/{manufacturer}``, public_id from the product id (``kits/estes/est0001``),
further images ``kits/estes/est0001/2``; renditions ``{public_id}/{name}-{format}``
(see ``layout.py``). A publication is skipped when the backend already holds
bytes with the same sha256. One failing image never stops the others: its
reason and failure kind are recorded and the product keeps an empty image.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from image_assets.cdn.base import CdnBackend, CdnError
from image_assets.failures import FailureKind
from image_assets.layout import public_id, rendition_label, rendition_public_id
from image_assets.progress import ProgressReporter, Say
from image_assets.records import ImageRecord, ImageRenditions, PublishedImage
from image_assets.steps.originals import failure_counts
from image_assets.storage import BlobStore

CDN_FAILURES = frozenset(
    {
        FailureKind.CDN_AUTH,
        FailureKind.CDN_TRANSIENT,
        FailureKind.CDN_REJECTED,
        FailureKind.INTERNAL,
    }
)


@dataclass(frozen=True)
class PublishOutcome:
    """One image's publication plus what it sent (for the run's counts)."""

    published: PublishedImage
    rendition_uploads: int = 0
    bytes_uploaded: int = 0
    fallback_reason: str | None = None  # why earlier backends did not take it, if any


@dataclass
class PublishStats:
    uploaded: int = 0
    unchanged: int = 0
    failed: int = 0
    fallback: int = 0
    rendition_uploads: int = 0
    bytes_uploaded: int = 0
    duration: float = 0.0
    failures: Counter = field(default_factory=Counter)
    by_storage: Counter = field(default_factory=Counter)

    @classmethod
    def of(cls, outcomes: list[PublishOutcome], primary: str, duration: float) -> PublishStats:
        """Counts over the returned outcomes (never from counters threads share)."""
        published = [o.published for o in outcomes]
        held = [p.asset.storage for p in published if p.status != "failed" and p.asset]
        return cls(
            uploaded=sum(p.status == "uploaded" for p in published),
            unchanged=sum(p.status == "unchanged" for p in published),
            failed=sum(p.status == "failed" for p in published),
            # published on a fallback backend in this run (not merely held there)
            fallback=sum(
                p.status == "uploaded" and p.asset is not None and p.asset.storage != primary
                for p in published
            ),
            rendition_uploads=sum(o.rendition_uploads for o in outcomes),
            bytes_uploaded=sum(o.bytes_uploaded for o in outcomes),
            duration=duration,
            failures=failure_counts(published),
            by_storage=Counter(held),
        )


def publish_images(
    manufacturer: str,
    images: list[ImageRecord],
    renditions: list[ImageRenditions],
    store: BlobStore,
    backends: Sequence[CdnBackend],
    *,
    workers: int = 8,
    say: Say = print,
    warn: Say = print,
) -> tuple[list[PublishedImage], PublishStats]:
    """One :class:`PublishedImage` per image record (failed ones included), in input order.

    ``backends`` is the fallback chain (e.g. Cloudinary, then S3): an image is
    ``unchanged`` when any backend already holds its bytes, else it goes to the
    first backend that accepts it; only when all fail is it ``failed``.
    """
    if not backends:
        raise ValueError("publish_images needs at least one CDN backend")
    made = {(r.product_id, r.position): r for r in renditions}
    progress = ProgressReporter(say, "uploads", len(images))

    def one(image: ImageRecord) -> PublishOutcome:
        found = made.get((image.product_id, image.position))
        outcome = _publish_one(manufacturer, image, found, store, backends, say)
        progress.advance()
        return outcome

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="publish") as pool:
        outcomes = list(pool.map(one, images))
    stats = PublishStats.of(outcomes, backends[0].storage, progress.elapsed)
    for outcome in outcomes:  # reported here, in the caller's log (the run's event log)
        image = outcome.published
        if outcome.fallback_reason and image.asset is not None:
            warn(
                f"image {image.position} of {image.product_id} published on "
                f"{image.asset.storage} (fallback): {outcome.fallback_reason}"
            )
        elif image.failure in CDN_FAILURES:  # download and decode failures were told already
            warn(f"image {image.position} of {image.product_id} not published: {image.reason}")
    return [o.published for o in outcomes], stats


def _renditions(
    backend: CdnBackend, store: BlobStore, image_id: str, made: ImageRenditions
) -> tuple[dict[str, str], int, int]:
    """Rendition URLs (label -> URL), and the files and bytes sent for them.

    CDNs that transform on delivery get transformation URLs; the others get the
    renditions published beside the master.
    """
    urls: dict[str, str] = {}
    if backend.transforms_on_delivery:
        for rendition in made.renditions:
            boxed = rendition.crop in ("fill", "pad")
            urls[rendition_label(rendition.name, rendition.format)] = backend.delivery_url(
                image_id,
                width=rendition.width,
                height=rendition.height if boxed else None,
                crop=rendition.crop,
                format=rendition.format,
                quality="auto",
            )
        return urls, 0, 0
    files = sent = 0
    for rendition in made.renditions:
        rid = rendition_public_id(image_id, rendition.name, rendition.format)
        held = backend.lookup(rid, rendition.format)
        if held is None or held.sha256 != rendition.sha256:
            held = backend.upload(
                store.get(rendition.key),
                rid,
                format=rendition.format,
                sha256=rendition.sha256,
                width=rendition.width,
                height=rendition.height,
            )
            files += 1
            sent += rendition.bytes
        urls[rendition_label(rendition.name, rendition.format)] = held.secure_url
    return urls, files, sent


def _publish_one(
    manufacturer: str,
    image: ImageRecord,
    made: ImageRenditions | None,
    store: BlobStore,
    backends: Sequence[CdnBackend],
    say: Say,
) -> PublishOutcome:
    base = {"product_id": image.product_id, "position": image.position}
    if image.status != "ok":
        failed = PublishedImage(
            **base,
            status="failed",
            reason=image.reason or "download failed",
            failure=image.failure or FailureKind.INTERNAL,
        )
        return PublishOutcome(failed)
    if made is None or made.status != "ok" or made.master is None:
        failed = PublishedImage(
            **base,
            status="failed",
            reason=(made.reason if made is not None else None) or "no master image was made",
            failure=(made.failure if made is not None else None) or FailureKind.NOT_RENDERED,
        )
        return PublishOutcome(failed)
    master = made.master
    image_id = public_id(manufacturer, image.product_id, image.position)
    extras = {"lqip": made.lqip, "blurhash": made.blurhash}
    errors: list[str] = []
    kinds: list[FailureKind] = []
    for backend in backends:  # already there, with these bytes?
        try:
            held = backend.lookup(image_id, master.format)
            if held is not None and held.sha256 == master.sha256:
                urls, files, sent = _renditions(backend, store, image_id, made)
                unchanged = PublishedImage(
                    **base, status="unchanged", asset=held, renditions=urls, **extras
                )
                return PublishOutcome(unchanged, files, sent)
        except Exception as exc:
            errors.append(f"{backend.storage} lookup: {exc}")
    for backend in backends:
        try:
            say(
                f"Uploading image {image.position} for product {image.product_id} to {backend.storage}"
            )
            asset = backend.upload(
                store.get(master.key),
                image_id,
                format=master.format,
                sha256=master.sha256,
                width=master.width,
                height=master.height,
            )
            urls, files, sent = _renditions(backend, store, image_id, made)
            uploaded = PublishedImage(
                **base, status="uploaded", asset=asset, renditions=urls, **extras
            )
            fallback = "; ".join(errors) if backend is not backends[0] else None
            return PublishOutcome(uploaded, files, master.bytes + sent, fallback)
        except Exception as exc:  # the next backend gets its chance; the reason is kept
            errors.append(f"{backend.storage}: {exc}")
            kinds.append(exc.kind if isinstance(exc, CdnError) else FailureKind.INTERNAL)
    failed = PublishedImage(
        **base,
        status="failed",
        reason="upload failed: " + "; ".join(errors),
        failure=kinds[-1] if kinds else FailureKind.INTERNAL,
    )
    return PublishOutcome(failed)
