"""Where configuration comes from: environment variables with embedded defaults.

Resources read their values through ``EnvVar`` when the variable is set (the
UI then shows where a value came from) and fall back to the embedded `local`
defaults otherwise, so `make demo` needs no configuration at all.
"""

from __future__ import annotations

import os
from pathlib import Path

from dagster import EnvVar


def env_or(name: str, default: str) -> str:
    """``EnvVar(name)`` when set, else ``default`` (EnvVar is a str subclass)."""
    return EnvVar(name) if os.environ.get(name) else default  # type: ignore[return-value]


def default_data_dir() -> str:
    return str(Path(os.environ.get("IMAGE_ASSETS_DATA_DIR") or ".data").resolve())


def catalog_freshness_policy():
    """Catalog assets warn after 26 hours and fail after 36 without a new materialization
    (``IMAGE_ASSETS_FRESHNESS_WARN_HOURS`` / ``_FAIL_HOURS``)."""
    from datetime import timedelta

    from dagster import FreshnessPolicy

    warn = float(os.environ.get("IMAGE_ASSETS_FRESHNESS_WARN_HOURS") or 26)
    fail = float(os.environ.get("IMAGE_ASSETS_FRESHNESS_FAIL_HOURS") or 36)
    if not 0 < warn < fail:
        raise ValueError(f"freshness: need 0 < warn ({warn}h) < fail ({fail}h)")
    return FreshnessPolicy.time_window(
        fail_window=timedelta(hours=fail), warn_window=timedelta(hours=warn)
    )


def network_retry_policy():
    """Retries for assets that talk to other servers; their clients already retry
    requests, so these cover whole-step hiccups (a crashed worker, a storage blip)."""
    from dagster import Backoff, Jitter, RetryPolicy

    return RetryPolicy(
        max_retries=2, delay=5, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS
    )
