"""One worker of ``image-assets serve --workers N``: uvicorn on the socket the
supervisor bound and passed down (``supervisor.Supervisor``)."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import sys

_PR_SET_PDEATHSIG = 1  # prctl(2)


def die_with_the_supervisor(supervisor: int) -> None:
    """On Linux, be sent SIGTERM when the supervisor dies, even by SIGKILL, so that
    no worker goes on serving alone; elsewhere nothing is arranged."""
    try:
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        return
    if os.getppid() != supervisor:  # it died before the request above
        raise SystemExit(0)


def serve_on(listener: socket.socket) -> None:
    """uvicorn on ``listener`` until SIGTERM or SIGINT (then the requests in flight finish)."""
    import uvicorn

    config = uvicorn.Config(
        "image_assets.delivery.server:worker_app",  # exits 3 when misconfigured
        factory=True,
        access_log=False,  # the app logs every request in the common log format
        log_config=None,
        server_header=False,
    )
    uvicorn.Server(config).run(sockets=[listener])


def main(argv: list[str]) -> None:
    fd, supervisor = int(argv[0]), int(argv[1])
    die_with_the_supervisor(supervisor)
    serve_on(socket.socket(fileno=fd))


if __name__ == "__main__":
    main(sys.argv[1:])
