"""A local server that speaks Cloudinary's upload, destroy, resource and usage APIs
as the official SDK sends them, and verifies every request's credentials.

Upload API calls are multipart POSTs signed with SHA-1 over the sorted
``key=value`` parameters plus the API secret (signature version 2: ``&`` in
values escaped); Admin API calls use HTTP Basic auth with key and secret.
A request signed with another secret is answered 401, as Cloudinary does.
Faults can be injected per request (status codes, slow answers).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, unquote, urlsplit

from PIL import Image

from image_assets.demo.serving import serve

Fault = tuple[str, float] | None  # ("status", 500) | ("sleep", 2.0) | None
FaultPlan = Callable[[str, str, int], Fault]  # (action, public_id, attempt) -> fault


def string_to_sign(params: dict[str, str]) -> str:
    return "&".join(sorted(f"{k}={v}".replace("&", "%26") for k, v in params.items() if v))


@dataclass
class FakeCloudinary:
    cloud_name: str = "demo-cloud"
    api_key: str = "123456789012345"
    api_secret: str = "s3cr3t-Abc-Def-Ghi-Jkl"
    credits_limit: float = 25.0
    bytes_per_credit: float = 1e9
    faults: FaultPlan | None = None
    resources: dict[str, dict] = field(default_factory=dict)
    stored: Counter = field(default_factory=Counter)  # successful stores per public_id
    attempts: Counter = field(default_factory=Counter)  # upload requests per public_id
    rejected: int = 0
    requests: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> FakeCloudinary:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def do_POST(self):
                owner._post(self)

            def do_GET(self):
                owner._get(self)

        self.server = serve(Handler)
        return self

    def stop(self) -> None:
        self.server.stop()

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def cloudinary_url(self) -> str:
        return f"cloudinary://{self.api_key}:{self.api_secret}@{self.cloud_name}"

    # -- plumbing ------------------------------------------------------------------

    def _send(self, handler, status: int, payload: dict) -> None:
        body = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json; charset=utf-8")
        handler.send_header("Content-Length", str(len(body)))
        handler.send_header("X-Request-Id", hashlib.md5(body).hexdigest()[:16])
        handler.end_headers()
        handler.wfile.write(body)

    def _error(self, handler, status: int, message: str) -> None:
        self._send(handler, status, {"error": {"message": message}})

    def _form(self, handler) -> dict[str, str | bytes]:
        length = int(handler.headers.get("Content-Length", 0))
        body = handler.rfile.read(length)
        ctype = handler.headers.get("Content-Type", "")
        if ctype.startswith("multipart/form-data"):
            msg = BytesParser(policy=HTTP).parsebytes(
                b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + body
            )
            form: dict[str, str | bytes] = {}
            for part in msg.iter_parts():
                name = part.get_param("name", header="content-disposition")
                payload = part.get_payload(decode=True)
                form[name] = payload if part.get_filename() else payload.decode()
            return form
        return {k: v[-1] for k, v in parse_qs(body.decode()).items()}

    def _signed(self, handler, form: dict) -> bool:
        params = {
            k: v
            for k, v in form.items()
            if k not in ("file", "api_key", "signature", "resource_type")
        }
        expected = hashlib.sha1((string_to_sign(params) + self.api_secret).encode()).hexdigest()
        ok = form.get("api_key") == self.api_key and form.get("signature") == expected
        if not ok:
            with self.lock:
                self.rejected += 1
            self._error(
                handler,
                401,
                "Invalid Signature "
                + str(form.get("signature"))
                + ". String to sign - '"
                + string_to_sign(params)
                + "'.",
            )
            return False
        if abs(time.time() - int(form.get("timestamp", 0))) > 3600:
            self._error(handler, 400, "Stale request - reported time is too old")
            return False
        return True

    def _basic_auth(self, handler) -> bool:
        header = handler.headers.get("Authorization", "")
        expected = (
            "Basic " + base64.b64encode(f"{self.api_key}:{self.api_secret}".encode()).decode()
        )
        if header != expected:
            with self.lock:
                self.rejected += 1
            self._error(handler, 401, "Invalid credentials")
            return False
        return True

    def _fault(self, handler, action: str, public_id: str, attempt: int) -> bool:
        fault = self.faults(action, public_id, attempt) if self.faults else None
        if fault is None:
            return False
        kind, value = fault
        if kind == "sleep":
            time.sleep(value)
            return False  # slow, but it goes through
        self._error(
            handler, int(value), "Injected fault" if value != 429 else "Rate Limit Exceeded"
        )
        return True

    # -- API -----------------------------------------------------------------------

    def _post(self, handler) -> None:
        path = urlsplit(handler.path).path
        self.requests.append(f"POST {path}")
        prefix = f"/v1_1/{self.cloud_name}/image/"
        if not path.startswith(prefix):
            return self._error(handler, 404, "Not found")
        action = path[len(prefix) :]
        form = self._form(handler)
        if not self._signed(handler, form):
            return None
        if action == "upload":
            return self._upload(handler, form)
        if action == "destroy":
            with self.lock:
                gone = self.resources.pop(str(form["public_id"]), None)
            return self._send(handler, 200, {"result": "ok" if gone else "not found"})
        return self._error(handler, 404, f"Unknown action {action}")

    def _upload(self, handler, form: dict) -> None:
        folder, name = str(form.get("folder", "")), str(form.get("public_id", ""))
        public_id = f"{folder}/{name}" if folder else name
        with self.lock:
            self.attempts[public_id] += 1
            attempt = self.attempts[public_id]
        if self._fault(handler, "upload", public_id, attempt):
            return None
        data = form["file"]
        assert isinstance(data, bytes)
        with Image.open(io.BytesIO(data)) as img:
            width, height, fmt = (
                img.width,
                img.height,
                (img.format or "").lower().replace("jpeg", "jpg"),
            )
        context = dict(
            pair.split("=", 1) for pair in str(form.get("context", "")).split("|") if "=" in pair
        )
        with self.lock:
            version = max(int(time.time()), self.resources.get(public_id, {}).get("version", 0) + 1)
            resource = {
                "asset_id": hashlib.md5(public_id.encode()).hexdigest(),
                "public_id": public_id,
                "version": version,
                "version_id": hashlib.md5(f"{public_id}{version}".encode()).hexdigest(),
                "width": width,
                "height": height,
                "format": fmt,
                "resource_type": "image",
                "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "tags": [],
                "bytes": len(data),
                "type": "upload",
                "etag": hashlib.md5(data).hexdigest(),
                "placeholder": False,
                "url": f"http://res.cloudinary.com/{self.cloud_name}/image/upload/v{version}/{public_id}.{fmt}",
                "secure_url": f"https://res.cloudinary.com/{self.cloud_name}/image/upload/v{version}/{public_id}.{fmt}",
                "asset_folder": folder,
                "display_name": name.rsplit("/", 1)[-1],
                "original_filename": name.rsplit("/", 1)[-1],
                "context": {"custom": context} if context else {},
                "_data": data,
            }
            self.resources[public_id] = resource
            self.stored[public_id] += 1
        out = {k: v for k, v in resource.items() if k not in ("_data", "context")}
        out["api_key"] = self.api_key
        return self._send(handler, 200, out)

    def _get(self, handler) -> None:
        parts = urlsplit(handler.path)
        self.requests.append(f"GET {parts.path}")
        if not self._basic_auth(handler):
            return None
        base = f"/v1_1/{self.cloud_name}"
        if parts.path == f"{base}/usage":
            return self._send(handler, 200, self.usage())
        prefix = f"{base}/resources/image/upload/"
        if parts.path.startswith(prefix):
            public_id = unquote(parts.path[len(prefix) :])
            with self.lock:
                resource = self.resources.get(public_id)
            if resource is None:
                return self._error(handler, 404, f"Resource not found - {public_id}")
            return self._send(handler, 200, {k: v for k, v in resource.items() if k != "_data"})
        return self._error(handler, 404, "Not found")

    def usage(self) -> dict:
        with self.lock:
            stored = sum(r["bytes"] for r in self.resources.values())
            count = len(self.resources)
        storage_credits = stored / self.bytes_per_credit
        return {
            "plan": "Free",
            "last_updated": time.strftime("%Y-%m-%d"),
            "date_requested": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "transformations": {"usage": 0, "credits_usage": 0.0},
            "objects": {"usage": count},
            "bandwidth": {"usage": 0, "credits_usage": 0.0},
            "storage": {"usage": stored, "credits_usage": storage_credits},
            "credits": {
                "usage": storage_credits,
                "limit": self.credits_limit,
                "used_percent": round(100 * storage_credits / self.credits_limit, 2),
            },
            "requests": len(self.requests),
            "resources": count,
            "derived_resources": 0,
            "media_limits": {"image_max_size_bytes": 10485760},
        }

    def held_bytes(self, public_id: str) -> bytes:
        return self.resources[public_id]["_data"]
