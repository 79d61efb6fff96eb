"""The upload lifecycle: receive, process, activate, expire — over an incoming area and
blob stores, with no Dagster in sight.

The invariant: every entry that appears in the incoming location ends in exactly
one recorded state, visible as its row in the audit table —

- ``waiting``: claimed (moved out of incoming under its upload id) and not yet
  processed; or still in incoming, not yet settled or under a temporary name;
- ``processed`` (then ``activated`` or ``expired``): accepted, renditions made;
- ``rejected``: refused with a reason (not an image, a bomb, a symlink...).

An entry is never removed before its outcome is durably written: a claimed file
is deleted only after its original (or its rejected copy) and its manifest and
audit row are stored. Nothing outside the incoming area and the stores is read,
written or deleted; symlinks are refused, never followed.

``receive`` runs in the sensor (cheap: a stat and a rename); ``process`` runs in
the upload run, for many uploads at once.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel

from image_assets.catalog.audit import upload_audit_row
from image_assets.failures import FailureKind
from image_assets.imaging.config import RenditionConfig
from image_assets.imaging.decode import ImageRefused, check_complete, oriented_size, probe
from image_assets.layout import (
    UPLOAD_AUDIT_PREFIX,
    activated_file_key,
    activated_original_key,
    activated_public_id,
    rejected_key,
    rejected_reason_key,
    renditions_index_key,
    upload_audit_key,
    upload_id_from_audit_key,
    upload_manifest_key,
    upload_original_key,
    upload_renditions_prefix,
    upload_tags_key,
    upload_unique_name,
)
from image_assets.progress import Say
from image_assets.records import AuditRow, ImageRecord, ImageRenditions, UploadRecord
from image_assets.steps.renditions import render_images
from image_assets.storage import BlobNotFound, BlobStore
from image_assets.storage.leases import Heartbeat, Lease, Leases, new_owner
from image_assets.uploads.intake import (
    Arrival,
    IncomingArea,
    NotARegularFile,
    display_name,
    is_temporary,
)

UNKNOWN_NAME = "(name unknown: claimed just before an interruption)"
UPLOAD_ID = re.compile(r"u[0-9a-f]{24}")  # intake.upload_id_for


class UploadError(ValueError):
    """A lifecycle step cannot be done for this upload; the message is one line for a
    person, ``reason`` one word for a program (``unknown``, ``invalid``, ``busy``...)."""

    def __init__(self, message: str, reason: str = "refused"):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class UploadStores:
    """The incoming area (with its claimed files), the rejected and public areas, and
    the platform's raw store (manifests, audit rows) and private image store."""

    area: IncomingArea
    rejected: BlobStore
    public: BlobStore
    raw: BlobStore
    private: BlobStore


class UploadManifest(BaseModel):
    """What the lifecycle knows of one upload: its record and the private files it owns."""

    record: UploadRecord
    renditions: ImageRenditions | None = None
    attempts: int = 0
    updated_at: float = 0.0

    def private_keys(self) -> list[str]:
        keys = [self.record.original_key] if self.record.original_key else []
        if self.renditions is not None:
            keys += [f.key for f in self.renditions.files()]
        return keys

    def index_keys(self) -> list[str]:
        """The renditions' index files beside them in the private store (never public)."""
        if self.renditions is None:
            return []
        prefixes = {f.key.rpartition("/")[0] for f in self.renditions.files() if "/" in f.key}
        return sorted(renditions_index_key(prefix) for prefix in prefixes)


# ------------------------------------------------------------------ records


def load_manifest(raw: BlobStore, upload_id: str) -> UploadManifest | None:
    try:
        return UploadManifest.model_validate_json(raw.get(upload_manifest_key(upload_id)))
    except BlobNotFound:
        return None


def load_audit_row(raw: BlobStore, upload_id: str) -> AuditRow | None:
    try:
        return AuditRow.model_validate_json(raw.get(upload_audit_key(upload_id)))
    except BlobNotFound:
        return None


