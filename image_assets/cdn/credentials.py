"""Cloudinary credentials: from AWS Secrets Manager (JSON secret) or ``CLOUDINARY_URL``.

The secret is JSON ``{"cloud_name", "api_key", "api_secret"}`` plus, for
accounts set to SHA-256 signatures, ``"signature_algorithm": "sha256"`` (in a
``CLOUDINARY_URL``: ``?signature_algorithm=sha256``). The API secret
is a pydantic ``SecretStr``: it never shows in a repr, a log line, metadata or
an exception message built from these objects.
"""

from __future__ import annotations

import json
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import BaseModel, SecretStr, ValidationError

DEFAULT_SECRET_NAME = "blog-data/cloudinary/credentials"


class CredentialsUnavailable(RuntimeError):
    """No usable credentials; the message says why and never contains a secret."""


class CloudinaryCredentials(BaseModel):
    cloud_name: str
    api_key: str
    api_secret: SecretStr
    signature_algorithm: Literal["sha1", "sha256"] = "sha1"

    def scrub(self, text: str) -> str:
        """``text`` with the API secret (and key) replaced, for error messages from the SDK."""
        secret = self.api_secret.get_secret_value()
        if secret:
            text = text.replace(secret, "***")
        return text.replace(self.api_key, "***") if self.api_key else text


def from_cloudinary_url(url: str) -> CloudinaryCredentials:
    """Parse ``cloudinary://api_key:api_secret@cloud_name[?signature_algorithm=sha256]``."""
    parts = urlsplit(url)
    if (
        parts.scheme != "cloudinary"
        or not parts.hostname
        or not parts.username
        or not parts.password
    ):
        raise CredentialsUnavailable(
            "CLOUDINARY_URL must look like cloudinary://API_KEY:API_SECRET@CLOUD_NAME"
        )
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    algorithm = query.get("signature_algorithm", "sha1").lower()
    if algorithm not in ("sha1", "sha256"):
        raise CredentialsUnavailable(
            f"CLOUDINARY_URL signature_algorithm must be sha1 or sha256, not {algorithm!r}"
        )
    return CloudinaryCredentials(
        cloud_name=parts.hostname,
        api_key=unquote(parts.username),
        api_secret=SecretStr(unquote(parts.password)),
        signature_algorithm=algorithm,
    )


def from_secrets_manager(
    client: Any, secret_name: str = DEFAULT_SECRET_NAME
) -> CloudinaryCredentials:
    """Read the JSON secret through a boto3 Secrets Manager client."""
    try:
        value = client.get_secret_value(SecretId=secret_name)["SecretString"]
    except Exception as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
        raise CredentialsUnavailable(f"cannot read secret {secret_name!r}: {code}") from None
    try:
        return CloudinaryCredentials.model_validate(json.loads(value))
    except (json.JSONDecodeError, ValidationError, TypeError):
        raise CredentialsUnavailable(
            f"secret {secret_name!r} is not JSON with cloud_name, api_key and api_secret "
            "(and optionally signature_algorithm sha1 or sha256)"
        ) from None
