"""Attachments: files, folders, stdin and pictures read into a prompt (issue 15).

Pure reading, no UI: :func:`~.read.read_attachments` turns what the user named
(``tide ask -a PATH``, later the app's ``@path``) into :class:`~.model.Attachments`,
refusing bad input with a :class:`~tokentide.errors.UsageError` *before* anything is
sent; :mod:`.prompt` makes the user message from them.  :mod:`.gitignore` is the
folder walk's reading of ``.gitignore`` files.
"""

from tokentide.attach.model import Attachments, ImageFile, Limits, TextFile
from tokentide.attach.prompt import attached_message, check_backend, saved_text, user_message
from tokentide.attach.read import read_attachments

__all__ = [
    "Attachments",
    "ImageFile",
    "Limits",
    "TextFile",
    "attached_message",
    "check_backend",
    "read_attachments",
    "saved_text",
    "user_message",
]
