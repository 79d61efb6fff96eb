"""Download 200 images from a local server that adds 100 ms per response.

Peers, in one run:
  * sequential ``requests.get`` (the seed pipeline's way);
  * the project's ``HttpClient`` with a thread pool the size of the per-host
    limit (what ``steps/originals.py`` does), at the default limit and at a
    higher one. The server counts requests in flight, to show the limit holds.

Usage: python benchmarks/http_download.py [--images 200] [--latency 0.1] [--per-host 4 12]
"""

from __future__ import annotations

import argparse
import multiprocessing
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

from image_assets.demo.images import ImageSpec, render_image
from image_assets.scraping.http import HttpClient, HttpSettings


class LatencyServer(ThreadingHTTPServer):
    """Runs in its own process (so it does not share the client's GIL); ``/_stats`` reports
    and resets the highest number of requests seen in flight."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, latency: float, body: bytes):
        self.latency, self.body = latency, body
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), Handler)


def _serve(latency: float, body: bytes, port_queue: multiprocessing.Queue) -> None:
    server = LatencyServer(latency, body)
    port_queue.put(server.server_address[1])
    server.serve_forever()


def max_in_flight(base: str) -> int:
    """Read and reset the server's in-flight high-water mark."""
    return int(requests.get(f"{base}/_stats", timeout=5).text)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # as real servers do; avoids 40 ms delayed-ACK stalls
    server: LatencyServer

    def do_GET(self) -> None:
        server = self.server
        if self.path == "/_stats":
            with server.lock:
                payload = str(server.max_in_flight).encode()
                server.max_in_flight = 0
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        with server.lock:
            server.in_flight += 1
            server.max_in_flight = max(server.max_in_flight, server.in_flight)
        try:
            time.sleep(server.latency)
            if self.path == "/robots.txt":
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(server.body)))
            self.end_headers()
            self.wfile.write(server.body)
        finally:
            with server.lock:
                server.in_flight -= 1

    def log_message(self, *args: object) -> None:
        pass


def sequential_requests(urls: list[str]) -> int:
    total = 0
    for url in urls:
        response = requests.get(url, timeout=30)
        response.raise_for_status()
        total += len(response.content)
    return total


def project_client(urls: list[str], per_host: int) -> int:
    settings = HttpSettings(
        per_host_concurrency=per_host, allowed_private_networks=("127.0.0.0/8",)
    )
    with HttpClient(settings) as client, ThreadPoolExecutor(max_workers=per_host) as pool:
        return sum(len(r.content) for r in pool.map(client.fetch, urls))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--per-host", type=int, nargs="+", default=[4, 12])
    args = parser.parse_args()

    body = render_image(ImageSpec("bench", 640, 480))
    ports: multiprocessing.Queue = multiprocessing.Queue()
    process = multiprocessing.Process(target=_serve, args=(args.latency, body, ports), daemon=True)
    process.start()
    base = f"http://127.0.0.1:{ports.get(timeout=30)}"
    urls = [f"{base}/img/{i}.jpg" for i in range(args.images)]
    print(
        f"{args.images} images of {len(body)} bytes, {args.latency * 1000:.0f} ms latency per response"
    )

    max_in_flight(base)
    started = time.perf_counter()
    sequential_requests(urls)
    seq = time.perf_counter() - started
    print(f"  requests.get, one at a time: {seq:6.2f} s  ({args.images / seq:6.1f} images/s)")

    for per_host in args.per_host:
        max_in_flight(base)
        started = time.perf_counter()
        project_client(urls, per_host)
        ours = time.perf_counter() - started
        seen = max_in_flight(base)
        print(
            f"  image_assets HttpClient, per-host limit {per_host:2d}: {ours:6.2f} s  "
            f"({args.images / ours:6.1f} images/s)  ratio {seq / ours:5.1f}x  "
            f"max in flight at the server: {seen} (limit {per_host}, "
            f"{'respected' if seen <= per_host else 'EXCEEDED'})"
        )
    process.terminate()


if __name__ == "__main__":
    main()