def _save(raw: BlobStore, manifest: UploadManifest, row: AuditRow) -> None:
    """Manifest first, then the audit row: the row is what people see, the manifest what
    the lifecycle trusts."""
    upload_id = manifest.record.upload_id
    manifest = manifest.model_copy(update={"updated_at": time.time()})
    raw.put(upload_manifest_key(upload_id), manifest.model_dump_json().encode(), "application/json")
    raw.put(upload_audit_key(upload_id), row.model_dump_json().encode(), "application/json")


def _waiting_row(record: UploadRecord, reason: str | None = None) -> AuditRow:
    return AuditRow(
        key=record.upload_id,
        source="upload",
        original_name=record.original_name,
        bytes=record.bytes,
        status="waiting",
        reason=reason,
        received_at=record.received_at,
    )


# ------------------------------------------------------------------ receive (sensor)

ReceiveStatus = Literal["claimed", "rejected", "waits", "changed"]


@dataclass(frozen=True)
class Received:
    upload_id: str
    status: ReceiveStatus
    reason: str | None = None


def receive(
    stores: UploadStores, arrival: Arrival, settle_seconds: float, now: float | None = None
) -> Received:
    """Decide what to do with one entry of incoming, and do it durably.

    - temporary or hidden names, and files modified within ``settle_seconds``, wait;
    - symlinks and other non-files are refused with a reason (the entry is removed,
      whatever it points to is not touched);
    - a settled regular file is claimed, then its manifest and ``waiting`` row are written.
    """
    now = time.time() if now is None else now
    upload_id = arrival.upload_id
    if is_temporary(arrival.name):
        return Received(upload_id, "waits", "temporary or hidden name")
    if arrival.kind != "file":
        what = "a symbolic link" if arrival.kind == "symlink" else "not a regular file"
        reason = f"refused: {what} (never followed)"
        record = _record(arrival, upload_id, now)
        rejected = record.model_copy(
            update={"status": "rejected", "reason": reason, "failure": FailureKind.NOT_A_FILE}
        )
        _reject(stores, rejected, data=None)
        stores.area.discard(arrival)
        return Received(upload_id, "rejected", reason)
    if arrival.modified > now - settle_seconds:
        return Received(upload_id, "waits", "still being written (modified moments ago)")
    if not stores.area.claim(arrival):
        return Received(upload_id, "changed", "changed or gone since it was seen")
    record = _record(arrival, upload_id, now)
    _save(stores.raw, UploadManifest(record=record), _waiting_row(record))
    return Received(upload_id, "claimed")


def _record(arrival: Arrival, upload_id: str, now: float) -> UploadRecord:
    return UploadRecord(
        upload_id=upload_id,
        object_key=display_name(arrival.name),
        original_name=display_name(arrival.name.rsplit("/", 1)[-1]),
        status="waiting",
        bytes=arrival.size,
        received_at=arrival.modified,
        processed_at=None,
    )


def reconcile(stores: UploadStores, now: float | None = None) -> dict[str, float]:
    """The claimed uploads still waiting for processing, with the time their manifest last
    changed (a manifest is written for a claimed file that has none: the process stopped
    between the claim and the manifest)."""
    now = time.time() if now is None else now
    waiting: dict[str, float] = {}
    for upload_id in stores.area.claimed_ids():
        manifest = load_manifest(stores.raw, upload_id)
        if manifest is None:
            stat = stores.area.claimed_stat(upload_id)
            record = UploadRecord(
                upload_id=upload_id,
                object_key=UNKNOWN_NAME,
                original_name=UNKNOWN_NAME,
                status="waiting",
                bytes=stat[0] if stat else None,
                received_at=now,
            )
            manifest = UploadManifest(record=record)
            _save(stores.raw, manifest, _waiting_row(record))
        if _unfinished(manifest):
            waiting[upload_id] = manifest.updated_at or now
        else:  # finished by a run stopped before it removed the claimed file
            stores.area.remove_claimed(upload_id)
    return waiting


def _unfinished(manifest: UploadManifest) -> bool:
    """Claimed and not yet processed: still waiting, or accepted with renditions pending
    (a run stopped between the two steps)."""
    status = manifest.record.status
    return status == "waiting" or (status == "accepted" and manifest.renditions is None)


def upload_lease_name(upload_id: str) -> str:
    return f"upload/{upload_id}"


