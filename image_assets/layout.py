"""The store layout: every blob key, CDN public id and rendition id the platform uses.

Nothing else spells a key. A key is made here from ids that are already safe
(sanitized product ids, hex digests, registry keys), and every blob store
validates it again, so no scraped or uploaded name can address anything
outside its store.

Stores (see ``storage/``):
- raw store: pages, HTTP validators, asset outputs, audit rows, kits CSVs;
- image store (private): originals, masters and renditions, upload originals,
  the CDN ledgers (what was published where);
- CDN (public): masters and renditions under public ids.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence
from typing import Literal

from image_assets.formats import extension, image_format

# ---------------------------------------------------------------- safe ids

MAX_ID_LENGTH = 64
_UNSAFE = re.compile(r"[^a-z0-9._-]+")
_DOTS = re.compile(r"\.{2,}")


def sanitize_id(raw: str) -> str:
    """Map any string to a safe id segment; returns ``""`` when nothing usable remains.

    Lowercase ``[a-z0-9._-]``, no leading dot, at most :data:`MAX_ID_LENGTH`
    characters. Unicode is folded to ASCII where possible, runs of unsafe
    characters become one ``-``, ``..`` sequences collapse (so no segment can
    be ``..``), and over-long ids keep a hash suffix so distinct inputs stay
    distinct.
    """
    text = unicodedata.normalize("NFKD", raw).encode("ascii", "ignore").decode("ascii")
    text = _UNSAFE.sub("-", text.strip().lower())
    text = _DOTS.sub(".", text).strip(".-_")
    if len(text) > MAX_ID_LENGTH:
        digest = hashlib.sha256(raw.encode()).hexdigest()[:8]
        text = text[: MAX_ID_LENGTH - 9].rstrip(".-_") + "-" + digest
    return text


# ---------------------------------------------------------------- raw store

HttpCacheKind = Literal["pages", "images"]
VENDOR_AUDIT_PREFIX = "audit/vendors"
UPLOAD_AUDIT_PREFIX = "audit/uploads"
TAGS_PREFIX = "tags/vendors"
UPLOAD_TAGS_PREFIX = "tags/uploads"


def page_key(manufacturer: str, url: str, role: str) -> str:
    """A raw catalog page, by a hash of its URL (``json`` for API pages)."""
    digest = hashlib.sha256(url.encode()).hexdigest()[:32]
    return f"pages/{manufacturer}/{digest}.{'json' if role == 'api' else 'html'}"


def http_cache_key(manufacturer: str, kind: HttpCacheKind) -> str:
    """ETag/Last-Modified validators of one vendor's pages or images."""
    return f"state/http_cache/{manufacturer}/{kind}.json"


def asset_state_key(asset_path: Sequence[str], partition: str | None) -> str:
    """The stored output of an asset (one partition, or ``all``)."""
    return f"state/assets/{'__'.join(asset_path)}/{partition or 'all'}.json"


def vendor_audit_key(manufacturer: str) -> str:
    """The audit rows of one manufacturer's images (a JSON list)."""
    return f"{VENDOR_AUDIT_PREFIX}/{manufacturer}.json"


def tags_key(manufacturer: str) -> str:
    """The tag rows (hashes, colours, labels) of one manufacturer's images (a JSON list)."""
    return f"{TAGS_PREFIX}/{manufacturer}.json"


def upload_tags_key(upload_id: str) -> str:
    """The tag row of one upload."""
    return f"{UPLOAD_TAGS_PREFIX}/{upload_id}.json"


def upload_audit_key(upload_id: str) -> str:
    """The audit row of one upload."""
    return f"{UPLOAD_AUDIT_PREFIX}/{upload_id}.json"


def upload_id_from_audit_key(key: str) -> str:
    """The upload id an audit key was made from (ids may contain ``/``)."""
    return key.removeprefix(UPLOAD_AUDIT_PREFIX + "/").removesuffix(".json")


def upload_manifest_key(upload_id: str) -> str:
    """What the upload lifecycle knows of one upload: its record and its private files."""
    return f"state/uploads/{upload_id}.json"


LEASES_FOLDER = "leases"


def lease_prefix(name: str) -> str:
    """The generations of one lease (``name``: ``upload/{id}``, ``vendor/{key}``)."""
    return f"{LEASES_FOLDER}/{name}/"


def lease_key(name: str, generation: int) -> str:
    return f"{lease_prefix(name)}{generation:010d}.json"


def lease_generation(key: str) -> int | None:
    """The generation a lease key holds (None for any other key)."""
    stem = key.rsplit("/", 1)[-1].removesuffix(".json")
    return int(stem) if stem.isdigit() else None


KITS_CSV_FOLDER = "kits/"
KITS_CSV_SUFFIX = "_kits.csv"


def kits_csv_key(manufacturer: str) -> str:
    """The website's contract: ``kits/{manufacturer}_kits.csv``."""
    return f"{KITS_CSV_FOLDER}{manufacturer}{KITS_CSV_SUFFIX}"


def is_kits_csv_key(key: str) -> bool:
    """Whether ``key`` is one manufacturer's kits CSV (not something in a sub-folder)."""
    rest = key.removeprefix(KITS_CSV_FOLDER)
    return key.startswith(KITS_CSV_FOLDER) and rest.endswith(KITS_CSV_SUFFIX) and "/" not in rest


# what housekeeping retired in the private store's renditions, by prefix: the day it left
RETIRED_RENDITIONS_KEY = "state/retired_renditions.json"


# ---------------------------------------------------------------- image store


def original_key(sha256: str) -> str:
    """A vendor image's original, by content."""
    return f"originals/{sha256[:2]}/{sha256}"


