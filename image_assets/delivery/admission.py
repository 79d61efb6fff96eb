"""Admission: how many renders run at once, how many wait, and what happens past that.

One FIFO line per process: a request that may render takes a place in line
before its source is read, and waits for one of ``slots`` render slots (one
per core by default) to render. Whichever slot frees first takes the oldest
waiting request, so no core waits while a render is queued in this process.
Past ``slots + waiting`` places the request is refused at once with 503 and a
``Retry-After`` estimated from the line ahead of it and the recent render time:
memory stays bounded (a place holds at most one master) whatever the clients
do, and a CDN or a browser knows when to come back.

It also says when the process is idle (``alone``): the one render running then
may use every core (libvips threads), as a first viewer behind a CDN is always
a lone request.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

RETRY_AFTER_MAX = 60
INITIAL_RENDER_SECONDS = 0.2  # the estimate before the first render is timed
SMOOTHING = 0.2  # weight of the newest render in the running mean


class LineFull(Exception):
    """No place left in line; ``retry_after`` is in whole seconds."""

    def __init__(self, retry_after: int):
        super().__init__(f"every render slot is busy and {retry_after} s of work is waiting")
        self.retry_after = retry_after


class RenderLine:
    def __init__(self, slots: int, waiting: int):
        if slots < 1 or waiting < 0:
            raise ValueError("a render line needs at least one slot and no negative wait")
        self.slots = slots
        self.waiting = waiting
        self._limiter = anyio.CapacityLimiter(slots)
        self.placed = 0  # requests in line or rendering
        self.rendering = 0
        self.render_seconds = INITIAL_RENDER_SECONDS

    @property
    def alone(self) -> bool:
        """Whether the render that just started is the only one in this process."""
        return self.placed == 1

    def retry_after(self) -> int:
        """Seconds until the line ahead of a newcomer has drained, at the recent pace."""
        ahead = self.placed - self.slots + 1
        seconds = max(1, ahead) * self.render_seconds / self.slots
        return max(1, min(RETRY_AFTER_MAX, math.ceil(seconds)))

    @asynccontextmanager
    async def place(self) -> AsyncIterator[RenderLine]:
        """A place in line, or :class:`LineFull` at once; hold it while the source is
        read and rendered (``async with line.slot()``)."""
        if self.placed >= self.slots + self.waiting:
            raise LineFull(self.retry_after())
        self.placed += 1
        try:
            yield self
        finally:
            self.placed -= 1

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """A render slot, in the order places were asked for (anyio's limiter is FIFO)."""
        async with self._limiter:
            self.rendering += 1
            started = time.monotonic()
            try:
                yield
            finally:
                self.rendering -= 1
                took = time.monotonic() - started
                self.render_seconds += SMOOTHING * (took - self.render_seconds)