def busy_uploads(stores: UploadStores, upload_ids: Iterable[str], ttl_seconds: float) -> set[str]:
    """The uploads of ``upload_ids`` a run holds a live lease on (being processed now)."""
    leases = Leases(stores.raw, ttl_seconds)
    return {i for i in upload_ids if leases.holder(upload_lease_name(i)) is not None}


# ------------------------------------------------------------------ process (run)


@dataclass(frozen=True)
class ProcessOptions:
    config: RenditionConfig
    incomplete_grace_seconds: float = 60.0  # a truncated file this fresh may still be growing
    workers: int | None = None
    # how long an upload stays a run's after its last renewal (a killed run's uploads
    # are taken over after this); renewed every third of it while the run works
    lease_seconds: float = 120.0
    owner: str = ""  # who takes the leases (a run id); a unique name when empty


def examine(
    stores: UploadStores,
    upload_ids: Iterable[str],
    options: ProcessOptions,
    now: float | None = None,
) -> dict[str, UploadManifest]:
    """Examine every waiting upload of ``upload_ids``: keep accepted originals privately,
    move refused files to the rejected area with their reason.

    Idempotent: an upload examined before answers its recorded manifest. One bad file
    never costs the others: each ends rejected with its reason.
    """
    now = time.time() if now is None else now
    manifests = _manifests(stores, upload_ids)
    todo = [i for i, m in manifests.items() if m.record.status == "waiting"]
    with _Leased(stores, todo, options) as leased:
        manifests.update(leased.fresh)
        for upload_id in leased.ids:
            manifest = leased.fresh[upload_id]
            if manifest.record.status == "waiting":
                manifests[upload_id] = _examine(stores, manifest, options, now)
            if manifests[upload_id].record.status == "rejected":
                leased.finish(upload_id)
    return manifests


class _Leased:
    """The uploads of ``upload_ids`` this run could lease, with their manifests read
    again after the lease was taken (another run may have finished them meanwhile); the
    others are another run's now and are left alone. The leases are renewed while the
    work runs and given up at the end; a finished upload's lease is deleted. ``fresh``
    also holds the uploads found finished once leased (their lease cleared at once)."""

    def __init__(self, stores: UploadStores, upload_ids: list[str], options: ProcessOptions):
        self.stores = stores
        self.leases = Leases(stores.raw, options.lease_seconds)
        owner = options.owner or new_owner()
        self.held: dict[str, Lease] = {}
        self.fresh: dict[str, UploadManifest] = {}
        for upload_id in upload_ids:
            lease = self.leases.acquire(upload_lease_name(upload_id), owner)
            if lease is None:
                continue
            manifest = load_manifest(stores.raw, upload_id)
            if manifest is None:  # erased meanwhile
                self.leases.release(lease)
                continue
            if not _unfinished(manifest):
                # finished by another run, which cleared the lease just before this
                # one took it again: clear it too, nothing is left to guard
                self.leases.clear(upload_lease_name(upload_id))
                self.fresh[upload_id] = manifest
                continue
            self.held[upload_id] = lease
            self.fresh[upload_id] = manifest
        self.ids = list(self.held)
        self.heartbeat = Heartbeat(
            self.leases, {upload_lease_name(i): lease for i, lease in self.held.items()}
        )

    def __enter__(self) -> _Leased:
        self.heartbeat.__enter__()
        return self

    def still_held(self, upload_id: str) -> bool:
        return self.heartbeat.still_held(upload_lease_name(upload_id))

    def finish(self, upload_id: str) -> None:
        """The upload has its outcome: nobody needs its lease again."""
        self.heartbeat.drop(upload_lease_name(upload_id))
        self.held.pop(upload_id, None)
        self.leases.clear(upload_lease_name(upload_id))

    def __exit__(self, *exc: object) -> None:
        self.heartbeat.__exit__(*exc)
        for upload_id, lease in self.held.items():
            renewed = self.heartbeat.held.get(upload_lease_name(upload_id), lease)
            self.leases.release(renewed)


def _manifests(stores: UploadStores, upload_ids: Iterable[str]) -> dict[str, UploadManifest]:
    manifests = {}
    for upload_id in upload_ids:
        manifest = load_manifest(stores.raw, upload_id)
        if manifest is None:
            raise UploadError(f"upload {upload_id!r} is unknown (never received)")
        manifests[upload_id] = manifest
    return manifests


