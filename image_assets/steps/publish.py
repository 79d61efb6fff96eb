"""Publish each image's master (and, for CDNs that cannot transform, its renditions).

Backends form a fallback chain (Cloudinary, then S3 or local). Layout: folder
``kits/{manufacturer}``, public_id from the product id (``kits/estes/est0001``),
further images ``kits/estes/est0001/2``; renditions ``{public_id}/{name}-{format}``
(see ``layout.py``).

What each backend holds comes from its ledger, reconciled with one bulk
listing per run (``cdn/ledger.py``), never from one request per image. The
primary backend is always tried first: an image that fell back in an earlier
run returns to the primary as soon as the primary takes it, and only when it
does not is the fallback's copy kept (or made). An upload meets one of three
states: nothing there (plain upload), other bytes there (overwrite and purge
cached copies), or unknown (upload with ``overwrite=false``, so nothing unseen
is replaced; if what is there differs, replace it knowingly). One failing image
never stops the others: its reason and failure kind are recorded and the
product keeps an empty image.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

from image_assets.cdn.base import CdnBackend, CdnError
from image_assets.cdn.ledger import (
    Holdings,
    ledger_manufacturers,
    read_holdings,
    read_ledger,
    write_ledger,
)
from image_assets.failures import FailureKind
from image_assets.imaging.config import RenditionSpec
from image_assets.layout import public_id, rendition_label, rendition_public_id
from image_assets.progress import ProgressReporter, Say
from image_assets.records import (
    CdnAsset,
    ImageRecord,
    ImageRenditions,
    PublishedImage,
    RenditionFile,
)
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
    """One image's publication plus what it sent (for the run's counts and the ledgers)."""

    published: PublishedImage
    rendition_uploads: int = 0
    bytes_uploaded: int = 0
    fallback_reason: str | None = None  # why earlier backends did not take it, if any
    confirmed: tuple[tuple[str, CdnAsset], ...] = ()  # (ledger name, asset) held after this run
    returned_to_primary: bool = False  # held on a fallback, now published on the primary
    bytes_saved: int = 0  # master bytes not stored again: the same bytes were held elsewhere


@dataclass
class PublishStats:
    uploaded: int = 0
    unchanged: int = 0
    failed: int = 0
    fallback: int = 0
    rendition_uploads: int = 0
    bytes_uploaded: int = 0
    returned_to_primary: int = 0
    uploads_saved: int = 0
    bytes_saved: int = 0
    duration: float = 0.0
    failures: Counter = field(default_factory=Counter)
    by_storage: Counter = field(default_factory=Counter)
    listings: dict[str, str] = field(default_factory=dict)  # backend -> listed N | unknown

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
            returned_to_primary=sum(o.returned_to_primary for o in outcomes),
            uploads_saved=sum(o.published.shared_with is not None for o in outcomes),
            bytes_saved=sum(o.bytes_saved for o in outcomes),
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
    specs: Mapping[str, RenditionSpec] | None = None,
    workers: int = 8,
    say: Say = print,
    warn: Say = print,
) -> tuple[list[PublishedImage], PublishStats]:
    """One :class:`PublishedImage` per image record (failed ones included), in input order.

    ``backends`` is the fallback chain (e.g. Cloudinary, then S3): an image goes
    to the first backend that holds or takes it; only when all fail is it
    ``failed``. ``specs`` (the rendition config, by name) gives the sizes asked
    of CDNs that transform on delivery: the configured box, not what one source
    happened to produce. ``store`` is the private image store: masters,
    renditions and the CDN ledgers.
    """
    if not backends:
        raise ValueError("publish_images needs at least one CDN backend")
    made = {(r.product_id, r.position): r for r in renditions}
    holdings = [read_holdings(store, backend, manufacturer) for backend in backends]
    for holding in holdings:
        if holding.listed is None:
            warn(
                f"{holding.storage}: what it holds is unknown ({holding.listing_error}); "
                f"trusting the ledger's {len(holding.recorded)} records, and images it does "
                "not record are uploaded without replacing anything"
            )
    chain = list(zip(backends, holdings, strict=True))
    progress = ProgressReporter(say, "uploads", len(images))
    elsewhere = _held_elsewhere(store, backends[0], manufacturer)

    def one(image: ImageRecord) -> PublishOutcome:
        found = made.get((image.product_id, image.position))
        outcome = _publish_one(
            manufacturer, image, found, store, chain, specs or {}, say, elsewhere
        )
        progress.advance()
        return outcome

    # The same master bytes under several of this run's images (a vendor reusing one
    # photo for several kits) are published once, for the first image by product id
    # and position; the others point at its asset.
    copies = _copies(images, made)
    owners = [i for i in range(len(images)) if i not in copies]
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="publish") as pool:
        done = dict(zip(owners, pool.map(lambda i: one(images[i]), owners), strict=True))
    for copy, owner in copies.items():
        record = images[copy]
        found = made[(record.product_id, record.position)]
        done[copy] = _shared(record, found, done[owner].published) or one(record)
        if done[copy].published.shared_with is not None:
            progress.advance()
    outcomes = [done[i] for i in range(len(images))]
    for backend in backends:  # replaced objects behind a CDN cache: one purge per run
        flush = getattr(backend, "flush_invalidations", None)
        if flush is not None:
            try:
                sent = flush()
                if sent:
                    say(f"{backend.storage}: {sent} replaced objects invalidated on the CDN")
            except CdnError as exc:
                warn(f"{backend.storage}: {exc}; replaced objects may be served stale")
    for backend, holding in chain:
        confirmed = [a for o in outcomes for name, a in o.confirmed if name == backend.ledger_name]
        try:
            write_ledger(store, backend.ledger_name, manufacturer, holding.updated(confirmed))
        except Exception as exc:  # the next run lists again: slower, never wrong
            warn(f"{backend.storage}: the CDN ledger could not be written: {exc}")
    stats = PublishStats.of(outcomes, backends[0].storage, progress.elapsed)
    stats.listings = {
        h.storage: "unknown" if h.listed is None else f"listed {len(h.listed)}" for h in holdings
    }
    for outcome in outcomes:  # reported here, in the caller's log (the run's event log)
        image = outcome.published
        if outcome.fallback_reason and image.asset is not None:
            verb = "published on" if image.status == "uploaded" else "kept on"
            warn(
                f"image {image.position} of {image.product_id} {verb} "
                f"{image.asset.storage} (fallback): {outcome.fallback_reason}"
            )
        elif image.failure in CDN_FAILURES:  # download and decode failures were told already
            warn(f"image {image.position} of {image.product_id} not published: {image.reason}")
    return [o.published for o in outcomes], stats


def _copies(
    images: list[ImageRecord], made: Mapping[tuple[str, int], ImageRenditions]
) -> dict[int, int]:
    """``{index: index of the first image with the same master bytes}``."""
    first: dict[str, int] = {}
    copies: dict[int, int] = {}
    for i in sorted(range(len(images)), key=lambda i: (images[i].product_id, images[i].position)):
        image = images[i]
        found = made.get((image.product_id, image.position))
        if image.status != "ok" or found is None or found.status != "ok" or found.master is None:
            continue
        if found.master.sha256 in first:
            copies[i] = first[found.master.sha256]
        else:
            first[found.master.sha256] = i
    return copies


def _shared(
    image: ImageRecord, made: ImageRenditions, owner: PublishedImage
) -> PublishOutcome | None:
    """``image`` published as ``owner``'s asset (None when the owner failed: it then
    goes up on its own)."""
    if owner.status == "failed" or owner.asset is None or made.master is None:
        return None
    shared = PublishedImage(
        product_id=image.product_id,
        position=image.position,
        status="unchanged",
        asset=owner.asset,
        renditions=dict(owner.renditions),
        lqip=made.lqip,
        blurhash=made.blurhash,
        shared_with=owner.asset.public_id,
    )
    return PublishOutcome(shared, bytes_saved=made.master.bytes)


def _held_elsewhere(
    store: BlobStore, primary: CdnBackend, manufacturer: str
) -> dict[str, CdnAsset]:
    """``{sha256: asset}`` of masters the primary holds under other manufacturers'
    folders, by their ledgers (the CDN's own upload answers). Only for CDNs that
    transform on delivery: their renditions are URLs of the master's public id, so
    pointing at another folder's master sends nothing; where renditions are files
    beside the master, each folder keeps its own."""
    if not primary.transforms_on_delivery:
        return {}
    found: dict[str, CdnAsset] = {}
    for other in ledger_manufacturers(store, primary.ledger_name):
        if other == manufacturer:
            continue
        for asset in read_ledger(store, primary.ledger_name, other).values():
            if asset.sha256:  # listed-only entries carry none: nothing to match on
                found.setdefault(asset.sha256, asset)
    return found


@dataclass
class _Sent:
    """What publishing one image's files sent and confirmed on one backend."""

    files: int = 0
    bytes: int = 0
    confirmed: list[tuple[str, CdnAsset]] = field(default_factory=list)


def _held(
    backend: CdnBackend, holding: Holdings, item_id: str, file: RenditionFile
) -> CdnAsset | None:
    held = holding.held(item_id, file.sha256)
    if held is None and holding.needs_lookup(item_id):
        found = backend.lookup(item_id, file.format)  # one object no ledger records yet
        held = found if found is not None and found.sha256 == file.sha256 else None
    return held


def _put(
    backend: CdnBackend,
    holding: Holdings,
    item_id: str,
    file: RenditionFile,
    content: Callable[[], bytes],
) -> CdnAsset:
    """Upload one file as its target's state allows (see the module docstring)."""
    data = content()

    def send(overwrite: bool, invalidate: bool) -> CdnAsset:
        return backend.upload(
            data,
            item_id,
            format=file.format,
            sha256=file.sha256,
            width=file.width,
            height=file.height,
            overwrite=overwrite,
            invalidate=invalidate,
        )

    state = holding.state(item_id)
    if state != "unknown":
        return send(overwrite=True, invalidate=state == "other")
    there = send(overwrite=False, invalidate=False)
    if there.sha256 == file.sha256 or (there.etag and there.etag == _md5(data)):
        return there.model_copy(update={"sha256": file.sha256})
    return send(overwrite=True, invalidate=True)


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _renditions(
    backend: CdnBackend,
    holding: Holdings,
    store: BlobStore,
    image_id: str,
    made: ImageRenditions,
    specs: Mapping[str, RenditionSpec],
    sent: _Sent,
    version: int | None = None,
) -> dict[str, str]:
    """Rendition URLs (label -> URL). CDNs that transform on delivery get transformation
    URLs for the configured box; the others get the renditions published beside the master."""
    urls: dict[str, str] = {}
    if backend.transforms_on_delivery:
        for rendition in made.renditions:
            spec = specs.get(rendition.name)
            boxed = rendition.crop in ("fill", "pad")
            width = spec.width if spec else rendition.width
            height = spec.height if spec else (rendition.height if boxed else None)
            urls[rendition_label(rendition.name, rendition.format)] = backend.delivery_url(
                image_id,
                width=width,
                height=height,
                crop=rendition.crop,
                format=rendition.format,
                quality="auto",
                version=version,
            )
        return urls
    for rendition in made.renditions:
        rid = rendition_public_id(image_id, rendition.name, rendition.format)
        held = _held(backend, holding, rid, rendition)
        if held is None:
            held = _put(backend, holding, rid, rendition, partial(store.get, rendition.key))
            sent.files += 1
            sent.bytes += rendition.bytes
        sent.confirmed.append((backend.ledger_name, held))
        urls[rendition_label(rendition.name, rendition.format)] = held.secure_url
    return urls


def _publish_one(
    manufacturer: str,
    image: ImageRecord,
    made: ImageRenditions | None,
    store: BlobStore,
    chain: Sequence[tuple[CdnBackend, Holdings]],
    specs: Mapping[str, RenditionSpec],
    say: Say,
    elsewhere: Mapping[str, CdnAsset] | None = None,
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
    for index, (backend, holding) in enumerate(chain):
        sent = _Sent()
        try:
            held = _held(backend, holding, image_id, master)
            other = (elsewhere or {}).get(master.sha256) if index == 0 else None
            if held is None and other is not None and other.public_id != image_id:
                shared = PublishedImage(
                    **base,
                    status="unchanged",
                    asset=other,
                    renditions=_renditions(
                        backend, holding, store, other.public_id, made, specs, sent, other.version
                    ),
                    shared_with=other.public_id,
                    **extras,
                )
                return PublishOutcome(shared, bytes_saved=master.bytes)
            if held is None:
                say(
                    f"Uploading image {image.position} for product {image.product_id} "
                    f"to {backend.storage}"
                )
                asset = _put(backend, holding, image_id, master, lambda: store.get(master.key))
                sent.files, sent.bytes = 0, master.bytes
            else:
                asset = held
            sent.confirmed.append((backend.ledger_name, asset))
            urls = _renditions(
                backend, holding, store, image_id, made, specs, sent, version=asset.version
            )
        except Exception as exc:  # the next backend gets its chance; the reason is kept
            errors.append(f"{backend.storage}: {exc}")
            kinds.append(exc.kind if isinstance(exc, CdnError) else FailureKind.INTERNAL)
            continue
        published = PublishedImage(
            **base,
            status="unchanged" if held is not None else "uploaded",
            asset=asset,
            renditions=urls,
            **extras,
        )
        returned = (
            index == 0
            and held is None
            and any(h.held(image_id, master.sha256) for _, h in chain[1:])
        )
        return PublishOutcome(
            published,
            rendition_uploads=sent.files,
            bytes_uploaded=sent.bytes,
            fallback_reason="; ".join(errors) if index > 0 else None,
            confirmed=tuple(sent.confirmed),
            returned_to_primary=returned,
        )
    failed = PublishedImage(
        **base,
        status="failed",
        reason="upload failed: " + "; ".join(errors),
        failure=kinds[-1] if kinds else FailureKind.INTERNAL,
    )
    return PublishOutcome(failed)
