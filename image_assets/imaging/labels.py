"""Taggers: what is in a picture, as labels with a confidence.

A tagger is anything with a ``name`` and ``labels(image_bytes)``; the assets only
see this interface, so another service (a local model, another cloud) is one
class here. A tagger that cannot answer raises :class:`TaggerUnavailable` with a
one-line reason: the image keeps its hashes and colours, its labels are marked
missing with that reason, and the catalogue never fails for it.
"""

from __future__ import annotations

from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from image_assets.records import ImageLabel


class TaggerUnavailable(Exception):
    """The tagger could not label this image (down, throttled, refused); one line."""


class Tagger(Protocol):
    name: str

    def labels(self, image: bytes) -> list[ImageLabel]:
        """Labels of a JPEG or PNG ``image``; raises :class:`TaggerUnavailable`."""
        ...


class RekognitionTagger:
    """Amazon Rekognition ``DetectLabels`` on the image bytes (JPEG or PNG, at most
    5 MB: the tags step sends a small JPEG rendition). The client's own retry mode
    handles throttling first; what is still refused after it is unavailable."""

    name = "rekognition"

    def __init__(self, client: Any, max_labels: int = 10, min_confidence: float = 70.0):
        self.client = client
        self.max_labels = max_labels
        self.min_confidence = min_confidence

    def labels(self, image: bytes) -> list[ImageLabel]:
        try:
            answer = self.client.detect_labels(
                Image={"Bytes": image},
                MaxLabels=self.max_labels,
                MinConfidence=self.min_confidence,
            )
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise TaggerUnavailable(
                f"rekognition: {error.get('Code', 'error')}: {error.get('Message', '')}".strip()
            ) from None
        except BotoCoreError as exc:
            raise TaggerUnavailable(f"rekognition: {type(exc).__name__}: {exc}") from None
        return [
            ImageLabel(name=str(label["Name"]), confidence=round(float(label["Confidence"]), 1))
            for label in answer.get("Labels", [])
        ]
