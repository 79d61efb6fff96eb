"""Picking up files from the incoming location: see each entry, claim it, never follow it.

An *arrival* is one entry seen in the incoming location. Its name is whatever
the user (or an attacker) chose: unicode, very long, with backslashes,
newlines or ``%``; it is kept as metadata and never becomes a storage key.
Each arrival gets an **upload id** derived from a hash of its name and of what
makes this appearance unique (inode, size and modification time on a folder;
ETag and time on S3): safe, bounded, different for the same name uploaded
twice and for the same bytes under two names.

*Claiming* moves a settled regular file out of incoming to ``claimed/{upload_id}``
(an atomic rename on a folder), so pick-up never depends on modification times
compared against a cursor, and a file moved in with an old time is seen like
any other. What is not a regular file is never read: symlinks (to anything,
inside or outside the data root), FIFOs and devices are refused with a reason.

Rules for names, documented in the README:
- names whose last part starts with ``.`` or ends with ``.part``, ``.partial``,
  ``.tmp``, ``.crdownload``, ``.download`` or ``~`` are in-progress or hidden
  files: they are left alone until renamed;
- a file modified less than ``settle_seconds`` ago waits for the next look.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

TEMPORARY_SUFFIXES = (".part", ".partial", ".tmp", ".crdownload", ".download", "~")
MAX_DISPLAY_NAME = 240

ArrivalKind = Literal["file", "symlink", "other"]


@dataclass(frozen=True)
class Arrival:
    """One entry of the incoming location as seen now."""

    name: str  # relative path with "/" separators, exactly as found
    size: int
    modified: float
    kind: ArrivalKind
    token: str  # what tells this appearance from an earlier one with the same name

    @property
    def upload_id(self) -> str:
        return upload_id_for(self.name, self.token)


def upload_id_for(name: str, token: str) -> str:
    """``u`` + 24 hex digits: a safe partition key, blob key and file name."""
    raw = name.encode("utf-8", "surrogateescape") + b"\0" + token.encode()
    return "u" + hashlib.sha256(raw).hexdigest()[:24]


def display_name(name: str) -> str:
    """The name for metadata and logs: printable (control characters escaped), bounded."""
    text = name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    text = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode() for ch in text)
    return text if len(text) <= MAX_DISPLAY_NAME else text[: MAX_DISPLAY_NAME - 1] + "…"


def is_temporary(name: str) -> bool:
    """Hidden or in-progress names wait until they are renamed (see the module doc)."""
    base = name.rsplit("/", 1)[-1]
    return base.startswith(".") or base.endswith(TEMPORARY_SUFFIXES)


class IncomingArea(Protocol):
    """Where users drop files, and the claimed area beside it."""

    partial_writes: bool  # can an entry be seen while it is still being written?

    def scan(self) -> Iterator[Arrival]:
        """Every entry now in incoming (temporary names included; callers apply the rules)."""
        ...

    def claim(self, arrival: Arrival) -> bool:
        """Move a regular file to the claimed area under its upload id; False when it
        changed or vanished since it was seen (it will be seen again)."""
        ...

    def discard(self, arrival: Arrival) -> None:
        """Remove the entry itself (a refused symlink: the link, never its target)."""
        ...

    def read_claimed(self, upload_id: str) -> bytes: ...

    def claimed_stat(self, upload_id: str) -> tuple[int, float] | None:
        """Size and modification time of a claimed file now, None when it is gone."""
        ...

    def remove_claimed(self, upload_id: str) -> None: ...

    def claimed_ids(self) -> Iterator[str]: ...


class NotARegularFile(OSError):
    """A claimed entry turned out not to be a regular file (swapped for a link after the look)."""


class LocalIncoming:
    """``incoming/`` and ``claimed/`` folders on one filesystem (renames are atomic)."""

    partial_writes = True

    def __init__(self, incoming: str | os.PathLike[str], claimed: str | os.PathLike[str]):
        self.root = Path(incoming).absolute()
        self.claimed = Path(claimed).absolute()

    def scan(self) -> Iterator[Arrival]:
        if not self.root.is_dir() or self.root.is_symlink():
            return
        for folder, dirnames, filenames in os.walk(self.root, followlinks=False):
            base = Path(folder)
            names = list(filenames)
            for dirname in list(dirnames):  # a symlink to a folder is an entry, not a folder
                if (base / dirname).is_symlink():
                    dirnames.remove(dirname)
                    names.append(dirname)
            for name in sorted(names):
                path = base / name
                try:
                    info = path.lstat()
                except FileNotFoundError:
                    continue  # gone while looking
                relative = path.relative_to(self.root).as_posix()
                yield Arrival(
                    name=relative,
                    size=info.st_size,
                    modified=info.st_mtime,
                    kind=_kind(info.st_mode),
                    token=f"{info.st_ino}:{info.st_size}:{info.st_mtime_ns}",
                )

    def _path(self, arrival: Arrival) -> Path:
        path = self.root / arrival.name
        if ".." in Path(arrival.name).parts or not path.is_relative_to(self.root):
            raise ValueError(f"entry {display_name(arrival.name)!r} is not inside incoming")
        return path

    def claim(self, arrival: Arrival) -> bool:
        path = self._path(arrival)
        try:
            info = path.lstat()
        except FileNotFoundError:
            return False
        token = f"{info.st_ino}:{info.st_size}:{info.st_mtime_ns}"
        if not stat.S_ISREG(info.st_mode) or token != arrival.token:
            return False
        self.claimed.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(path, self.claimed / arrival.upload_id)
        except FileNotFoundError:
            return False
        return True

    def discard(self, arrival: Arrival) -> None:
        path = self._path(arrival)
        try:
            info = path.lstat()
        except FileNotFoundError:
            return
        if stat.S_ISDIR(info.st_mode):
            return  # an empty folder stays; nothing was dropped in it
        os.unlink(path)  # the entry itself: a symlink is removed, its target is not touched

    def read_claimed(self, upload_id: str) -> bytes:
        try:
            fd = os.open(self.claimed / upload_id, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # a link swapped in after the look: never followed
                raise NotARegularFile(f"{upload_id} is a symbolic link") from None
            raise
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise NotARegularFile(f"{upload_id} is not a regular file")
            return fh.read()

    def claimed_stat(self, upload_id: str) -> tuple[int, float] | None:
        try:
            info = (self.claimed / upload_id).lstat()
        except FileNotFoundError:
            return None
        return info.st_size, info.st_mtime

    def remove_claimed(self, upload_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.claimed / upload_id)

    def claimed_ids(self) -> Iterator[str]:
        if self.claimed.is_dir():
            yield from sorted(p.name for p in self.claimed.iterdir() if p.name.startswith("u"))


class S3Incoming:
    """An ``incoming/`` prefix of a bucket and a ``claimed/`` prefix beside it.

    Keys are used raw (any character S3 allows); a claim is a copy to
    ``claimed/{upload_id}`` then a delete of the original. S3 objects appear
    whole, so there is no half-written object to wait for.
    """

    partial_writes = False

    def __init__(self, client: Any, bucket: str, incoming_prefix: str, claimed_prefix: str):
        self.client = client
        self.bucket = bucket
        self.incoming = incoming_prefix.strip("/") + "/" if incoming_prefix.strip("/") else ""
        self.claimed = claimed_prefix.strip("/") + "/"

    def scan(self) -> Iterator[Arrival]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.incoming):
            for item in page.get("Contents", []):
                name = item["Key"][len(self.incoming) :]
                if not name or name.endswith("/"):
                    continue  # the prefix itself, or a "folder" marker
                modified = item["LastModified"].timestamp()
                yield Arrival(
                    name=name,
                    size=int(item.get("Size", 0)),
                    modified=modified,
                    kind="file",
                    token=f"{item.get('ETag', '')}:{item.get('Size', 0)}:{modified}",
                )

    def arrival_for(self, key: str) -> Arrival | None:
        """The arrival of one full object key (for S3 event notifications)."""
        if not key.startswith(self.incoming):
            return None
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key)
        except self.client.exceptions.ClientError:
            return None
        modified = head["LastModified"].timestamp()
        size = int(head.get("ContentLength", 0))
        return Arrival(
            name=key[len(self.incoming) :],
            size=size,
            modified=modified,
            kind="file",
            token=f"{head.get('ETag', '')}:{size}:{modified}",
        )

    def claim(self, arrival: Arrival) -> bool:
        key = self.incoming + arrival.name
        target = self.claimed + arrival.upload_id
        try:
            self.client.copy_object(
                Bucket=self.bucket,
                Key=target,
                CopySource={"Bucket": self.bucket, "Key": key},
                CopySourceIfMatch=arrival.token.split(":", 1)[0] or "*",
            )
        except self.client.exceptions.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404", "PreconditionFailed", "412"):
                return False
            raise
        self.client.delete_object(Bucket=self.bucket, Key=key)
        return True

    def discard(self, arrival: Arrival) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.incoming + arrival.name)

    def read_claimed(self, upload_id: str) -> bytes:
        response = self.client.get_object(Bucket=self.bucket, Key=self.claimed + upload_id)
        return bytes(response["Body"].read())

    def claimed_stat(self, upload_id: str) -> tuple[int, float] | None:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self.claimed + upload_id)
        except self.client.exceptions.ClientError:
            return None
        return int(head.get("ContentLength", 0)), head["LastModified"].timestamp()

    def remove_claimed(self, upload_id: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.claimed + upload_id)

    def claimed_ids(self) -> Iterator[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.claimed):
            for item in page.get("Contents", []):
                yield item["Key"][len(self.claimed) :]


def _kind(mode: int) -> ArrivalKind:
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISREG(mode):
        return "file"
    return "other"
