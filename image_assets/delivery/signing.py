"""Cloudinary's URL signatures: ``s--<signature>--`` over the transformation and the
public id, as the SDK computes them.

``base64url(hash(transformation + "/" + public_id[.ext] + api_secret))``, cut to
8 characters (SHA-1, or SHA-256 for accounts set to it) or 32 (the SDK's
``long_url_signature``, always SHA-256). The version is not signed. Compared in
constant time; the secret never leaves this module's arguments.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Literal

Algorithm = Literal["sha1", "sha256"]


def url_signature(
    signed_text: str, secret: str, algorithm: Algorithm = "sha1", length: int = 8
) -> str:
    digest = hashlib.new(algorithm, (signed_text + secret).encode()).digest()
    return "s--" + base64.urlsafe_b64encode(digest)[:length].decode() + "--"


def signature_valid(
    signature: str | None, signed_text: str, secret: str, algorithm: Algorithm = "sha1"
) -> bool:
    """Whether ``signature`` (the ``s--...--`` segment as written) signs ``signed_text``."""
    if not signature or not secret:
        return False
    if len(signature) == 3 + 32 + 2:  # the long form is SHA-256 whatever the account says
        expected = url_signature(signed_text, secret, "sha256", 32)
    else:
        expected = url_signature(signed_text, secret, algorithm, 8)
    return hmac.compare_digest(signature.encode(), expected.encode())