RENDITIONS_FOLDER = "renditions/"


def renditions_prefix(original_sha256: str, config_fingerprint: str) -> str:
    """Where the outputs of one original under one rendition config live."""
    return f"{RENDITIONS_FOLDER}{original_sha256[:2]}/{original_sha256}/{config_fingerprint}"


def renditions_prefix_of(key: str) -> tuple[str, str] | None:
    """(prefix, config fingerprint) of a key under :func:`renditions_prefix`, else None."""
    parts = key.split("/")
    if len(parts) < 5 or not key.startswith(RENDITIONS_FOLDER):
        return None
    return "/".join(parts[:4]), parts[3]


def renditions_index_key(prefix: str) -> str:
    return f"{prefix}/index.json"


def rendition_file_key(prefix: str, name: str, fmt: str) -> str:
    return f"{prefix}/{name}.{extension(fmt)}"


def upload_original_key(unique_name: str) -> str:
    """An accepted upload's original, kept privately until it is activated or expires."""
    return f"uploads/originals/{unique_name}"


def upload_unique_name(timestamp: str, upload_id: str, fmt: str) -> str:
    """``20261122T031500_u3fa9c0d1e2....jpg``: a time plus the upload id, so two uploads
    never share a name, whatever their names or bytes."""
    return f"{timestamp}_{upload_id}.{extension(fmt)}"


def upload_renditions_prefix(upload_id: str, config_fingerprint: str) -> str:
    """An upload's own master and renditions (never shared with another upload, so
    activating or expiring one never touches another's files)."""
    return f"uploads/renditions/{upload_id}/{config_fingerprint}"


# ---------------------------------------------------------------- uploads areas

CLAIMED_AREA = "claimed"  # beside incoming: files taken out of incoming, by upload id


def rejected_key(upload_id: str) -> str:
    """A rejected upload's bytes in the rejected area (its name is in the reason file)."""
    return upload_id


def rejected_reason_key(upload_id: str) -> str:
    """The reason file beside a rejected upload."""
    return f"{upload_id}.reason.json"


def activated_original_key(unique_name: str) -> str:
    """An activated upload's original in the public area: ``{stem}/original.{ext}``."""
    stem, _, ext = unique_name.rpartition(".")
    return f"{stem}/original.{ext}"


ACTIVATED_PUBLIC_ID_PREFIX = "uploads/"  # how the image service names activated uploads


def activated_public_id(unique_name: str) -> str:
    """The image service's public id of an activated upload: ``uploads/{stem}``."""
    return ACTIVATED_PUBLIC_ID_PREFIX + (unique_name.rpartition(".")[0] or unique_name)


def activated_file_key(unique_name: str, file_name: str) -> str:
    """An activated upload's master or rendition in the public area."""
    return activated_upload_file(unique_name.rpartition(".")[0], file_name)


def activated_upload_file(stem: str, file_name: str) -> str:
    """A file of the activated upload whose unique name (without extension) is ``stem``;
    ``uploads/<stem>`` is its public id on the image service."""
    return f"{stem}/{file_name}"


# ---------------------------------------------------------------- CDN

CDN_META_PREFIX = "_meta"


def public_id(manufacturer: str, product_id: str, position: int) -> str:
    """``kits/estes/est0001`` for the first image, ``kits/estes/est0001/2`` for the next."""
    base = f"{cdn_folder(manufacturer)}{product_id}"
    return base if position == 1 else f"{base}/{position}"


def rendition_public_id(public_id: str, name: str, fmt: str) -> str:
    """A pre-made rendition published beside its master (CDNs that do not transform)."""
    return f"{public_id}/{name}-{fmt}"


def rendition_label(name: str, fmt: str) -> str:
    """How a rendition is named in the kits CSV's ``renditions`` map: ``thumb_300.webp``."""
    return f"{name}.{fmt}"


def cdn_object_key(public_id: str, fmt: str) -> str:
    """The stored file of a public id on CDNs that serve files (local, S3)."""
    return f"{public_id}.{extension(fmt)}"


def object_key_public_id(key: str) -> tuple[str, str] | None:
    """(public id, format) of a stored CDN file, the inverse of :func:`cdn_object_key`;
    None for a key that is not an image file the platform publishes."""
    stem, dot, ext = key.rpartition(".")
    if not dot or not stem:
        return None
    try:
        fmt = image_format(ext).name
    except ValueError:
        return None
    return stem, fmt


def cdn_ledger_prefix(ledger_name: str) -> str:
    """Where one CDN account's ledgers are, one per manufacturer."""
    return f"cdn_ledger/{ledger_name}/"


def cdn_ledger_key(ledger_name: str, manufacturer: str) -> str:
    """What the platform published to one CDN account under one manufacturer's folder."""
    return f"{cdn_ledger_prefix(ledger_name)}{manufacturer}.json"


def cdn_folder(manufacturer: str) -> str:
    """The public-id prefix of one manufacturer's images (``kits/estes/``)."""
    return f"kits/{manufacturer}/"


def cdn_meta_key(public_id: str) -> str:
    """The local CDN's record of what it holds for a public id."""
    return f"{CDN_META_PREFIX}/{public_id}.json"


def split_public_id(public_id: str) -> tuple[str | None, str]:
    """(folder, name) as Cloudinary takes them: ``kits/estes/est0001/2`` ->
    (``kits/estes``, ``est0001/2``): the folder is ``kits/{manufacturer}``."""
    parts = public_id.split("/")
    if len(parts) >= 3:
        return "/".join(parts[:2]), "/".join(parts[2:])
    if len(parts) == 2:
        return parts[0], parts[1]
    return None, public_id
