"""A local server that speaks Cloudinary's Upload and Admin APIs as the official SDK
sends them, and holds clients to the public spec rather than to the project's habits.

Written from Cloudinary's documentation (upload, destroy, get resources, get a
resource, usage; authentication and rate limits), strict where Cloudinary is:

- **Upload API signatures**: every parameter except ``file``, ``cloud_name``,
  ``resource_type``, ``api_key`` and ``signature`` is signed; ``key=value``
  pairs sorted and joined with ``&`` (``&`` inside values escaped, signature
  version 2), array parameters (``k[]``, sent once per element) joined with
  ``,``, then hashed with the API secret by the account's algorithm (SHA-1 or
  SHA-256; the other one is refused, as the account setting makes Cloudinary
  do). Wrong signatures get 401; requests older than an hour get 400.
- **overwrite / invalidate**: ``overwrite`` defaults to true for signed
  uploads; ``overwrite=false`` on an existing public id keeps the stored asset
  and answers it with ``existing: true``. Replacing an asset without
  ``invalidate`` leaves the old bytes in the CDN's cache (``stale_cache``);
  ``invalidations`` counts the purges asked for.
- **Rate limits**: an injected 429 carries ``Retry-After``, and a retry of the
  same public id before that time is counted in ``early_retries``. The Admin
  API has an hourly budget (``admin_limit``): every Admin answer carries
  ``X-FeatureRateLimit-Limit/-Remaining/-Reset``, and a call over budget gets
  420 "Rate Limit Exceeded", as Cloudinary answers.
- **Tags** (``POST image/tags``): ``public_ids[]`` as an array parameter.
- **Admin API**: HTTP Basic auth; ``GET resources/image/upload`` lists by
  ``prefix`` with ``max_results`` (at most 500, else 400) and ``next_cursor``,
  or by ``public_ids[]``; context only when ``context=true``. ``DELETE
  resources/image/upload`` takes a JSON body of at most 100 ``public_ids`` (and
  ``invalidate``) and answers ``deleted`` or ``not_found`` for each.
- **destroy** (Upload API) answers ``not found`` for an unknown public id, as
  Cloudinary does. ``usage`` counts the bytes held, so storage falls as assets go.

Faults can be injected per request (status codes, slow answers).
"""

from __future__ import annotations

import base64
import email.utils
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
from typing import Literal
from urllib.parse import parse_qsl, unquote, urlsplit

from PIL import Image

from image_assets.demo.serving import serve

Fault = tuple[str, float] | None  # ("status", 500) | ("sleep", 2.0) | None
FaultPlan = Callable[[str, str, int], Fault]  # (action, public_id, attempt) -> fault
Form = dict[str, "str | bytes | list[str]"]

UNSIGNED = ("file", "cloud_name", "resource_type", "api_key", "signature")
MAX_RESULTS = 500


def string_to_sign(params: Form) -> str:
    """Cloudinary's string to sign (signature version 2)."""
    pairs = []
    for key, value in params.items():
        if key in UNSIGNED or not value:
            continue
        text = ",".join(value) if isinstance(value, list) else str(value)
        pairs.append(f"{key}={text}".replace("&", "%26"))
    return "&".join(sorted(pairs))


def truthy(value: object, default: bool) -> bool:
    if value is None or value == "":
        return default
    return str(value).lower() in ("1", "true")


