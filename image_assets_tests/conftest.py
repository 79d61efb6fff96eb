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


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """moto in server mode on 127.0.0.1 (S3, SQS, Secrets Manager), reached by endpoint URL."""
    import socket

    from moto.server import ThreadedMotoServer

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def aws_env(moto_server, monkeypatch) -> str:
    """Fake credentials and the moto endpoint for every boto3 client made in the test."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": moto_server,
    }.items():
        monkeypatch.setenv(name, value)
    return moto_server


@pytest.fixture
def fake_cloudinary():
    from image_assets_tests.fake_cloudinary import FakeCloudinary

    server = FakeCloudinary().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """`image-assets serve` on a free port, strict, over a store holding two masters
    (one per test module that asks for it)."""
    from image_assets_tests.delivery_service import started_service

    yield from started_service(tmp_path_factory)
