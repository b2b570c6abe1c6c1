"""The layering contract in pyproject.toml ([tool.importlinter]) holds, and it is a
real check: the same contract fails on a tree where a domain module imports Textual."""

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
