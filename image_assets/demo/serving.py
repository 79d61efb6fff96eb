"""Serve an HTTP server from a background thread, with a shutdown that does not wait.

``serve_forever`` polls for shutdown every ``poll_interval`` seconds (0.5 by
default), so every stop used to cost up to half a second; here it is 20 ms.
The demo sites and every test server use this one helper.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Generic, TypeVar

POLL_INTERVAL = 0.02

S = TypeVar("S", bound=ThreadingHTTPServer)


class BackgroundServer(Generic[S]):
    """``with BackgroundServer(server) as s: ...`` or ``start()`` / ``stop()``."""

    def __init__(self, server: S, name: str = "http-server"):
        server.daemon_threads = True  # a hung client never blocks the stop
        self.server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": POLL_INTERVAL},
            name=name,
            daemon=True,
        )

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> BackgroundServer[S]:
        """Start serving (once; starting a started server does nothing)."""
        if self._thread.ident is None:
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self.server.shutdown()
            self._thread.join(timeout=5)
        self.server.server_close()

    def __enter__(self) -> BackgroundServer[S]:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def serve(
    handler: type[BaseHTTPRequestHandler], host: str = "127.0.0.1", port: int = 0
) -> BackgroundServer[ThreadingHTTPServer]:
    """A started server for ``handler`` on a free port of ``host``; stop it when done."""
    return BackgroundServer(ThreadingHTTPServer((host, port), handler)).start()
