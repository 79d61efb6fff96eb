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
