"""What every route answers with: one-line errors, ETags as sent, the access log."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_log = logging.getLogger("image_assets.delivery.access")

MAX_ERROR_CHARS = 300


def text(status: int, message: str, headers: Mapping[str, str] | None = None) -> PlainTextResponse:
    """One line of text, at most :data:`MAX_ERROR_CHARS` (a hostile id is not echoed whole)."""
    line = (message.splitlines() or [""])[0]
    if len(line) > MAX_ERROR_CHARS:
        line = line[: MAX_ERROR_CHARS - 1] + "…"
    return PlainTextResponse(line + "\n", status_code=status, headers=dict(headers or {}))


def etags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}


class CommonLog:
    """One line per request in the common log format (host ident user [time] "request"
    status bytes)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status, size = 500, 0

        async def record(message: Message) -> None:
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = message["status"]
                # every answer is what its Content-Type says: browsers must not sniff
                message = {
                    **message,
                    "headers": [
                        *message.get("headers", []),
                        (b"x-content-type-options", b"nosniff"),
                    ],
                }
            elif message["type"] == "http.response.body":
                size += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            client = (scope.get("client") or ("-", 0))[0]
            target = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
            when = time.strftime("%d/%b/%Y:%H:%M:%S %z")
            access_log.info(
                '%s - - [%s] "%s %s HTTP/%s" %d %s',
                client,
                when,
                scope["method"],
                target,
                scope.get("http_version", "1.1"),
                status,
                size if size else "-",
            )
