"""Cloudinary credentials: from AWS Secrets Manager (JSON secret) or ``CLOUDINARY_URL``.

The secret is JSON ``{"cloud_name", "api_key", "api_secret"}``. The API secret
is a pydantic ``SecretStr``: it never shows in a repr, a log line, metadata or
an exception message built from these objects.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, SecretStr, ValidationError

DEFAULT_SECRET_NAME = "blog-data/cloudinary/credentials"


class CredentialsUnavailable(RuntimeError):
    """No usable credentials; the message says why and never contains a secret."""


class CloudinaryCredentials(BaseModel):
    cloud_name: str
    api_key: str
    api_secret: SecretStr

    def scrub(self, text: str) -> str:
        """``text`` with the API secret (and key) replaced, for error messages from the SDK."""
        secret = self.api_secret.get_secret_value()
        if secret:
            text = text.replace(secret, "***")
        return text.replace(self.api_key, "***") if self.api_key else text


def from_cloudinary_url(url: str) -> CloudinaryCredentials:
    """Parse ``cloudinary://api_key:api_secret@cloud_name``."""
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
    return CloudinaryCredentials(
        cloud_name=parts.hostname,
        api_key=unquote(parts.username),
        api_secret=SecretStr(unquote(parts.password)),
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
            f"secret {secret_name!r} is not JSON with cloud_name, api_key and api_secret"
        ) from None
