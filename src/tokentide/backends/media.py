"""Pictures as the protocol carries them: :class:`ImageData` in a user
:class:`~tokentide.backends.base.Message` (``images``), written by each dialect in its
own shape (OpenAI ``image_url`` parts with ``data:`` URLs, Anthropic ``image`` blocks
with a base64 source, Ollama ``images``).  A backend that cannot take them says so
through its capability (:func:`tokentide.backends.base.takes_images`), and the caller
refuses before sending: a picture is never dropped silently.

The refusal lives here too (:func:`refuse_images`, :class:`ImagesRefused`): every
dialect without a place for pictures calls it before building a request body.

Near a leaf: of tokentide it imports only the error tree (the request and profile types
for annotations only), so :mod:`~tokentide.backends.base` can import it.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from tokentide.errors import BackendError, UsageError

if TYPE_CHECKING:
    from tokentide.backends.base import GenerationRequest
    from tokentide.config.model import Profile

__all__ = [
    "IMAGE_APIS",
    "IMAGE_TYPES",
    "ImageData",
    "ImagesRefused",
    "anthropic_content",
    "backend_label",
    "base64_text",
    "data_url",
    "has_images",
    "ollama_images",
    "openai_content",
    "refuse_images",
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


# -- the refusal ------------------------------------------------------------------------


def has_images(request: GenerationRequest) -> bool:
    """Whether any message of ``request`` carries a picture."""
    return any(message.images for message in request.messages)


class ImagesRefused(UsageError, BackendError):
    """A request with pictures reached a backend that cannot take them.  The caller
    should have refused it first (:func:`takes_images`); this is the last line of
    defence, so a picture is never dropped silently.  A :class:`UsageError` (exit 2:
    nothing was sent) and a :class:`BackendError`, so a generation ends with it as an
    error, not as a crash."""


IMAGE_APIS = ("openai", "anthropic", "ollama")
"""The apis whose dialect carries pictures (for the refusal's advice)."""


def refuse_images(request: GenerationRequest, who: str, server: str | None = None) -> None:
    """Raise :class:`ImagesRefused` if ``request`` carries pictures: called by every
    dialect that has no place for them before it builds a request body.  ``who`` names
    the backend as a person knows it (:func:`backend_label`)."""
    if not has_images(request):
        return
    images = [image for message in request.messages for image in message.images]
    named = [image.name for image in images if image.name]
    what = f"{len(images)} picture{'s' if len(images) != 1 else ''}"
    if named:
        what += f": {', '.join(named[:3])}{', …' if len(named) > 3 else ''}"
    raise ImagesRefused(
        f"{who} cannot take pictures ({what}); use a profile whose server can "
        f"(api {', '.join(repr(a) for a in IMAGE_APIS)}).",
        server=server,
        hint="Send the prompt without the pictures, or choose a profile for a vision "
        "model (vLLM or llama.cpp server through api 'openai', Claude, Ollama).",
    )


def backend_label(profile: Profile | None, api: str) -> str:
    """``Profile 'x' (api 'tgi')``, or ``The 'local' backend`` without a profile."""
    if profile is None:
        return f"The {api!r} backend"
    return f"Profile {profile.name!r} (api {api!r})"
