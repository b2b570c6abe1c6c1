"""``tide chat --conversation`` takes the id prefixes ``tide history`` takes (issue 11).

A real ``python -m tokentide chat``: an ambiguous or unknown prefix is a usage error
(exit 2) before the app starts; a unique prefix opens the conversation in a real
terminal (tmux).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tokentide.history.store import HistoryStore

ROOT = Path(__file__).resolve().parents[1]


def shared_start(a: str, b: str) -> str:
    """The longest common start of two different ids."""
    return a[: next(i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y)]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("TIDE_", "TMUX"))}
    environ.update(
        TIDE_CONFIG=str(tmp_path / "config.toml"),
        TIDE_DATA_DIR=str(tmp_path / "data"),
        TERM="xterm-256color",
        PYTHONPATH=str(ROOT / "src"),
    )
    return environ


def _two_conversations(data: Path) -> tuple[str, str]:
    with HistoryStore.open(data / "history.sqlite3") as store:
        first = store.create_conversation(title="Kyoto trip")
        store.add_message(first, "user", "Plan a trip to Kyoto")
        second = store.create_conversation(title="Second chat")
        store.add_message(second, "user", "hello")
    return first, second


def chat(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tokentide", "chat", *args],
        capture_output=True, text=True, env=env, timeout=60, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def test_an_ambiguous_prefix_exits_2_listing_the_candidates(env: dict[str, str]) -> None:
    first, second = _two_conversations(Path(env["TIDE_DATA_DIR"]))
    shared = shared_start(first, second)
    result = chat("--conversation", shared, env=env)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"tide: 2 conversation ids start with {shared!r}:")
    assert first in result.stderr and second in result.stderr
    assert "Kyoto trip" in result.stderr and "Second chat" in result.stderr


def test_an_unknown_id_exits_2(env: dict[str, str]) -> None:
    _two_conversations(Path(env["TIDE_DATA_DIR"]))
    result = chat("--conversation", "zzzz", env=env)
    assert result.returncode == 2
    assert "No conversation 'zzzz' in the history." in result.stderr


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
def test_a_unique_prefix_opens_the_conversation(env: dict[str, str]) -> None:
    first, second = _two_conversations(Path(env["TIDE_DATA_DIR"]))
    prefix = first[: len(shared_start(first, second)) + 1]
    socket = f"tide-test-{uuid.uuid4().hex[:10]}"

    def tmux(*args: str) -> str:
        return subprocess.run(
            ["tmux", "-L", socket, *args],
            capture_output=True, text=True, env=env, check=True, timeout=10,
        ).stdout  # fmt: skip

    command = f"{sys.executable} -m tokentide chat --conversation {prefix}"
    tmux("-f", "/dev/null", "new-session", "-d", "-x", "120", "-y", "40", command)
    try:
        deadline = time.monotonic() + 30
        screen = ""
        while "Plan a trip to Kyoto" not in screen:  # wait for the conversation itself
            assert time.monotonic() < deadline, f"never shown; last capture:\n{screen}"
            screen = tmux("capture-pane", "-p", "-t", "0")
            time.sleep(0.05)
        assert "hello" not in screen  # the other conversation is not the one opened
        tmux("send-keys", "-t", "0", "C-q")
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, check=False)
