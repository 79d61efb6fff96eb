"""Shared fixtures: real HTTP servers on 127.0.0.1, temporary data folders, real Dagster instances."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from image_assets.demo.server import DemoServer


@pytest.fixture(scope="session")
def demo_server() -> Iterator[DemoServer]:
    """The demo vendor sites on a free port; the registry follows IMAGE_ASSETS_DEMO_URL."""
    previous = os.environ.get("IMAGE_ASSETS_DEMO_URL")
    with DemoServer("127.0.0.1", 0) as server:
        os.environ["IMAGE_ASSETS_DEMO_URL"] = server.base_url
        yield server
    if previous is None:
        os.environ.pop("IMAGE_ASSETS_DEMO_URL", None)
    else:
        os.environ["IMAGE_ASSETS_DEMO_URL"] = previous
