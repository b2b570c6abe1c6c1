"""What the chat app remembers between runs that is not a conversation: the theme.

Kept in ``<data dir>/ui-state.json`` (``$TIDE_DATA_DIR`` first), written atomically (a
temporary file in the same directory, then ``os.replace``), so a crash mid-write leaves
the previous state.  A missing or unreadable file is simply no state.

The theme precedence is: the theme last chosen in the app, unless the config file's
``theme`` changed since that choice (then the config file wins, so editing the file
still works).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tokentide.config.paths import data_dir

__all__ = ["UiState", "load_ui_state", "save_ui_state", "state_path"]

FILE_NAME = "ui-state.json"


@dataclass(frozen=True, slots=True)
class UiState:
    theme: str | None = None
    """The theme last chosen in the app."""
    config_theme: str | None = None
    """The config file's ``theme`` when that choice was made."""

    def pick_theme(self, config_theme: str | None, default: str) -> str:
        if self.theme and self.config_theme == config_theme:
            return self.theme
        return config_theme or self.theme or default


def state_path() -> Path:
    return data_dir() / FILE_NAME


def load_ui_state(path: Path | None = None) -> UiState:
    path = state_path() if path is None else path
    try:
        raw: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return UiState()
    if not isinstance(raw, dict):
        return UiState()
    theme = raw.get("theme")
    config_theme = raw.get("config_theme")
    return UiState(
        theme=theme if isinstance(theme, str) else None,
        config_theme=config_theme if isinstance(config_theme, str) else None,
    )


def save_ui_state(state: UiState, path: Path | None = None) -> None:
    """Write ``state`` atomically.  Failures are swallowed: the theme is a nicety."""
    path = state_path() if path is None else path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=".ui-state-", suffix=".json", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                json.dump(asdict(state), file)
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
    except OSError:
        pass