def render(
    stores: UploadStores,
    upload_ids: Iterable[str],
    options: ProcessOptions,
    say: Say = print,
    now: float | None = None,
) -> dict[str, UploadManifest]:
    """Renditions of every accepted upload of ``upload_ids`` not rendered yet, in one
    worker pool; each upload under its own prefix, then its ``processed`` row."""
    now = time.time() if now is None else now
    manifests = _manifests(stores, upload_ids)
    candidates = [i for i, m in manifests.items() if _unfinished(m)]
    with _Leased(stores, candidates, options) as leased:
        manifests.update(leased.fresh)
        todo = [
            leased.fresh[i]
            for i in leased.ids
            if leased.fresh[i].record.status == "accepted" and leased.fresh[i].renditions is None
        ]
        if todo:
            for done in _render(stores, todo, options, say, now, leased):
                manifests[done.record.upload_id] = done
    return manifests


def process(
    stores: UploadStores,
    upload_ids: Iterable[str],
    options: ProcessOptions,
    say: Say = print,
    now: float | None = None,
) -> dict[str, UploadManifest]:
    """:func:`examine` then :func:`render`."""
    ids = list(upload_ids)
    examine(stores, ids, options, now)
    return render(stores, ids, options, say, now)


def _examine(
    stores: UploadStores, manifest: UploadManifest, options: ProcessOptions, now: float
) -> UploadManifest:
    record = manifest.record
    upload_id = record.upload_id
    try:
        data = stores.area.read_claimed(upload_id)
    except FileNotFoundError:
        return _reject(
            stores,
            record.model_copy(
                update={
                    "status": "rejected",
                    "reason": "the claimed file disappeared before it was processed",
                    "failure": FailureKind.MISSING_ORIGINAL,
                    "processed_at": now,
                }
            ),
            data=None,
        )
    except NotARegularFile as exc:  # swapped for a link or a FIFO after the look
        # (any other OSError is the store's trouble, not the upload's: it propagates, the
        # claimed file stays, and the run is tried again)
        return _reject(
            stores,
            record.model_copy(
                update={
                    "status": "rejected",
                    "reason": f"refused: not a regular file ({type(exc).__name__})",
                    "failure": FailureKind.NOT_A_FILE,
                    "processed_at": now,
                }
            ),
            data=None,
        )
    base = {"bytes": len(data), "processed_at": now}
    try:
        info = probe(data)
        check_complete(data, info)
    except ImageRefused as exc:
        # fresh: written to moments ago (a paused writer's later writes land in the
        # claimed file, so its own time tells, not the time it was claimed at)
        stat = stores.area.claimed_stat(upload_id)
        last_write = stat[1] if stat else record.received_at or 0
        fresh = (
            stores.area.partial_writes  # a bucket's objects appear whole: truncated is final
            and now - last_write < options.incomplete_grace_seconds
        )
        if exc.kind == FailureKind.CORRUPT and fresh:
            # a truncated file modified moments ago: its writer may only have paused
            waiting = manifest.model_copy(update={"attempts": manifest.attempts + 1})
            _save(stores.raw, waiting, _waiting_row(record, f"waiting: {exc.reason}"))
            return waiting
        rejected = record.model_copy(
            update={**base, "status": "rejected", "reason": exc.reason, "failure": exc.kind}
        )
        return _reject(stores, rejected, data)
    except Exception as exc:  # a decoder bug on an odd file must not fail its whole batch
        reason = f"internal error while reading the image: {type(exc).__name__}: {exc}"
        rejected = record.model_copy(
            update={**base, "status": "rejected", "reason": reason, "failure": FailureKind.INTERNAL}
        )
        return _reject(stores, rejected, data)
    sha = hashlib.sha256(data).hexdigest()
    fmt = info.format.lower()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(record.received_at or now))
    unique = upload_unique_name(stamp, upload_id, fmt)
    width, height = oriented_size(info)
    accepted = record.model_copy(
        update={
            **base,
            "status": "accepted",
            "unique_name": unique,
            "original_key": upload_original_key(unique),
            "sha256": sha,
            "format": fmt,
            "width": width,
            "height": height,
        }
    )
    stores.private.put(upload_original_key(unique), data)
    kept = UploadManifest(record=accepted, attempts=manifest.attempts + 1)
    _save(stores.raw, kept, _waiting_row(accepted, "accepted; renditions pending"))
    # the claimed file stays until the renditions are made: the claimed area lists
    # exactly the unfinished uploads, so a run killed between the two steps loses none
    return kept


