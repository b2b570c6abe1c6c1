"""What attachments are once read: text files, pictures, the notes the reader left,
and the limits it read them under.  Frozen dataclasses, no reading here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from tokentide.backends.media import ImageData

__all__ = ["MB", "Attachments", "ImageFile", "Limits", "TextFile", "human_size"]

MB: Final = 1_000_000


@dataclass(frozen=True, slots=True)
class Limits:
    """How much may be attached.  The defaults are issue 15's; the config keys that
    would set them are proposed in docs/attachments.md."""

    max_file_bytes: int = 10 * MB
    """One file (text or picture), as it is on disk."""
    max_total_bytes: int = 50 * MB
    """Everything attached to one message."""
    max_folder_files: int = 200
    """Text files one folder may attach (a folder's bytes count in the total)."""


@dataclass(frozen=True, slots=True)
class TextFile:
    """One text attachment: the label it is shown and sent with (the path as the user
    wrote it, or below a folder the folder's label joined with the file's relative
    path, ``/``-separated; ``stdin`` for ``-``), and its text."""

    label: str
    text: str
    size: int
    """Bytes as read (before decoding)."""
    replaced: bool = False
    """It was not UTF-8: undecodable bytes became U+FFFD."""

    @property
    def tokens(self) -> int:
        """A rough token estimate (4 characters a token) for the context figure."""
        return (len(self.text) + 3) // 4


@dataclass(frozen=True, slots=True)
class ImageFile:
    """One picture: its label, and the image as the protocol carries it."""

    label: str
    image: ImageData

    @property
    def size(self) -> int:
        return len(self.image.data)

    @property
    def tokens(self) -> int | None:
        """Unknown: what a picture costs depends on the server and the picture's size."""
        return None


@dataclass(frozen=True, slots=True)
class Attachments:
    """Everything read for one message, in the order given (a folder's files sorted by
    path), each file once."""

    texts: tuple[TextFile, ...] = ()
    images: tuple[ImageFile, ...] = ()
    notes: tuple[str, ...] = ()
    """For the user (not the model): text that was not UTF-8, binary files a folder
    skipped."""

    @property
    def total_bytes(self) -> int:
        return sum(t.size for t in self.texts) + sum(i.size for i in self.images)

    def __bool__(self) -> bool:
        return bool(self.texts or self.images)


def human_size(size: int) -> str:
    """``812 B``, ``120 kB``, ``5.2 MB`` (decimal units, as the limits are written)."""
    if size < 1000:
        return f"{size} B"
    if size < MB:
        return f"{size / 1000:.0f} kB"
    return f"{size / MB:.1f} MB".replace(".0 MB", " MB")
