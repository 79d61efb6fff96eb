"""Typed failure kinds: why a page, an image or a publication failed.

Every failure the pipeline records carries one :class:`FailureKind` next to its
human-readable ``reason``. Metadata groups failures by kind, checks and
callers branch on the kind, and nothing ever parses a reason string back.
"""

from __future__ import annotations

from enum import StrEnum


class FailureKind(StrEnum):
    # fetching (scraping/http.py)
    HTTP_STATUS = "http_status"  # the server answered, with an error status
    TIMEOUT = "timeout"
    CONNECTION = "connection"  # refused, reset, unreachable, broken mid-body
    DNS = "dns"
    TOO_LARGE = "too_large"  # over a byte limit (download or file)
    REDIRECTS = "redirects"  # too many, or a redirect without Location
    REFUSED_URL = "refused_url"  # bad scheme, private or link-local address
    ROBOTS = "robots"  # disallowed by robots.txt
    UNPARSABLE = "unparsable"  # a page whose content is not what its extractor reads
    # decoding (imaging/decode.py)
    EMPTY = "empty"
    NOT_AN_IMAGE = "not_an_image"  # HTML, SVG/XML, unknown bytes
    UNSUPPORTED_FORMAT = "unsupported_format"
    BOMB = "bomb"  # pixel or side limit: a decompression bomb
    CORRUPT = "corrupt"  # truncated or damaged
    NOT_A_FILE = "not_a_file"  # a symlink, FIFO or device where a file was expected
    # publishing (cdn/)
    CDN_AUTH = "cdn_auth"  # credentials refused: retrying does not help
    CDN_TRANSIENT = "cdn_transient"  # rate limit, 5xx, network: retried, then given up
    CDN_REJECTED = "cdn_rejected"  # the CDN refused the request itself
    # the pipeline's own
    MISSING_ORIGINAL = "missing_original"
    NOT_RENDERED = "not_rendered"
    INTERNAL = "internal"  # a bug: the message says what
