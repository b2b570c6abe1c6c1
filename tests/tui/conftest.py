"""Every app test runs with its own data directory (history, ui-state, exports), never
the user's."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "data"
    monkeypatch.setenv("TIDE_DATA_DIR", str(path))
    return path


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """The history database of an app test (its own, outside the data directory)."""
    return tmp_path / "history.sqlite3"
