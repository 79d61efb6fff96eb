"""Blob stores: one small interface for the raw store, the image store and the local CDN."""

from image_assets.storage.base import BlobNotFound, BlobStore, InvalidKey, validate_key
from image_assets.storage.local import LocalBlobStore
from image_assets.storage.memory import MemoryBlobStore

__all__ = [
    "BlobNotFound",
    "BlobStore",
    "InvalidKey",
    "LocalBlobStore",
    "MemoryBlobStore",
    "validate_key",
]