def _reject(stores: UploadStores, record: UploadRecord, data: bytes | None) -> UploadManifest:
    """Keep the bytes (if any) and the reason in the rejected area, then the records; the
    claimed file goes last."""
    upload_id = record.upload_id
    if data is not None:
        stores.rejected.put(rejected_key(upload_id), data)
    reason = {
        "upload_id": upload_id,
        "name": record.object_key,
        "reason": record.reason,
        "failure": record.failure,
        "at": record.processed_at or time.time(),
    }
    stores.rejected.put(rejected_reason_key(upload_id), json.dumps(reason).encode())
    manifest = UploadManifest(record=record)
    _save(stores.raw, manifest, upload_audit_row(record, None))
    stores.area.remove_claimed(upload_id)
    return manifest


def _render(
    stores: UploadStores,
    manifests: list[UploadManifest],
    options: ProcessOptions,
    say: Say,
    now: float,
    leased: _Leased,
) -> list[UploadManifest]:
    """Renditions of every accepted upload at once (the worker pool), each under its own
    prefix; each upload's manifest and ``processed`` row are written the moment its own
    renditions are stored, not at the end of the batch (unless its lease was lost: the
    run that took it over records it)."""
    fingerprint = options.config.fingerprint()
    images = [
        ImageRecord(
            product_id=m.record.upload_id,
            position=1,
            source_url=m.record.object_key,
            status="ok",
            original_key=m.record.original_key,
            original_sha256=m.record.sha256,
            original_bytes=m.record.bytes,
        )
        for m in manifests
    ]
    by_id = {m.record.upload_id: m for m in manifests}
    finished: list[UploadManifest] = []

    def record(renditions: ImageRenditions) -> None:
        upload_id = renditions.product_id
        manifest = by_id[upload_id]
        if not leased.still_held(upload_id):
            say(f"{upload_id}: lease lost to another run; its outcome is that run's to record")
            return
        done = manifest.model_copy(update={"renditions": renditions})
        _save(stores.raw, done, upload_audit_row(manifest.record, renditions, time.time()))
        stores.area.remove_claimed(upload_id)
        leased.finish(upload_id)
        finished.append(done)

    render_images(
        images,
        stores.private,
        options.config,
        workers=options.workers,
        say=say,
        prefix_of=lambda image: upload_renditions_prefix(image.product_id, fingerprint),
        on_made=record,
    )
    return finished


# ------------------------------------------------------------------ activate / expire


@dataclass(frozen=True)
class Activation:
    row: AuditRow
    public_keys: list[str]


def activate(stores: UploadStores, upload_id: str, now: float | None = None) -> Activation:
    """Copy a processed upload's original, master and renditions to the public area,
    then delete the private copies. Raises :class:`UploadError` when the upload is
    unknown or not waiting for activation."""
    upload_id = upload_id.strip()
    row = load_audit_row(stores.raw, upload_id)
    manifest = load_manifest(stores.raw, upload_id)
    if row is None or manifest is None:
        raise UploadError(
            f"upload {upload_id!r} is unknown (status: unknown); use the id shown in the "
            "audit table's key column"
        )
    if row.status != "processed":
        raise UploadError(
            f"upload {upload_id!r} is not processed and waiting (status: {row.status})"
        )
    unique_name = manifest.record.unique_name or upload_id
    public_keys = []
    for key in manifest.private_keys():
        target = _public_key(manifest, unique_name, key)
        stores.public.put(target, stores.private.get(key))
        public_keys.append(target)
    for key in [*manifest.private_keys(), *manifest.index_keys()]:
        stores.private.delete(key)
    activated_at = time.time() if now is None else now
    row = row.model_copy(update={"status": "activated", "activated_at": activated_at})
    stores.raw.put(upload_audit_key(upload_id), row.model_dump_json().encode(), "application/json")
    return Activation(row, public_keys)


