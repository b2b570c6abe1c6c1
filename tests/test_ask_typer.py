"""``tide ask`` is a command of the typer app (issue 11 item 10): one declaration of its
options (``tokentide.cli.ask_options.ASK_OPTIONS``), typer's help, errors and completion, and a
well-formed command line read without importing typer, pydantic or Textual.

The quick reader must read every command line it takes exactly as the typer command
does: compared here with the real typer command's parse of the same words.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import typer.main

from tests.servers.llm_server import LLMServer
from tests.tide_process import tide_text as tide
from tokentide.ask.run import AskArgs
from tokentide.cli.app import app
from tokentide.cli.ask_options import ASK_OPTIONS, parse_ask


def typer_reads(args: list[str]) -> dict[str, Any]:
    """What the typer ``ask`` command gets from ``args`` (its own parser and types)."""
    command = typer.main.get_command(app).commands["ask"]  # type: ignore[attr-defined]
    with command.make_context("ask", list(args)) as ctx:
        values = dict(ctx.params)
    values["prompt"] = tuple(values["prompt"] or ())
    for option in ASK_OPTIONS:
        if option.many:  # a list for typer, a tuple for AskArgs
            values[option.dest] = tuple(values[option.dest] or ())
    return values


def test_every_option_is_a_field_of_ask_args() -> None:
    fields = {field.name for field in dataclasses.fields(AskArgs)}
    assert fields == {"prompt"} | {option.dest for option in ASK_OPTIONS}
    names = [name for option in ASK_OPTIONS for name in option.names]
    assert len(names) == len(set(names))
    assert "-t" in next(o.names for o in ASK_OPTIONS if o.dest == "template")
    assert next(o.names for o in ASK_OPTIONS if o.dest == "temperature") == ("--temperature",)
    assert all(o.kind is str for o in ASK_OPTIONS if o.many)


@pytest.mark.parametrize(
    "args",
    [
        ["hello"],
        [],
        ["why", "is", "the", "sky", "blue?"],
        ["hi", "-P", "work", "--stats"],
        ["-P", "work", "hi", "-P", "home"],  # the last one wins
        ["--profile=work", "--url=http://h:1/v1?a=b=c", "hi"],
        ["-t", "review", "--temperature", "0.25", "x"],
        ["--temperature", "-1", "--seed", "-7", "--max-tokens", "007", "x"],
        ["--temperature", "1e-3", "--temperature", ".5", "x"],
        ["--temperature", "2.", "x"],
        ["--system", "--json", "x"],  # a value is the next word, whatever it looks like
        ["-s", "", "-m", "", "x"],
        ["--", "-x", "--json", "is", "a", "word"],
        ["x", "-", "y"],
        ["--no-stream", "--json", "--raw", "--debug", "--config", "/tmp/c.toml", "x"],
        ["-c", "--no-log", "--conversation", "01ab", "x"],
        ["--api", "local", "--target", "m.py:f", "--api-key-env", "K", "x"],
        ["é", "\x1b[31m", "x"],
        ["--mcp", "a.json", "x", "--mcp=b.json", "--allow-tool", "add", "--approve", "all"],
        ["--functions", "t.py", "--functions", "t.py", "x"],  # kept as given, twice
        ["-a", "notes.md", "--attach", "src/", "-a", "-", "x"],  # "-" is -a's value: stdin
        ["--attach=-", "x", "-"],
    ],
)
def test_the_quick_reader_reads_what_typer_reads(args: list[str]) -> None:
    quick = parse_ask(args)
    assert quick is not None
    assert {**dataclasses.asdict(AskArgs()), **quick} == typer_reads(args)


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["-h"],
        ["-Pwork", "hi"],
        ["-P=work", "hi"],
        ["--prof", "work", "hi"],
        ["--stats=1", "hi"],
        ["--temperature", "nan", "hi"],
        ["--temperature", "0,5", "hi"],
        ["--max-tokens", "1_000", "hi"],
        ["--max-tokens", " 5", "hi"],
        ["--max-tokens", "٣", "hi"],
        ["--seed"],
        ["--nope", "hi"],
        ["-5"],
    ],
)
def test_what_the_quick_reader_does_not_take_is_left_to_typer(args: list[str]) -> None:
    assert parse_ask(args) is None


def test_a_well_formed_ask_never_imports_typer_pydantic_or_textual(
    server: LLMServer, env: dict[str, str]
) -> None:
    url = server.url(tokens=2) + "/v1"
    result = tide(
        "ask", "hi", "--api", "openai", "--url", url, env=env, python=("-X", "importtime")
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "w0 w1\n"
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if "|" in line}
    assert "tokentide.ask" in imported
    for module in ("typer", "click", "pydantic", "textual", "rich", "argparse"):
        assert module not in imported, module


def test_what_the_quick_reader_leaves_runs_through_typer_the_same(
    server: LLMServer, env: dict[str, str]
) -> None:
    tag = f"typer-{uuid.uuid4().hex[:8]}"
    Path(env["TIDE_CONFIG"]).write_text(
        f'[profiles.t]\napi = "openai"\nurl = "{server.url(tag=tag)}/v1"\n'
    )
    result = tide("ask", "-Pt", "-s=S", "hello", "--stats", env=env)
    assert result.returncode == 0, result.stderr
    body = server.record(tag).body
    assert body["messages"] == [
        {"role": "system", "content": "=S"},  # click reads -s=S as -s with "=S"
        {"role": "user", "content": "hello"},
    ]
    assert "tokens" in result.stderr


def test_help_is_the_typer_apps(env: dict[str, str]) -> None:
    ask = tide("ask", "--help", env=env)
    chat = tide("chat", "--help", env=env)
    assert ask.returncode == 0 and chat.returncode == 0
    for result in (ask, chat):
        assert result.stdout.startswith("Usage: ") and "\nOptions:\n" in result.stdout
    assert "-t, --template NAME" in ask.stdout and "--temperature T" in ask.stdout
    assert "Exit codes: 0 ok" in ask.stdout
    assert "[PROMPT] [ask options]" not in ask.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--nope", "hi"], "No such option: --nope"),
        (["--temperature", "warm", "hi"], "Invalid value for '--temperature'"),
        (["--max-tokens"], "Option '--max-tokens' requires an argument."),
    ],
)
def test_errors_are_the_typer_apps(env: dict[str, str], args: list[str], message: str) -> None:
    result = tide("ask", *args, env=env)
    assert result.returncode == 2
    assert result.stdout == ""
    assert f"Error: {message}" in result.stderr
    # Laid out as the same mistake in another command of the app.
    other = tide("compare", *args, env=env)
    assert other.returncode == 2 and f"Error: {message}" in other.stderr
    shape = [line.split(" ", 1)[0] for line in result.stderr.splitlines()]
    assert shape == [line.split(" ", 1)[0] for line in other.stderr.splitlines()]


def test_a_flag_check_after_parsing_is_still_a_usage_error(env: dict[str, str]) -> None:
    result = tide("ask", "hi", "--api", "openai", "--url", "http://h/v1", "--temperature", "nan", env=env)  # fmt: skip
    assert result.returncode == 2
    assert "--temperature must be a finite number" in result.stderr


@pytest.mark.parametrize(
    ("words", "expected"),
    [("tide ask --tempe", ["--temperature"]), ("tide ask --temp", ["--template", "--temperature"])],
)
def test_completion_knows_the_ask_options(
    env: dict[str, str], words: str, expected: list[str]
) -> None:
    asked = {**env, "_TIDE_COMPLETE": "complete_bash", "COMP_WORDS": words}
    asked["COMP_CWORD"] = str(len(words.split()) - 1)
    executable = Path(sys.executable).with_name("tide")
    result = subprocess.run(
        [executable], capture_output=True, text=True, env=asked, timeout=60, check=False,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == expected


def test_root_options_before_ask_are_read_too(server: LLMServer, env: dict[str, str]) -> None:
    tag = f"typer-{uuid.uuid4().hex[:8]}"
    config = Path(env["TIDE_CONFIG"]).with_name("other.toml")
    config.write_text(
        f'default = "t"\n[profiles.t]\napi = "openai"\nurl = "{server.url(tag=tag, echo=1)}/v1"\n'
    )
    result = tide("--config", str(config), "--debug", "ask", "hi", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hi\n"
    assert "debug log:" in result.stderr
    assert (Path(env["TIDE_DATA_DIR"]) / "debug.log").exists()


def test_piped_stdin_after_a_root_option_is_ask(server: LLMServer, env: dict[str, str]) -> None:
    Path(env["TIDE_CONFIG"]).write_text(
        f'default = "t"\n[profiles.t]\napi = "openai"\nurl = "{server.url(echo=1)}/v1"\n'
    )
    result = tide("--debug", "summarise", env=env, stdin="the notes")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "summarise\n\nthe notes\n"
    bare = tide("--config", env["TIDE_CONFIG"], env=env, stdin="only stdin")
    assert bare.returncode == 0, bare.stderr
    assert bare.stdout == "only stdin\n"
