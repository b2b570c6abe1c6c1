"""Pictures as the protocol carries them: :class:`ImageData` in a user
:class:`~tokentide.backends.base.Message` (``images``), written by each dialect in its
own shape (OpenAI ``image_url`` parts with ``data:`` URLs, Anthropic ``image`` blocks
with a base64 source, Ollama ``images``).  A backend that cannot take them says so
through its capability (:func:`tokentide.backends.base.takes_images`), and the caller
refuses before sending: a picture is never dropped silently.

A leaf module: it imports nothing of tokentide.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["IMAGE_TYPES", "ImageData"]

IMAGE_TYPES: Final = ("image/png", "image/jpeg", "image/gif", "image/webp")
"""The media types every dialect that takes pictures accepts."""


@dataclass(frozen=True, slots=True)
class ImageData:
    """One picture: its media type (one of :data:`IMAGE_TYPES`) and its bytes."""

    media_type: str
    data: bytes
    name: str = ""
    """Where it came from (a file name), for messages; not sent."""