@dataclass(frozen=True)
class Erasure:
    row: AuditRow  # the upload's audit row, now ``deleted``
    unique_name: str | None
    removed: list[str]  # the keys deleted, store by store ("public:...", "private:...")
    already: bool = False  # erased before: nothing was left to do

    @property
    def public_id(self) -> str | None:
        """What the image service called it (its disk cache is keyed by this)."""
        return activated_public_id(self.unique_name) if self.unique_name else None


def erase(stores: UploadStores, upload_id: str, now: float | None = None) -> Erasure:
    """Remove every file of one upload, on request: its private original and
    renditions, its public files once activated, its rejected copy and reason, its
    tag row and manifest. The audit row stays, marked ``deleted`` with the time; a
    second erasure changes nothing and says so. Only this upload's own keys are
    touched: they come from its manifest and the layout, never from a listing or a
    pattern, so a hostile id cannot reach another upload (an id that is not a
    known upload is refused before anything is deleted)."""
    upload_id = upload_id.strip()
    if not UPLOAD_ID.fullmatch(upload_id):
        shown = display_name(upload_id[:40])
        raise UploadError(
            f"{shown!r} is not an upload id (u and 24 hex digits); nothing deleted", "invalid"
        )
    row = load_audit_row(stores.raw, upload_id)
    if row is None:
        raise UploadError(f"upload {upload_id!r} is unknown; nothing was deleted", "unknown")
    if row.status == "deleted":
        return Erasure(row, None, [], already=True)
    if row.status == "waiting":
        raise UploadError(
            f"upload {upload_id!r} is still being received or processed; erase it once "
            "its row says processed, rejected, activated or expired",
            "busy",
        )
    manifest = load_manifest(stores.raw, upload_id)
    removed: list[str] = []
    unique_name = None
    if manifest is not None:
        unique_name = manifest.record.unique_name or upload_id
        for key in manifest.private_keys():
            if stores.private.delete(key):
                removed.append(f"private:{key}")
            public = _public_key(manifest, unique_name, key)
            if stores.public.delete(public):
                removed.append(f"public:{public}")
        for key in manifest.index_keys():
            if stores.private.delete(key):
                removed.append(f"private:{key}")
    for key in (rejected_key(upload_id), rejected_reason_key(upload_id)):
        if stores.rejected.delete(key):
            removed.append(f"rejected:{key}")
    if stores.raw.delete(upload_tags_key(upload_id)):
        removed.append(f"raw:{upload_tags_key(upload_id)}")
    deleted_at = time.time() if now is None else now
    row = row.model_copy(update={"status": "deleted", "deleted_at": deleted_at})
    stores.raw.put(upload_audit_key(upload_id), row.model_dump_json().encode(), "application/json")
    stores.raw.delete(upload_manifest_key(upload_id))  # after the row: it says what happened
    return Erasure(row, unique_name, removed)


def _public_key(manifest: UploadManifest, unique_name: str, private_key: str) -> str:
    """Where activation puts one of the upload's private files in the public area."""
    if private_key == manifest.record.original_key:
        return activated_original_key(unique_name)
    return activated_file_key(unique_name, private_key.rsplit("/", 1)[-1])


def expire(stores: UploadStores, ttl_hours: float, now: float | None = None) -> list[AuditRow]:
    """Delete the private files of uploads processed more than ``ttl_hours`` ago and never
    activated; return their rows, now ``expired``."""
    now = time.time() if now is None else now
    cutoff = now - ttl_hours * 3600
    expired = []
    for key in list(stores.raw.list(UPLOAD_AUDIT_PREFIX)):
        row = AuditRow.model_validate_json(stores.raw.get(key))
        if row.status != "processed" or (row.processed_at or 0) > cutoff:
            continue
        upload_id = upload_id_from_audit_key(key)
        manifest = load_manifest(stores.raw, upload_id)
        for private_key in [*manifest.private_keys(), *manifest.index_keys()] if manifest else []:
            stores.private.delete(private_key)
        row = row.model_copy(update={"status": "expired"})
        stores.raw.put(key, row.model_dump_json().encode(), "application/json")
        expired.append(row)
    return expired
