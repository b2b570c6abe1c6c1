"""``tide`` with no command: the chat on a terminal, ``tide ask`` with piped stdin (the
typer root invokes the command with its context)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

from tokentide.cli.app import app, register_subcommands


def test_no_command_on_a_terminal_opens_the_chat(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    opened: list[dict[str, Any]] = []

    def run_chat(settings: object, profile: object, **kwargs: Any) -> int:
        opened.append(kwargs)
        return 0

    import tokentide.cli.app
    import tokentide.tui.app

    monkeypatch.setattr(tokentide.tui.app, "run_chat", run_chat)
    # The runner swaps sys.stdin for a pipe of its own: the root is told it is a terminal.
    terminal = SimpleNamespace(stdin=SimpleNamespace(isatty=lambda: True))
    monkeypatch.setattr(tokentide.cli.app, "sys", terminal)
    register_subcommands()
    config = tmp_path / "config.toml"
    config.write_text(
        'default = "p"\n[profiles.p]\napi = "openai"\nurl = "http://127.0.0.1:9/v1"\n'
    )
    result = CliRunner().invoke(app, ["--config", str(config)])
    assert result.exit_code == 0, result.output
    assert len(opened) == 1 and opened[0]["continue_last"] is False


def test_no_command_with_piped_stdin_is_ask(tmp_path: Path) -> None:
    register_subcommands()
    config = tmp_path / "config.toml"
    config.write_text(
        'default = "p"\n[profiles.p]\napi = "openai"\nurl = "http://127.0.0.1:9/v1"\n'
    )
    # An empty pipe: ask's own usage error (exit 2), not a TypeError from the root.
    result = CliRunner().invoke(app, ["--config", str(config)], input="")
    assert result.exit_code == 2, result.output
    assert "No prompt given" in result.output
