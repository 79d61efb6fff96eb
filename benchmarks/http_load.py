"""A load generator shaped like the clients an image service really has.

Two shapes, because they load a server differently:
  * ``keep-alive``: ``concurrency`` persistent connections, each sending its next
    request as soon as the last answer arrived, as a CDN's shield or a browser
    does. A server that pins a connection to one worker process sees exactly
    these connections and no others;
  * ``fresh``: a new connection per request (``Connection: close``), as many
    short-lived clients do; every request is a new accept, so the kernel spreads
    them over the workers that are ready.
And a ``burst``: ``count`` requests at once, each on its own new connection,
released together by a barrier: what a page of 64 new images does to an empty
CDN cache.

The client is ``http.client`` in threads: next to a 100 ms render it costs a few
tenths of a millisecond of CPU per request, so it takes little from the cores
being measured. Beside the rate and latencies it reads the machine's CPU time
(``/proc/stat``) over the run: the busy share says whether the cores sat idle
while requests waited.
"""

from __future__ import annotations

import http.client
import statistics
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit


def cpu_times() -> tuple[float, float]:
    """(busy, busy + idle) jiffies of the whole machine since boot (``/proc/stat``)."""
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal: time stolen by the hypervisor
    # is neither ours nor idle, so it is left out of both
    busy = fields[0] + fields[1] + fields[2] + fields[5] + fields[6]
    return busy, busy + fields[3] + fields[4]


@dataclass
class LoadResult:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    sizes: dict[str, list[int]] = field(default_factory=dict)
    retry_after: int = 0  # 503 answers that said when to come back
    wall: float = 0.0
    cpu_busy: float = 0.0  # share of the machine's cores busy over the run

    @property
    def requests(self) -> int:
        return len(self.latencies)

    @property
    def per_s(self) -> float:
        return self.statuses.get(200, 0) / self.wall if self.wall else 0.0

    def percentile(self, share: float) -> float:
        ordered = sorted(self.latencies)
        return 1000 * ordered[min(len(ordered) - 1, int(share * len(ordered)))]

    @property
    def p50_ms(self) -> float:
        return 1000 * statistics.median(self.latencies)

    @property
    def p95_ms(self) -> float:
        return self.percentile(0.95)

    def mean_bytes(self, label: str) -> float:
        return statistics.mean(self.sizes[label])

    def record(self, label: str, answer: http.client.HTTPResponse, size: int, took: float) -> None:
        """One answer (the caller holds the lock)."""
        self.latencies.append(took)
        self.statuses[answer.status] = self.statuses.get(answer.status, 0) + 1
        if answer.status == 200:
            self.sizes.setdefault(label, []).append(size)
        elif answer.status == 503 and (answer.getheader("Retry-After") or "").isdigit():
            self.retry_after += 1

    def timed(self, threads: list[threading.Thread]) -> None:
        """Run ``threads`` to the end, keeping the wall time and the machine's busy share."""
        busy0, total0 = cpu_times()
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.wall = time.perf_counter() - started
        busy1, total1 = cpu_times()
        self.cpu_busy = (busy1 - busy0) / max(1, total1 - total0)


def _connection(url: str) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)


def _target(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def run(
    urls: Sequence[tuple[str, str]],
    concurrency: int,
    shape: str,
    seconds: float,
    accept: str = "image/webp,*/*",
) -> LoadResult:
    """Send every ``(label, url)`` once over ``concurrency`` clients of ``shape``
    (``keep-alive`` or ``fresh``), stopping early after ``seconds``."""
    if shape not in ("keep-alive", "fresh"):
        raise ValueError(f"unknown client shape {shape!r}")
    result = LoadResult()
    queue = iter(list(urls))
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    failures: list[str] = []

    def client() -> None:
        conn: http.client.HTTPConnection | None = None
        while time.monotonic() < deadline and not failures:
            with lock:
                item = next(queue, None)
            if item is None:
                break
            label, url = item
            if conn is None:
                conn = _connection(url)
            headers = {"Accept": accept}
            if shape == "fresh":
                headers["Connection"] = "close"
            started = time.perf_counter()
            try:
                conn.request("GET", _target(url), headers=headers)
                answer = conn.getresponse()
                body = answer.read()
            except (OSError, http.client.HTTPException) as exc:
                failures.append(f"{url}: {type(exc).__name__}: {exc}")
                break
            took = time.perf_counter() - started
            if answer.status not in (200, 503):
                failures.append(f"{url}: {answer.status} {body[:200]!r}")
            with lock:
                result.record(label, answer, len(body), took)
            if shape == "fresh" or answer.will_close:
                conn.close()
                conn = None
        if conn is not None:
            conn.close()

    result.timed([threading.Thread(target=client, daemon=True) for _ in range(concurrency)])
    if failures:
        raise SystemExit(failures[0])
    return result


def burst(urls: Sequence[tuple[str, str]], accept: str = "image/webp,*/*") -> LoadResult:
    """Every url at once, each on a new connection, released together."""
    result = LoadResult()
    lock = threading.Lock()
    gate = threading.Barrier(len(urls))
    failures: list[str] = []

    def one(label: str, url: str) -> None:
        conn = _connection(url)
        gate.wait()
        started = time.perf_counter()
        try:
            conn.request("GET", _target(url), headers={"Accept": accept, "Connection": "close"})
            answer = conn.getresponse()
            body = answer.read()
        except (OSError, http.client.HTTPException) as exc:
            failures.append(f"{url}: {type(exc).__name__}: {exc}")
            return
        finally:
            conn.close()
        with lock:
            result.record(label, answer, len(body), time.perf_counter() - started)

    result.timed([threading.Thread(target=one, args=item, daemon=True) for item in urls])
    if failures:
        result.statuses[-1] = len(failures)  # no answer at all: reported, not hidden
    return result
