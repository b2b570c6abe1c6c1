"""A mistyped command is a usage error, never a prompt (issue 11, item 1).

Real ``python -m tokentide`` processes, stdin a pipe or a pty, against the loopback test
server: a near miss exits 2 with a suggestion and the server sees no request; ``tide
ask`` still sends a prompt that starts with such a word.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers.llm_server import LLMServer
from tokentide.cli.entry import _SUBCOMMANDS, suggestion


@pytest.fixture
def tag() -> str:
    return f"typo-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def env(tmp_path: Path, server: LLMServer, tag: str) -> dict[str, str]:
    """A config whose default profile is the loopback server, its requests tagged."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("TIDE_", "OPENAI"))}
    config = tmp_path / "config.toml"
    config.write_text(
        f'default = "t"\n[profiles.t]\napi = "openai"\nurl = "{server.url(tag=tag)}/v1"\n'
        'model = "m"\nmax_retries = 0\n'
    )
    config.chmod(0o600)
    environ["TIDE_CONFIG"] = str(config)
    environ["TIDE_DATA_DIR"] = str(tmp_path / "data")
    return environ


@pytest.fixture(params=["pipe", "pty"])
def stdin(request: pytest.FixtureRequest) -> Iterator[int | None]:
    """stdin a pipe (with text on it, as ``echo hi | tide ...``) or a terminal."""
    if request.param == "pty":
        controller, terminal = pty.openpty()
        yield terminal
        os.close(terminal)
        os.close(controller)
    else:
        yield None


def tide(*args: str, env: dict[str, str], stdin: int | None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tokentide", *args],
        input="some piped text\n" if stdin is None else None,
        stdin=stdin,
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "word", "near"),
    [
        (["chta"], "chta", "chat"),
        (["histroy", "list"], "histroy", "history"),
        (["confg", "path"], "confg", "config"),
        (["--debug", "compaer", "hello"], "compaer", "compare"),
        (["history", "lsit"], "lsit", "list"),
        (["config", "pth"], "pth", "path"),
    ],
)
def test_a_near_miss_is_a_usage_error_and_sends_nothing(
    argv: list[str],
    word: str,
    near: str,
    env: dict[str, str],
    stdin: int | None,
    server: LLMServer,
    tag: str,
) -> None:
    result = tide(*argv, env=env, stdin=stdin)
    assert result.returncode == 2, result.stderr
    first = result.stderr.splitlines()[0]
    assert first == f"tide: No such command '{word}'. Did you mean '{near}'?"
    assert result.stdout == ""
    assert server.record_or_none(tag) is None


def test_the_hint_says_how_to_send_it_as_a_prompt(env: dict[str, str]) -> None:
    result = tide("histroy", "list", env=env, stdin=None)
    assert result.stderr.splitlines()[1] == "To send it as a prompt: tide ask 'histroy list'"


def test_tide_ask_sends_a_prompt_that_starts_with_a_near_miss(
    env: dict[str, str], stdin: int | None, server: LLMServer, tag: str
) -> None:
    result = tide("ask", "chta is a word", env=env, stdin=stdin)
    assert result.returncode == 0, result.stderr
    record = server.record(tag)
    assert record.body["messages"][-1]["content"].startswith("chta is a word")


def test_a_word_far_from_every_command_is_still_a_prompt_in_a_pipe(
    env: dict[str, str], server: LLMServer, tag: str
) -> None:
    result = tide("summarise", env=env, stdin=None)
    assert result.returncode == 0, result.stderr
    assert server.record(tag).body["messages"][-1]["content"].startswith("summarise")


@pytest.mark.parametrize(
    ("word", "near"),
    [
        ("chta", "chat"),
        ("Chat", "chat"),
        ("histroy", "history"),
        ("as", "ask"),
        ("a", None),  # nearer than it is long: not a typo of "ask"
        ("ok", None),
        ("hello", None),
        ("chat", None),  # a command is not a typo
        ("--chat", None),
        ("explain monads", None),
    ],
)
def test_suggestion(word: str, near: str | None) -> None:
    assert suggestion(word, frozenset(_SUBCOMMANDS)) == near


def test_the_entry_point_knows_every_command_of_the_typer_app() -> None:
    # The entry point routes before typer is imported, so its own table must match.
    script = (
        "import json, typer.main\n"
        "from tokentide.cli.app import app, register_subcommands\n"
        "register_subcommands()\n"
        "root = typer.main.get_command(app)\n"
        "print(json.dumps({n: sorted(getattr(c, 'commands', {})) "
        "for n, c in root.commands.items()}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    commands = json.loads(result.stdout)
    assert commands == {name: sorted(subs) for name, subs in _SUBCOMMANDS.items()}
