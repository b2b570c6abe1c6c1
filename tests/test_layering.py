"""The layering contracts in pyproject.toml ([tool.importlinter]) hold, and they are
real checks: the same contracts fail on a tree where a domain module imports the app,
and on one where the config reaches up into the chat session (a cycle)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def lint(src: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run(
        [str(LINT), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        capture_output=True, text=True, env=env, cwd=src.parent, timeout=120, check=False,
    )  # fmt: skip


def test_the_domain_never_imports_the_views_or_the_commands() -> None:
    result = lint(ROOT / "src")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_domain_module_that_imports_textual_breaks_the_contract(tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(ROOT / "src" / "tokentide", src / "tokentide",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    # A deferred import, as a hurried fix would write it, still counts.
    (src / "tokentide" / "backends" / "shortcut.py").write_text(
        "def show() -> None:\n    from tokentide.tui.app import ChatApp\n\n    del ChatApp\n"
    )
    result = lint(src)
    assert result.returncode == 1, result.stdout
    assert "The domain never imports the views, Textual or the commands BROKEN" in result.stdout
    assert "tokentide.backends.shortcut -> tokentide.tui.app" in result.stdout


def test_a_cycle_between_top_level_parts_breaks_the_contract(tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(ROOT / "src" / "tokentide", src / "tokentide",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    # The chat session reads the config; the config reaching back is a cycle.
    (src / "tokentide" / "config" / "shortcut.py").write_text(
        "def titles() -> None:\n    from tokentide.chat.labels import model_label\n\n"
        "    del model_label\n"
    )
    result = lint(src)
    assert result.returncode == 1, result.stdout
    out = " ".join(result.stdout.split())  # the report wraps long names
    assert "No import cycle between the top-level parts, deferred imports included BROKEN" in out
    assert "The layers: commands, views, the domain" in out
    assert "tokentide.config.shortcut -> tokentide.chat.labels" in out