@dataclass
class FakeCloudinary:
    cloud_name: str = "demo-cloud"
    api_key: str = "123456789012345"
    api_secret: str = "s3cr3t-Abc-Def-Ghi-Jkl"
    signature_algorithm: Literal["sha1", "sha256"] = "sha1"
    credits_limit: float = 25.0
    bytes_per_credit: float = 1e9
    retry_after: float = 1.0  # seconds in the Retry-After of an injected 429
    admin_limit: int = 500  # Admin API calls an hour
    faults: FaultPlan | None = None
    resources: dict[str, dict] = field(default_factory=dict)
    stored: Counter = field(default_factory=Counter)  # successful stores per public_id
    attempts: Counter = field(default_factory=Counter)  # upload requests per public_id
    invalidations: Counter = field(default_factory=Counter)  # CDN purges per public_id
    deleted: Counter = field(default_factory=Counter)  # Admin API deletions per public_id
    stale_cache: set = field(default_factory=set)  # replaced without invalidate
    kept_existing: Counter = field(default_factory=Counter)  # overwrite=false on a held id
    early_retries: int = 0  # retries sooner than the Retry-After we sent
    admin_calls: int = 0
    admin_refused: int = 0
    rejected: int = 0
    requests: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _not_before: dict[str, float] = field(default_factory=dict)
    _window_start: float = field(default_factory=time.time)

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

            def do_DELETE(self):
                owner._delete(self)

        self.server = serve(Handler)
        return self

    def stop(self) -> None:
        self.server.stop()

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def cloudinary_url(self) -> str:
        url = f"cloudinary://{self.api_key}:{self.api_secret}@{self.cloud_name}"
        if self.signature_algorithm != "sha1":
            url += f"?signature_algorithm={self.signature_algorithm}"
        return url

    # -- plumbing ------------------------------------------------------------------

    def _send(
        self, handler, status: int, payload: dict, headers: dict[str, str] | None = None
    ) -> None:
        body = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json; charset=utf-8")
        handler.send_header("Content-Length", str(len(body)))
        handler.send_header("X-Request-Id", hashlib.md5(body).hexdigest()[:16])
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)

    def _error(
        self, handler, status: int, message: str, headers: dict[str, str] | None = None
    ) -> None:
        self._send(handler, status, {"error": {"message": message}}, headers)

    def _form(self, handler) -> Form:
        length = int(handler.headers.get("Content-Length", 0))
        body = handler.rfile.read(length)
        ctype = handler.headers.get("Content-Type", "")
        fields: list[tuple[str, str | bytes]] = []
        if ctype.startswith("multipart/form-data"):
            msg = BytesParser(policy=HTTP).parsebytes(
                b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + body
            )
            for part in msg.iter_parts():
                name = part.get_param("name", header="content-disposition")
                payload = part.get_payload(decode=True)
                fields.append((name, payload if part.get_filename() else payload.decode()))
        else:
            fields = list(parse_qsl(body.decode(), keep_blank_values=True))
        return collect(fields)

    def _signed(self, handler, form: Form) -> bool:
        digest = hashlib.sha256 if self.signature_algorithm == "sha256" else hashlib.sha1
        expected = digest((string_to_sign(form) + self.api_secret).encode()).hexdigest()
        ok = form.get("api_key") == self.api_key and form.get("signature") == expected
        if not ok:
            with self.lock:
                self.rejected += 1
            self._error(
                handler,
                401,
                f"Invalid Signature {form.get('signature')}. "
                f"String to sign - '{string_to_sign(form)}'.",
            )
            return False
        if abs(time.time() - int(str(form.get("timestamp", 0)))) > 3600:
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

    def _admin_budget(self, handler) -> dict[str, str] | None:
        """The rate-limit headers of this Admin call, or None once 420 has been sent."""
        with self.lock:
            now = time.time()
            if now - self._window_start >= 3600:
                self._window_start, self.admin_calls = now, 0
            over = self.admin_calls >= self.admin_limit
            if over:
                self.admin_refused += 1
            else:
                self.admin_calls += 1
            headers = {
                "X-FeatureRateLimit-Limit": str(self.admin_limit),
                "X-FeatureRateLimit-Remaining": str(max(0, self.admin_limit - self.admin_calls)),
                "X-FeatureRateLimit-Reset": email.utils.formatdate(
                    self._window_start + 3600, usegmt=True
                ),
            }
        if over:
            self._error(handler, 420, "Rate Limit Exceeded", headers)
            return None
        return headers

    def _fault(self, handler, action: str, public_id: str, attempt: int) -> bool:
        fault = self.faults(action, public_id, attempt) if self.faults else None
        if fault is None:
            return False
        kind, value = fault
        if kind == "sleep":
            time.sleep(value)
            return False  # slow, but it goes through
        if int(value) == 429:
            with self.lock:
                self._not_before[public_id] = time.time() + self.retry_after
            self._error(
                handler,
                429,
                "Rate Limit Exceeded",
                {"Retry-After": str(max(1, round(self.retry_after)))},
            )
            return True
        self._error(handler, int(value), "Injected fault")
        return True

    # -- Upload API ----------------------------------------------------------------

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
            public_id = str(form["public_id"])
            with self.lock:
                gone = self.resources.pop(public_id, None)
                if gone and truthy(form.get("invalidate"), False):
                    self.invalidations[public_id] += 1
            return self._send(handler, 200, {"result": "ok" if gone else "not found"})
        if action == "tags":
            return self._tags(handler, form)
        return self._error(handler, 404, f"Unknown action {action}")

    def _tags(self, handler, form: Form) -> None:
        """``add``/``remove`` a tag on ``public_ids[]`` (an array parameter, signed as a list)."""
        ids, tag, command = form.get("public_ids"), str(form.get("tag", "")), form.get("command")
        if not isinstance(ids, list) or not tag or command not in ("add", "remove"):
            return self._error(handler, 400, "public_ids[], tag and command are required")
        with self.lock:
            for public_id in ids:
                tags = self.resources.get(public_id, {}).get("tags")
                if tags is None:
                    continue
                if command == "add" and tag not in tags:
                    tags.append(tag)
                elif command == "remove" and tag in tags:
                    tags.remove(tag)
        return self._send(handler, 200, {"public_ids": ids})

    def _upload(self, handler, form: Form) -> None:
        folder, name = str(form.get("folder", "")), str(form.get("public_id", ""))
        public_id = f"{folder}/{name}" if folder else name
        with self.lock:
            self.attempts[public_id] += 1
            attempt = self.attempts[public_id]
            if time.time() < self._not_before.get(public_id, 0.0):
                self.early_retries += 1
        if self._fault(handler, "upload", public_id, attempt):
            return None
        data = form.get("file")
        if not isinstance(data, bytes):
            return self._error(handler, 400, "Missing required parameter - file")
        try:
            with Image.open(io.BytesIO(data)) as img:
                width, height = img.width, img.height
                fmt = (img.format or "").lower().replace("jpeg", "jpg")
        except Exception:
            return self._error(handler, 400, "Invalid image file")
        context = dict(
            pair.split("=", 1) for pair in str(form.get("context", "")).split("|") if "=" in pair
        )
        overwrite = truthy(form.get("overwrite"), True)
        invalidate = truthy(form.get("invalidate"), False)
        with self.lock:
            held = self.resources.get(public_id)
            if held is not None and not overwrite:
                self.kept_existing[public_id] += 1
                out = self._answer(held) | {"existing": True}
                return self._send(handler, 200, out)
            if held is not None:
                if invalidate:
                    self.invalidations[public_id] += 1
                    self.stale_cache.discard(public_id)
                elif held["_data"] != data:
                    self.stale_cache.add(public_id)
            version = max(int(time.time()), (held or {}).get("version", 0) + 1)
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
        out = self._answer(resource) | {"api_key": self.api_key}
        return self._send(handler, 200, out)

    @staticmethod
    def _answer(resource: dict, context: bool = True) -> dict:
        hidden = {"_data"} if context else {"_data", "context"}
        return {k: v for k, v in resource.items() if k not in hidden}

    # -- Admin API -----------------------------------------------------------------

    def _get(self, handler) -> None:
        parts = urlsplit(handler.path)
        self.requests.append(f"GET {parts.path}")
        if not self._basic_auth(handler):
            return None
        headers = self._admin_budget(handler)
        if headers is None:
            return None
        query = collect(parse_qsl(parts.query, keep_blank_values=True))
        base = f"/v1_1/{self.cloud_name}"
        if parts.path == f"{base}/usage":
            return self._send(handler, 200, self.usage(), headers)
        listing = f"{base}/resources/image/upload"
        if parts.path == listing:
            return self._list(handler, query, headers)
        if parts.path.startswith(listing + "/"):
            public_id = unquote(parts.path[len(listing) + 1 :])
            with self.lock:
                resource = self.resources.get(public_id)
            if resource is None:
                return self._error(handler, 404, f"Resource not found - {public_id}", headers)
            return self._send(handler, 200, self._answer(resource), headers)
        return self._error(handler, 404, "Not found", headers)

    def _delete(self, handler) -> None:
        """Admin API ``DELETE resources/image/upload``: a JSON body with ``public_ids`` (at
        most 100, else 400) and ``invalidate``; each id answers ``deleted`` or
        ``not_found``. Basic auth and the hourly budget, as every Admin call."""
        parts = urlsplit(handler.path)
        self.requests.append(f"DELETE {parts.path}")
        length = int(handler.headers.get("Content-Length", 0))
        raw = handler.rfile.read(length)
        if not self._basic_auth(handler):
            return None
        headers = self._admin_budget(handler)
        if headers is None:
            return None
        if parts.path != f"/v1_1/{self.cloud_name}/resources/image/upload":
            return self._error(handler, 404, "Not found", headers)
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return self._error(handler, 400, "Invalid JSON body", headers)
        ids = body.get("public_ids")
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            return self._error(handler, 400, "Must supply public_ids, prefix or all", headers)
        if len(ids) > 100:
            return self._error(handler, 400, "Too many public_ids (max 100)", headers)
        invalidate = truthy(body.get("invalidate"), False)
        answers: dict[str, str] = {}
        with self.lock:
            for public_id in ids:
                gone = self.resources.pop(public_id, None)
                answers[public_id] = "deleted" if gone else "not_found"
                if gone is not None:
                    self.deleted[public_id] += 1
                    if invalidate:
                        self.invalidations[public_id] += 1
        counts = {i: {"original": int(a == "deleted"), "derived": 0} for i, a in answers.items()}
        payload = {"deleted": answers, "deleted_counts": counts, "partial": False}
        return self._send(handler, 200, payload, headers)

    def _list(self, handler, query: Form, headers: dict[str, str]) -> None:
        try:
            max_results = int(str(query.get("max_results") or 10))
        except ValueError:
            return self._error(handler, 400, "Invalid max_results", headers)
        if not 1 <= max_results <= MAX_RESULTS:
            return self._error(
                handler, 400, f"max_results must be between 1 and {MAX_RESULTS}", headers
            )
        with_context = truthy(query.get("context"), False)
        with self.lock:
            held = sorted(self.resources.values(), key=lambda r: r["public_id"])
        ids = query.get("public_ids")
        if ids is not None:
            if not isinstance(ids, list):
                return self._error(handler, 400, "public_ids must be an array", headers)
            if len(ids) > 100:
                return self._error(handler, 400, "Too many public_ids (max 100)", headers)
            held = [r for r in held if r["public_id"] in ids]
        else:
            prefix = str(query.get("prefix", ""))
            held = [r for r in held if r["public_id"].startswith(prefix)]
        start = int(str(query.get("next_cursor") or 0))
        page = held[start : start + max_results]
        payload: dict = {"resources": [self._answer(r, with_context) for r in page]}
        if start + max_results < len(held):
            payload["next_cursor"] = str(start + max_results)
        return self._send(handler, 200, payload, headers)

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


def collect(fields: list[tuple[str, str | bytes]]) -> Form:
    """Form fields as Cloudinary reads them: ``k[]`` repeated makes the array ``k``."""
    form: Form = {}
    for name, value in fields:
        if name.endswith("[]"):
            items = form.setdefault(name[:-2], [])
            assert isinstance(items, list)
            items.append(value.decode() if isinstance(value, bytes) else value)
        else:
            form[name] = value
    return form
