"""The tide command line outside `ask`: config commands, version, subcommand wiring."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers.llm_server import LLMServer


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TIDE_")}
    environ["TIDE_CONFIG"] = str(tmp_path / "cfg" / "config.toml")
    environ["TIDE_DATA_DIR"] = str(tmp_path / "data")
    return environ


def tide(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tokentide", *args],
        capture_output=True, text=True, env=env, timeout=60, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def test_config_init_path_and_show(env: dict[str, str]) -> None:
    path = Path(env["TIDE_CONFIG"])
    assert tide("config", "path", env=env).stdout.strip() == str(path)
    result = tide("config", "init", env=env)
    assert result.returncode == 0 and path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert tide("config", "init", env=env).returncode == 2  # never overwrites
    shown = tide("config", "show", env=env).stdout
    assert "[profiles.local]" in shown and "api = 'llamacpp'" in shown


def test_config_show_redacts_keys_and_headers(env: dict[str, str]) -> None:
    path = Path(env["TIDE_CONFIG"])
    path.parent.mkdir()
    path.write_text(
        '[profiles.p]\napi = "openai"\nurl = "http://h/v1"\napi_key = "sk-test-CANARY-123456"\n'
        'headers = { "X-Secret" = "hunter2-hunter2" }\n'
    )
    path.chmod(0o600)
    result = tide("config", "show", env=env)
    assert result.returncode == 0
    assert "sk-test-CANARY" not in result.stdout + result.stderr
    assert "hunter2" not in result.stdout + result.stderr
    assert "api_key = '***'" in result.stdout


def test_config_check_talks_to_the_server(env: dict[str, str], server: LLMServer) -> None:
    path = Path(env["TIDE_CONFIG"])
    path.parent.mkdir()
    path.write_text(f'default = "t"\n[profiles.t]\napi = "openai"\nurl = "{server.url()}/v1"\n')
    result = tide("config", "check", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok: openai")
    path.write_text(
        '[profiles.t]\napi = "openai"\nurl = "http://127.0.0.1:9/v1"\nmax_retries = 0\n'
    )
    dead = tide("config", "check", "-P", "t", env=env)
    assert dead.returncode == 3 and "Cannot connect" in dead.stderr


def test_version_and_subcommands(env: dict[str, str]) -> None:
    assert tide("--version", env=env).stdout.startswith("tokentide ")
    help_text = tide("--help", env=env).stdout
    for command in ("ask", "chat", "compare", "config", "history"):
        assert command in help_text
    assert "--max-tokens" in tide("ask", "--help", env=env).stdout


def test_shell_completion_is_offered_and_answers_with_stdin_not_a_terminal(
    env: dict[str, str],
) -> None:
    # The installed `tide` script: the completion names the program it was run as.
    executable = Path(sys.executable).with_name("tide")

    def tide(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [executable, *args],
            capture_output=True, text=True, env=env, timeout=60, check=False,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip

    assert "--install-completion" in tide("--help", env=env).stdout
    script = tide("--show-completion", "bash", env=env)
    assert script.returncode == 0 and "_TIDE_COMPLETE=complete_bash" in script.stdout
    # What the installed script runs: no arguments, stdin not a terminal (not `tide ask`).
    for words, expected in (("tide hist", "history"), ("tide history l", "list")):
        asked = {**env, "_TIDE_COMPLETE": "complete_bash", "COMP_WORDS": words}
        asked["COMP_CWORD"] = str(len(words.split()) - 1)
        result = tide(env=asked)
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == [expected]
