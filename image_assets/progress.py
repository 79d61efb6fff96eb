"""Progress lines for long steps: done/total and rate, at most every few seconds."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

Say = Callable[[str], None]


class ProgressReporter:
    """Call :meth:`advance` once per item; lines go to ``say`` every ``every`` seconds and at the end."""

    def __init__(self, say: Say, label: str, total: int, every: float = 5.0):
        self.say, self.label, self.total, self.every = say, label, total, every
        self.done = 0
        self.started = time.monotonic()
        self._last = self.started
        self._lock = threading.Lock()

    def advance(self, n: int = 1) -> None:
        with self._lock:
            self.done += n
            now = time.monotonic()
            if self.done < self.total and now - self._last < self.every:
                return
            self._last = now
            elapsed = max(now - self.started, 1e-6)
            line = f"{self.label}: {self.done}/{self.total} ({self.done / elapsed:.1f}/s)"
        self.say(line)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started
