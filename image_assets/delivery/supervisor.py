"""``image-assets serve``: the worker processes on one listening socket, supervised.

This process binds the socket and starts each worker (``python -m image_assets.delivery.worker``)
with the socket inherited; starts a worker again when one dies, or when its
event loop has sent no heartbeat for ``IMAGE_ASSETS_DELIVERY_WORKER_TIMEOUT``
seconds (30; it is killed first); and stops them all on SIGTERM or SIGINT. It
imports only the standard library: 14 MB, against 39 MB for uvicorn's own
supervisor and the resource tracker that its ``multiprocessing`` start method
brings (measured with two workers; every megabyte here counts against the
service's memory). The configuration is checked first in a short-lived process,
so a wrong setting ends ``serve`` with its one-line reason instead of workers
failing one after another.

The workers start with glibc's malloc asked for transparent huge pages
(``GLIBC_TUNABLES=glibc.malloc.hugetlb=1``, glibc 2.35 and later; elsewhere it
does nothing). Each worker gives image buffers back to the system when freed
(``server.return_image_buffers_to_the_system``), so every render maps its
buffers afresh: in 4 KB pages that is thousands of page faults, about 14 ms of a
190 ms 1600 px render on one core, and in 2 MB pages a few dozen. An operator's
own ``glibc.malloc.hugetlb`` setting wins.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

from image_assets.delivery.worker import STARTUP_FAILURE

HUGE_PAGES = "glibc.malloc.hugetlb=1"
STOP_GRACE_SECONDS = 30  # uvicorn finishes the requests in flight, then exits
RESTARTS_BEFORE_GIVING_UP = 5  # deaths in a row, each within a second of starting
SILENCE_SECONDS = 30  # IMAGE_ASSETS_DELIVERY_WORKER_TIMEOUT: no heartbeat for this long


def with_huge_pages(tunables: str) -> str:
    """``GLIBC_TUNABLES`` with malloc's huge pages on, unless it already says either way."""
    if "glibc.malloc.hugetlb=" in tunables:
        return tunables
    return f"{tunables}:{HUGE_PAGES}" if tunables else HUGE_PAGES


def serve(host: str, port: int, workers: int) -> int:
    """Serve until stopped; 2 when the configuration is refused before starting."""
    os.environ.setdefault("IMAGE_ASSETS_DELIVERY_URL", f"http://{host}:{port}")
    raw_silence = os.environ.get("IMAGE_ASSETS_DELIVERY_WORKER_TIMEOUT") or str(SILENCE_SECONDS)
    if not raw_silence.isdigit() or int(raw_silence) < 2:
        print(
            "error: IMAGE_ASSETS_DELIVERY_WORKER_TIMEOUT must be a whole number of seconds,"
            f" at least 2, not {raw_silence!r}",
            file=sys.stderr,
        )
        return 2
    silence = int(raw_silence)
    check = subprocess.run(
        [sys.executable, "-m", "image_assets.delivery.server"], stdout=subprocess.DEVNULL
    )
    if check.returncode != 0:
        return 2  # the reason is already on stderr
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listener = socket.create_server((host, port), family=family, backlog=2048)
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        print(f"error: cannot serve on {host}:{port} ({reason})", file=sys.stderr)
        return 2
    # Read by glibc when a process starts, so it reaches the workers, not this process
    # (a lone worker too: it is a process of its own, supervised like any other).
    os.environ["GLIBC_TUNABLES"] = with_huge_pages(os.environ.get("GLIBC_TUNABLES", ""))
    with listener:
        return Supervisor(listener, workers, silence).run()


@dataclass
class Worker:
    process: subprocess.Popen
    heartbeats: int  # the read end of the pipe the worker's event loop writes to
    started: float
    last_heard: float


class Supervisor:
    """Keeps ``count`` workers serving ``listener`` until SIGTERM or SIGINT.

    A worker that exits is started again; one whose event loop has sent no
    heartbeat for ``silence_seconds`` (it is stuck, or stopped) is killed and
    started again.
    """

    def __init__(self, listener: socket.socket, count: int, silence_seconds: float):
        self.listener = listener
        self.count = count
        self.silence_seconds = silence_seconds
        self.stopping = False

    def _start(self) -> Worker:
        fd = self.listener.fileno()
        read_end, write_end = os.pipe()
        os.set_blocking(read_end, False)
        command = [sys.executable, "-m", "image_assets.delivery.worker"]
        process = subprocess.Popen(
            [*command, str(fd), str(os.getpid()), str(write_end)], pass_fds=(fd, write_end)
        )
        os.close(write_end)
        now = time.monotonic()
        return Worker(process, read_end, now, now)

    def _heard(self, worker: Worker) -> bool:
        """Whether ``worker`` has sent a heartbeat lately (reads what it has sent)."""
        try:
            while os.read(worker.heartbeats, 4096):
                worker.last_heard = time.monotonic()
        except BlockingIOError:
            pass
        return time.monotonic() - worker.last_heard < self.silence_seconds

    def _stop(self, signum: int, frame: object) -> None:
        self.stopping = True

    def run(self) -> int:
        previous = {sig: signal.signal(sig, self._stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        workers = [self._start() for _ in range(self.count)]
        quick_deaths = 0
        code = 0
        try:
            while not self.stopping:
                time.sleep(0.2)
                for slot, worker in enumerate(workers):
                    status = worker.process.poll()
                    if self.stopping or (status is None and self._heard(worker)):
                        continue
                    if status is None:
                        worker.process.kill()
                        worker.process.wait()
                        reason = f"sent no heartbeat for {self.silence_seconds:g} s; killed it"
                    elif status == STARTUP_FAILURE:
                        print("error: a worker could not start; stopping", file=sys.stderr)
                        self.stopping, code = True, 2
                        break
                    else:
                        reason = f"exited with {status}"
                    quick = time.monotonic() - worker.started < 1
                    quick_deaths = quick_deaths + 1 if quick else 0
                    if quick_deaths >= RESTARTS_BEFORE_GIVING_UP:
                        print("error: workers keep dying at start; stopping", file=sys.stderr)
                        self.stopping, code = True, 1
                        break
                    print(
                        f"worker {worker.process.pid} {reason}; starting another",
                        file=sys.stderr,
                        flush=True,
                    )
                    os.close(worker.heartbeats)
                    workers[slot] = self._start()
        finally:
            for worker in workers:
                if worker.process.poll() is None:
                    worker.process.terminate()
            deadline = time.monotonic() + STOP_GRACE_SECONDS
            for worker in workers:
                try:
                    worker.process.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    worker.process.kill()
                    worker.process.wait()
                os.close(worker.heartbeats)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return code
