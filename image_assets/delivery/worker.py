"""One worker of ``image-assets serve --workers N``: uvicorn on the socket the
supervisor bound and passed down (``supervisor.Supervisor``), writing a heartbeat
byte to the supervisor from its event loop every second, so that a worker whose
loop stops turning is replaced, not only one that dies."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import sys

_PR_SET_PDEATHSIG = 1  # prctl(2)
# A worker's exit code when it is misconfigured (uvicorn's for "failed before
# serving"): the supervisor stops instead of starting it again in a loop.
STARTUP_FAILURE = 3


def die_with_the_supervisor(supervisor: int) -> None:
    """On Linux, be sent SIGTERM when the supervisor dies, even by SIGKILL, so that
    no worker goes on serving alone; elsewhere nothing is arranged."""
    try:
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        return
    if os.getppid() != supervisor:  # it died before the request above
        raise SystemExit(0)


HEARTBEAT_SECONDS = 1


def serve_on(listener: socket.socket, heartbeat_fd: int | None = None) -> None:
    """uvicorn on ``listener`` until SIGTERM or SIGINT (then the requests in flight
    finish); with ``heartbeat_fd``, a byte written to it from the event loop every
    ``HEARTBEAT_SECONDS`` (uvicorn's ``callback_notify``, the hook gunicorn uses)."""
    import uvicorn

    async def heartbeat() -> None:
        with contextlib.suppress(BlockingIOError):  # the last ones are still unread
            os.write(heartbeat_fd, b".")  # type: ignore[arg-type]

    config = uvicorn.Config(
        "image_assets.delivery.server:worker_app",  # exits 3 when misconfigured
        factory=True,
        access_log=False,  # the app logs every request in the common log format
        log_config=None,
        server_header=False,
        callback_notify=heartbeat if heartbeat_fd is not None else None,
        timeout_notify=HEARTBEAT_SECONDS,
    )
    uvicorn.Server(config).run(sockets=[listener])


def main(argv: list[str]) -> None:
    fd, supervisor, heartbeat_fd = int(argv[0]), int(argv[1]), int(argv[2])
    die_with_the_supervisor(supervisor)
    os.set_blocking(heartbeat_fd, False)
    serve_on(socket.socket(fileno=fd), heartbeat_fd)


if __name__ == "__main__":
    main(sys.argv[1:])
