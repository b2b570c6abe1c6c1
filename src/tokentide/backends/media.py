"""Pictures as the protocol carries them: :class:`ImageData` in a user
:class:`~tokentide.backends.base.Message` (``images``), written by each dialect in its
own shape (OpenAI ``image_url`` parts with ``data:`` URLs, Anthropic ``image`` blocks
with a base64 source, Ollama ``images``).  A backend that cannot take them says so
through its capability (:func:`tokentide.backends.base.takes_images`), and the caller
refuses before sending: a picture is never dropped silently.

A leaf module: it imports nothing of tokentide.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "IMAGE_TYPES",
    "ImageData",
    "anthropic_content",
    "base64_text",
    "data_url",
    "ollama_images",
    "openai_content",
]

IMAGE_TYPES: Final = ("image/png", "image/jpeg", "image/gif", "image/webp")
"""The media types every dialect that takes pictures accepts."""


@dataclass(frozen=True, slots=True)
class ImageData:
    """One picture: its media type (one of :data:`IMAGE_TYPES`) and its bytes."""

    media_type: str
    data: bytes
    name: str = ""
    """Where it came from (a file name), for messages; not sent."""


# -- on the wire ------------------------------------------------------------------------
# Each dialect's shape for a user turn with pictures.  Only a turn that has pictures is
# written this way: one without stays ``"content": "<text>"``, byte for byte as before.


def base64_text(image: ImageData) -> str:
    """The picture's bytes in standard base64 (with padding), as every dialect takes it."""
    return base64.b64encode(image.data).decode("ascii")


def data_url(image: ImageData) -> str:
    """``data:<media type>;base64,<bytes>``: OpenAI's ``image_url.url`` for inline data."""
    return f"data:{image.media_type};base64,{base64_text(image)}"


def openai_content(text: str, images: Sequence[ImageData]) -> list[dict[str, Any]]:
    """OpenAI chat ``content`` parts: the text first (left out when empty: an empty text
    part says nothing and some servers refuse it), then one ``image_url`` part each."""
    parts: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    parts.extend({"type": "image_url", "image_url": {"url": data_url(i)}} for i in images)
    return parts


def anthropic_content(text: str, images: Sequence[ImageData]) -> list[dict[str, Any]]:
    """Anthropic content blocks: the pictures first (Anthropic's documentation says
    Claude does best with images before the text about them), then the text, left out
    when empty (the API refuses an empty text block)."""
    blocks: list[dict[str, Any]] = [
        {
            "type": "image",
            "source": {"type": "base64", "media_type": i.media_type, "data": base64_text(i)},
        }
        for i in images
    ]
    if text:
        blocks.append({"type": "text", "text": text})
    return blocks


def ollama_images(images: Sequence[ImageData]) -> list[str]:
    """Ollama's ``images`` beside ``content``: bare base64, no media type (Ollama looks
    at the bytes)."""
    return [base64_text(i) for i in images]
