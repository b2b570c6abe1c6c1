"""Running ``tide`` as a real process in tests: a clean environment and the runner.

``clean_env(tmp_path)`` is the caller's environment without any ``TIDE_*`` or
``OPENAI*`` variable, with its own (absent) config file and data dir under
``tmp_path``; the ``env`` fixture in ``tests/conftest.py`` is exactly that.
"""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

__all__ = ["clean_env", "tide_bytes", "tide_on_a_terminal", "tide_text"]


def clean_env(tmp_path: Path, *, drop: tuple[str, ...] = ("TIDE_", "OPENAI")) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    environ["TIDE_CONFIG"] = str(tmp_path / "config.toml")
    environ["TIDE_DATA_DIR"] = str(tmp_path / "data")
    return environ


def tide_bytes(
    *args: str,
    env: dict[str, str],
    stdin: str | None = None,
    timeout: float = 60,
    python: tuple[str, ...] = (),
) -> subprocess.CompletedProcess[bytes]:
    """``python [python...] -m tokentide ARGS``; stdin is closed unless given."""
    return subprocess.run(
        [sys.executable, *python, "-m", "tokentide", *args],
        input=None if stdin is None else stdin.encode(),
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def tide_text(
    *args: str,
    env: dict[str, str],
    stdin: str | None = None,
    timeout: float = 60,
    python: tuple[str, ...] = (),
) -> subprocess.CompletedProcess[str]:
    """:func:`tide_bytes` in text mode (the locale's encoding, universal newlines)."""
    return subprocess.run(
        [sys.executable, *python, "-m", "tokentide", *args],
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def tide_on_a_terminal(*args: str, env: dict[str, str], timeout: float = 60) -> tuple[int, bytes]:
    """``python -m tokentide ARGS`` with stdout and stderr on a pty (stdin closed);
    the exit code and everything the terminal received, as it received it."""
    primary, secondary = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "tokentide", *args],
        stdin=subprocess.DEVNULL, stdout=secondary, stderr=secondary, env=env,
    )  # fmt: skip
    os.close(secondary)
    chunks = []
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(primary)
    return process.wait(timeout), b"".join(chunks)
