"""A strict checker of S3 browser-based uploads (POST Object with a SigV4 policy), written
from AWS's documentation, standing where S3 would; what passes is stored in the real
(moto) bucket. moto itself accepts such posts without checking the policy, so a test
against it alone could not fail.

Checked as S3 does: the policy's signature (HMAC-SHA256 with the key derived from the
secret, date, region and "s3"), its expiration, every condition (exact matches,
``eq``, ``starts-with``, ``content-length-range``, the bucket), and that every form
field but ``x-amz-signature``, ``file``, ``policy`` and ``x-ignore-*`` is covered by a
condition. Refusals are S3's: 403 AccessDenied ("Invalid according to Policy: ..."),
400 EntityTooLarge / EntityTooSmall.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Callable
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler

from image_assets.demo.serving import serve

Store = Callable[[str, str, bytes, str], None]  # (bucket, key, data, content type)


def _signing_key(secret: str, date: str, region: str) -> bytes:
    key = f"AWS4{secret}".encode()
    for part in (date, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


class S3PostChecker:
    def __init__(self, secrets: dict[str, str], store: Store):
        self.secrets = secrets  # access key id -> secret key
        self.store = store
        self.refused: list[str] = []

    def start(self) -> S3PostChecker:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                owner._post(self)

        self.server = serve(Handler)
        return self

    def stop(self) -> None:
        self.server.stop()

    @property
    def url(self) -> str:
        return self.server.url

    def _answer(self, handler, status: int, code: str = "", message: str = "") -> None:
        body = b""
        if code:
            self.refused.append(f"{code}: {message}")
            body = (
                f"<?xml version='1.0' encoding='UTF-8'?>\n<Error><Code>{code}</Code>"
                f"<Message>{message}</Message></Error>"
            ).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/xml")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def _post(self, handler) -> None:
        bucket = handler.path.strip("/").split("/")[0]
        length = int(handler.headers.get("Content-Length", 0))
        raw = handler.rfile.read(length)
        ctype = handler.headers.get("Content-Type", "")
        msg = BytesParser(policy=HTTP).parsebytes(
            b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + raw
        )
        fields: dict[str, str] = {}
        data: bytes | None = None
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if name == "file":
                data = part.get_payload(decode=True)
                break  # S3 ignores fields after the file
            fields[name] = part.get_payload(decode=True).decode()
        if data is None:
            return self._answer(handler, 400, "InvalidArgument", "POST requires a file field")
        lowered = {k.lower(): v for k, v in fields.items()}
        try:
            policy_b64 = lowered["policy"]
            credential = lowered["x-amz-credential"]
            signature = lowered["x-amz-signature"]
            assert lowered["x-amz-algorithm"] == "AWS4-HMAC-SHA256"
        except (KeyError, AssertionError):
            return self._answer(handler, 403, "AccessDenied", "missing policy or signature fields")
        access_key, date, region, *_ = credential.split("/")
        secret = self.secrets.get(access_key)
        if secret is None:
            return self._answer(handler, 403, "InvalidAccessKeyId", "unknown access key")
        expected = hmac.new(
            _signing_key(secret, date, region), policy_b64.encode(), hashlib.sha256
        ).hexdigest()
        if not hmac.compare_digest(expected, signature):
            return self._answer(handler, 403, "SignatureDoesNotMatch", "policy signature")
        policy = json.loads(base64.b64decode(policy_b64))
        expires = dt.datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
        if expires < dt.datetime.now(dt.UTC):
            return self._answer(
                handler, 403, "AccessDenied", "Invalid according to Policy: Policy expired."
            )
        covered = {"bucket"}
        values = {k.lower(): v for k, v in fields.items()} | {"bucket": bucket}
        size_range = None
        for condition in policy["conditions"]:
            if isinstance(condition, dict):
                ((name, value),) = condition.items()
                name = name.lower()
                ok = values.get(name) == value
                covered.add(name)
            elif condition[0] == "content-length-range":
                size_range = (int(condition[1]), int(condition[2]))
                continue
            else:
                op, name, value = condition
                name = name.lstrip("$").lower()
                covered.add(name)
                got = values.get(name, "")
                ok = got == value if op == "eq" else got.startswith(value)
            if not ok:
                return self._answer(
                    handler,
                    403,
                    "AccessDenied",
                    f"Invalid according to Policy: Policy Condition failed: {condition}",
                )
        extra = {
            k
            for k in values
            if k not in covered
            and k not in ("x-amz-signature", "policy", "file")
            and not k.startswith("x-ignore-")
        }
        if extra:
            return self._answer(
                handler,
                403,
                "AccessDenied",
                f"Invalid according to Policy: Extra input fields: {sorted(extra)}",
            )
        if size_range is not None:
            low, high = size_range
            if len(data) > high:
                return self._answer(handler, 400, "EntityTooLarge", "over the policy's maximum")
            if len(data) < low:
                return self._answer(handler, 400, "EntityTooSmall", "under the policy's minimum")
        self.store(bucket, fields["key"], data, values.get("content-type", ""))
        return self._answer(handler, 204)
