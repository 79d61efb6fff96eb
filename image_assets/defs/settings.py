"""Where configuration comes from: environment variables with embedded defaults.

Resources read their values through ``EnvVar`` when the variable is set (the
UI then shows where a value came from) and fall back to the embedded `local`
defaults otherwise, so `make demo` needs no configuration at all.
"""

from __future__ import annotations

import functools
import os
from datetime import timedelta

from dagster import Backoff, EnvVar, FreshnessPolicy, Jitter, RetryPolicy

from image_assets.imaging.config import RenditionConfig, load_rendition_config
from image_assets.settings import VARIABLES, PlatformSettings


def env_or(name: str, default: str) -> str:
    """``EnvVar(name)`` when set, else ``default`` (EnvVar is a str subclass)."""
    return EnvVar(name) if os.environ.get(name) else default


def default_data_dir() -> str:
    return str(PlatformSettings.from_env().data_dir)


def setting(field: str) -> str:
    """A :class:`PlatformSettings` field as a resource takes it: ``EnvVar`` of its
    variable when set (the UI shows where it came from), else the shared default."""
    value = getattr(PlatformSettings.from_env(), field)
    return env_or(VARIABLES[field], "" if value is None else str(value))


def rendition_config() -> RenditionConfig:
    """The rendition config of this code location (``IMAGE_ASSETS_RENDITIONS`` or the
    bundled file), loaded once per path.

    It is code, not run configuration: its fingerprint is the ``code_version`` of
    ``image_renditions``, and the runs render with the very config that fingerprint
    was taken from. Change the file, reload the code location, and the UI marks the
    renditions stale.
    """
    return _load_rendition_config(os.environ.get("IMAGE_ASSETS_RENDITIONS") or "")


@functools.cache
def _load_rendition_config(path: str) -> RenditionConfig:
    return load_rendition_config(path or None)


def catalog_freshness_policy() -> FreshnessPolicy:
    """Catalog assets warn after 26 hours and fail after 36 without a new materialization
    (``IMAGE_ASSETS_FRESHNESS_WARN_HOURS`` / ``_FAIL_HOURS``)."""
    warn = float(os.environ.get("IMAGE_ASSETS_FRESHNESS_WARN_HOURS") or 26)
    fail = float(os.environ.get("IMAGE_ASSETS_FRESHNESS_FAIL_HOURS") or 36)
    if not 0 < warn < fail:
        raise ValueError(f"freshness: need 0 < warn ({warn}h) < fail ({fail}h)")
    return FreshnessPolicy.time_window(
        fail_window=timedelta(hours=fail), warn_window=timedelta(hours=warn)
    )


def network_retry_policy() -> RetryPolicy:
    """Retries for assets that talk to other servers; their clients already retry
    requests, so these cover whole-step hiccups (a crashed worker, a storage blip)."""
    return RetryPolicy(
        max_retries=2, delay=5, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS
    )
