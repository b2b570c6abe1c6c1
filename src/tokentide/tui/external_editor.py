"""Compose a prompt in the user's own editor (``$VISUAL``, then ``$EDITOR``).

The draft goes into a private temporary file (mode 0600, removed afterwards), the app
suspends (Textual gives the terminal back), the editor runs, and what it saved comes
back.  The editor command is split as a shell would (``code --wait``, ``emacs -nw``)
but not run through a shell, so nothing in a variable is interpreted twice.

The domain knows nothing of this: it is a view concern, like the clipboard.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

__all__ = ["EditorError", "edit_text", "editor_command"]


class EditorError(Exception):
    """The editor could not be used; the message is written for the user."""


def editor_command(env: Mapping[str, str] | None = None) -> list[str]:
    """The editor to run, as argv: ``$VISUAL``, else ``$EDITOR``."""
    env = os.environ if env is None else env
    for name in ("VISUAL", "EDITOR"):
        value = env.get(name, "").strip()
        if not value:
            continue
        try:
            argv = shlex.split(value)
        except ValueError as error:
            raise EditorError(f"${name} cannot be read as a command ({error}).") from None
        if argv:
            return argv
    raise EditorError(
        "No editor is set: export VISUAL or EDITOR (for example EDITOR=nano) "
        "to compose prompts in an editor."
    )


def edit_text(text: str, argv: list[str]) -> str:
    """Run ``argv`` on a temporary file holding ``text``; return what it saved.

    Blocks until the editor exits.  Raises :class:`EditorError` if it cannot be started
    or exits with a failure (the draft is then left as it was, as git does).
    """
    fd, name = tempfile.mkstemp(prefix="tide-prompt-", suffix=".md")
    path = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
        try:
            result = subprocess.run([*argv, str(path)], check=False)
        except OSError as error:
            raise EditorError(
                f"Could not start the editor {argv[0]!r}: {error.strerror}."
            ) from None
        if result.returncode != 0:
            raise EditorError(
                f"The editor {argv[0]!r} exited with status {result.returncode}; "
                "the prompt was left as it was."
            )
        edited = path.read_text(encoding="utf-8", errors="replace")
    finally:
        path.unlink(missing_ok=True)
    # Editors end the last line with a newline the user did not type as a line.
    if edited.endswith("\n") and not text.endswith("\n"):
        edited = edited[:-1]
    return edited
