"""Reading what the user attached: files, folders, stdin, pictures.

Everything is read and checked before a request is made, so a refusal (a
:class:`~tokentide.errors.UsageError`, exit 2 in ``tide ask``) means nothing was sent.
A file's kind is its content, never its extension: a picture by its magic bytes (PNG,
JPEG, GIF, WebP), binary by a NUL byte in its first 8000 bytes (git's test), anything
else is text, UTF-8 or decoded with replacement (and a note saying so).
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Final

from tokentide.attach.gitignore import Rules
from tokentide.attach.model import Attachments, ImageFile, Limits, TextFile, human_size
from tokentide.backends.media import ImageData
from tokentide.errors import UsageError

__all__ = ["STDIN", "image_type", "read_attachments"]

STDIN: Final = "-"
VCS_DIRS: Final = frozenset({".git", ".hg", ".svn"})
_SNIFF: Final = 8000
_KINDS: Final = "PNG, JPEG, GIF or WebP"


def image_type(data: bytes) -> str | None:
    """The media type of a picture the dialects take, from its first bytes; else None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def read_attachments(
    specs: Sequence[str],
    *,
    limits: Limits | None = None,
    stdin: IO[bytes] | IO[str] | None = None,
    cwd: Path | str | None = None,
) -> Attachments:
    """Read each spec (a path, or ``-`` for ``stdin``) in order; raise
    :class:`UsageError` naming the path and the limit for anything that cannot go."""
    reader = _Reader(limits or Limits(), Path.cwd() if cwd is None else Path(cwd))
    for spec in specs:
        if spec == STDIN:
            reader.stdin(stdin)
        else:
            reader.path(spec)
    return Attachments(tuple(reader.texts), tuple(reader.images), tuple(reader.notes))


class _Reader:
    def __init__(self, limits: Limits, cwd: Path) -> None:
        self.limits = limits
        self.cwd = cwd
        self.texts: list[TextFile] = []
        self.images: list[ImageFile] = []
        self.notes: list[str] = []
        self.total = 0
        self.seen: set[str] = set()
        self.read_stdin = False

    def stdin(self, stream: IO[bytes] | IO[str] | None) -> None:
        if self.read_stdin:
            return
        if stream is None or stream.isatty():
            raise UsageError(
                "-a - attaches stdin, but nothing is piped in.",
                hint="Pipe something in (cat notes.md | tide ask -a - ...) or name a file.",
            )
        self.read_stdin = True
        data = stream.read(self.limits.max_file_bytes + 1)
        raw = data.encode() if isinstance(data, str) else data
        if not raw:
            raise UsageError("-a - attaches stdin, but stdin was empty.")
        self._over_file("stdin", len(raw), len(data) > self.limits.max_file_bytes)
        self._take("stdin", raw, named=True)

    def path(self, spec: str) -> None:
        path = self.cwd / Path(spec).expanduser()
        try:
            info = path.stat()
            is_dir = path.is_dir()
        except FileNotFoundError:
            raise UsageError(f"cannot attach {spec}: no such file or folder.") from None
        except OSError as error:
            raise UsageError(f"cannot attach {spec}: {error.strerror or error}.") from None
        key = os.path.realpath(path)
        if is_dir:
            self.folder(path, posixpath.normpath(spec.replace(os.sep, "/")))
            return
        if key in self.seen:
            return
        self.seen.add(key)
        self._over_file(spec, info.st_size)
        self._take(spec, self._read(path, spec), named=True)

    def folder(self, root: Path, label: str) -> None:
        files: list[tuple[str, Path]] = []
        _walk(root, "", Rules(), files)
        taken = binary = 0
        for relative, path in files:
            key = os.path.realpath(path)
            if key in self.seen:
                continue
            name = posixpath.join(label, relative) if label != "." else relative
            try:
                size = path.stat().st_size
            except OSError:
                continue  # gone or unreadable since the walk: not one of its files
            if size > self.limits.max_file_bytes:
                raise UsageError(
                    f"cannot attach {label}: {name} is {human_size(size)}, over the limit "
                    f"of {human_size(self.limits.max_file_bytes)} a file.",
                    hint="Leave it out with a .gitignore in the folder, or attach the files you need.",
                )
            data = self._read(path, name)
            if image_type(data) is not None or b"\0" in data[:_SNIFF]:
                binary += 1
                continue
            taken += 1
            if taken > self.limits.max_folder_files:
                raise UsageError(
                    f"cannot attach {label}: it has more than {self.limits.max_folder_files} "
                    "text files, the limit for a folder.",
                    hint="Attach a smaller folder, or leave files out with a .gitignore.",
                )
            self.seen.add(key)
            self._take(name, data, named=False, folder=label)
        if binary:
            self.notes.append(f"{label}: {binary} binary file{'s' * (binary != 1)} skipped")
        if not taken:
            self.notes.append(f"{label}: no text files to attach")

    def _read(self, path: Path, name: str) -> bytes:
        try:
            with path.open("rb") as file:
                data = file.read(self.limits.max_file_bytes + 1)
        except OSError as error:
            raise UsageError(f"cannot attach {name}: {error.strerror or error}.") from None
        self._over_file(name, len(data))
        return data

    def _over_file(self, name: str, size: int, over: bool = False) -> None:
        if over or size > self.limits.max_file_bytes:
            shown = (
                "more than " + human_size(self.limits.max_file_bytes) if over else human_size(size)
            )
            raise UsageError(
                f"cannot attach {name}: it is {shown}, over the limit of "
                f"{human_size(self.limits.max_file_bytes)} a file."
            )

    def _take(self, name: str, data: bytes, *, named: bool, folder: str | None = None) -> None:
        if self.total + len(data) > self.limits.max_total_bytes:
            what = f"{folder} (at {name})" if folder is not None else name
            raise UsageError(
                f"cannot attach {what}: the attachments come to more than "
                f"{human_size(self.limits.max_total_bytes)}, the limit for one message.",
                hint="Attach less, or send it in several prompts.",
            )
        self.total += len(data)
        media_type = image_type(data)
        if media_type is not None:
            image = ImageData(media_type, data, name=posixpath.basename(name))
            self.images.append(ImageFile(name, image))
            return
        if b"\0" in data[:_SNIFF]:
            raise UsageError(
                f"cannot attach {name}: it is a binary file, neither text nor a picture ({_KINDS})."
            )
        try:
            text, replaced = data.decode("utf-8"), False
        except UnicodeDecodeError:
            text, replaced = data.decode("utf-8", "replace"), True
            self.notes.append(f"{name} is not UTF-8: read with U+FFFD (�) for what was not")
        self.texts.append(TextFile(name, text.removeprefix("\ufeff"), len(data), replaced))


def _walk(folder: Path, relative: str, rules: Rules, into: list[tuple[str, Path]]) -> None:
    """The files of ``folder`` not hidden, not VCS and not excluded, sorted by path;
    symbolic links to folders are not followed (no loops)."""
    try:
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except OSError:
        return
    ignore = folder / ".gitignore"
    if ignore.is_file():
        try:
            rules = rules.below(relative, ignore.read_text("utf-8", "replace"))
        except OSError:
            pass
    for entry in entries:
        if entry.name.startswith(".") or entry.name in VCS_DIRS:
            continue
        path = f"{relative}/{entry.name}" if relative else entry.name
        try:
            is_dir = entry.is_dir(follow_symlinks=False)
            is_file = entry.is_file()
        except OSError:
            continue
        if rules.excludes(path, is_dir=is_dir):
            continue
        if is_dir:
            _walk(Path(entry.path), path, rules, into)
        elif is_file:
            into.append((path, Path(entry.path)))
