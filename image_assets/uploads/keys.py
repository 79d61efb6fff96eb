"""Partition keys for uploads: reversible, and free of the characters Dagster reserves.

A dynamic partition key may not contain ``,`` or ``|``; object keys may contain
anything. Percent-encoding (``%``, ``,``, ``|`` and control characters) keeps
the key readable in the UI and lets the asset recover the object key exactly.
"""

from __future__ import annotations

from urllib.parse import quote, unquote

_SAFE = "/ ._-()[]+=@~!$'&;:"  # everything printable but % , | stays as typed


def partition_key_for(object_key: str, prefix: str = "") -> str:
    relative = object_key[len(prefix) :] if prefix and object_key.startswith(prefix) else object_key
    return quote(relative, safe=_SAFE)


def object_key_for(partition_key: str, prefix: str = "") -> str:
    return prefix + unquote(partition_key)
