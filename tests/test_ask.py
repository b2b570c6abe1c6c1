"""``tide ask`` end to end: a real ``python -m tokentide`` process against the loopback
test server, checking stdout, stderr, exit codes, signals and what the server saw."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.hostile_payloads import FORBIDDEN, combined_stream
from tests.servers.llm_server import LLMServer
from tests.tide_process import tide_bytes as tide
from tests.tide_process import tide_on_a_terminal


def openai(server: LLMServer, **knobs: object) -> list[str]:
    return ["--api", "openai", "--url", server.url(**knobs) + "/v1", "--model", "m"]


def test_streams_the_answer_to_a_pipe(server: LLMServer, env: dict[str, str]) -> None:
    result = tide("ask", "hello", *openai(server), "--stats", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"The quick brown fox jumps over the lazy dog.\n"
    stderr = result.stderr.decode()
    assert "first token" in stderr and "tokens" in stderr and "\x1b" not in stderr
    assert server.last().body["messages"] == [{"role": "user", "content": "hello"}]


def test_a_long_answer_reaches_the_pipe_whole(server: LLMServer, env: dict[str, str]) -> None:
    # tide ask leaves through os._exit (no interpreter teardown): nothing may be lost.
    result = tide("ask", "hello", *openai(server, tokens=20_000), "--stats", env=env)
    assert result.returncode == 0, result.stderr
    words = result.stdout.split()
    assert len(words) == 20_000 and words[-1] == b"w19999"
    assert b"tokens" in result.stderr


def test_stdin_is_joined_after_the_arguments(server: LLMServer, env: dict[str, str]) -> None:
    result = tide(
        "ask", "summarise", *openai(server, echo=1), env=env, stdin="line one\nline two\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode() == "summarise\n\nline one\nline two\n"


def test_bare_tide_with_piped_stdin_runs_ask(
    server: LLMServer, env: dict[str, str], tmp_path: Path
) -> None:
    Path(env["TIDE_CONFIG"]).write_text(
        f'default = "t"\n[profiles.t]\napi = "openai"\nurl = "{server.url(echo=1)}/v1"\n'
    )
    result = tide(env=env, stdin="from a pipe")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"from a pipe\n"


def test_no_prompt_is_a_usage_error_not_a_hang(env: dict[str, str]) -> None:
    result = tide("ask", "--api", "openai", "--url", "http://127.0.0.1:9/v1", env=env, stdin="")
    assert result.returncode == 2
    assert b"No prompt given" in result.stderr


def test_cannot_connect_exits_3(env: dict[str, str]) -> None:
    Path(env["TIDE_CONFIG"]).write_text(
        '[profiles.dead]\napi = "openai"\nurl = "http://127.0.0.1:9/v1"\nmax_retries = 0\n'
    )
    result = tide("ask", "hi", "-P", "dead", env=env)
    assert result.returncode == 3
    assert b"Cannot connect to http://127.0.0.1:9/v1/chat/completions" in result.stderr
    assert b"Traceback" not in result.stderr


def test_in_band_error_keeps_the_partial_text_and_exits_4(
    server: LLMServer, env: dict[str, str]
) -> None:
    result = tide("ask", "hi", *openai(server, error_at=3, error_message="GPU on fire"), env=env)
    assert result.returncode == 4
    assert result.stdout == b"The quick brown\n"
    assert b"GPU on fire" in result.stderr


def test_stream_without_terminator_is_an_error(server: LLMServer, env: dict[str, str]) -> None:
    result = tide("ask", "hi", *openai(server, truncate_at=2, role_first=1), env=env)
    assert result.returncode == 4
    assert result.stdout == b"The quick\n"
    assert b"ended without [DONE]" in result.stderr


def test_http_error_body_is_shown(server: LLMServer, env: dict[str, str]) -> None:
    Path(env["TIDE_CONFIG"]).write_text(
        f'[profiles.t]\napi = "openai"\nurl = "{server.url(status=404)}/v1"\nmax_retries = 0\n'
    )
    result = tide("ask", "hi", "-P", "t", env=env)
    assert result.returncode == 4
    assert b"HTTP 404" in result.stderr and b"Check the url" in result.stderr


def test_first_token_deadline_exits_5(server: LLMServer, env: dict[str, str]) -> None:
    Path(env["TIDE_CONFIG"]).write_text(
        f'[profiles.t]\napi = "openai"\nurl = "{server.url(stall_at=0)}/v1"\nfirst_token_timeout = 0.5\n'
    )
    started = time.monotonic()
    result = tide("ask", "hi", "-P", "t", env=env)
    assert result.returncode == 5
    assert b"first-token deadline of 0.5 s" in result.stderr
    assert time.monotonic() - started < 10


async def test_ctrl_c_keeps_the_text_exits_130_and_the_server_sees_it(
    server: LLMServer, env: dict[str, str]
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tokentide", "ask", "hi", *openai(server, tokens=400, delay=0.02, tag="sigint"),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    assert process.stdout is not None and process.stderr is not None
    first = await asyncio.wait_for(process.stdout.read(2), 30)  # the answer has started
    process.send_signal(signal.SIGINT)
    sent = time.monotonic()
    rest = await process.stdout.read()
    stderr = await process.stderr.read()
    assert await process.wait() == 130
    output = (first + rest).decode()
    assert output.startswith("w0") and output.endswith("\n") and "w399" not in output
    assert b"stopped" in stderr
    seen = await server.wait_disconnect(server.record("sigint"))
    assert seen - sent < 1.0


def test_json_events(server: LLMServer, env: dict[str, str]) -> None:
    result = tide("ask", "hi", *openai(server, tokens=3), "--json", env=env)
    assert result.returncode == 0
    lines = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert [line["type"] for line in lines] == ["delta", "delta", "delta", "finish", "stats"]
    assert "".join(line.get("text", "") for line in lines) == "w0 w1 w2"
    assert lines[-1]["state"] == "done" and lines[-1]["tokens"] == 3


def test_no_stream_uses_the_non_streaming_request(server: LLMServer, env: dict[str, str]) -> None:
    result = tide("ask", "hi", *openai(server, tokens=4, tag="create"), "--no-stream", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"w0 w1 w2 w3\n"
    assert server.record("create").body["stream"] is False


def test_hostile_output_is_sanitised_on_a_pipe_unless_raw(
    server: LLMServer, env: dict[str, str]
) -> None:
    text, visible = combined_stream()
    result = tide("ask", "hi", *openai(server, text=text), env=env)
    assert result.returncode == 0, result.stderr
    for signature in FORBIDDEN:
        assert signature not in result.stdout, signature
    assert result.stdout.decode() == "\n".join(visible) + "\n"
    raw = tide("ask", "hi", *openai(server, text=text), "--raw", env=env)
    assert b"\x1b]52" in raw.stdout  # --raw is byte-exact, as documented


def test_config_error_exits_2_and_names_the_file(env: dict[str, str]) -> None:
    Path(env["TIDE_CONFIG"]).write_text('[profiles.a]\napi = "openai"\nurll = "x"\n')
    result = tide("ask", "hi", "-P", "a", env=env)
    assert result.returncode == 2
    assert env["TIDE_CONFIG"].encode() + b":3:" in result.stderr


def test_ask_never_imports_textual(server: LLMServer, env: dict[str, str]) -> None:
    code = (
        "import sys, atexit\n"
        "atexit.register(lambda: sys.stderr.write('TEXTUAL=%s\\n' % ('textual' in sys.modules)))\n"
        "sys.argv = ['tide', 'ask', 'hi', '--api', 'openai', '--url', sys.argv[1]]\n"
        "from tokentide.cli.app import main\n"
        "main()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, server.url(tokens=2) + "/v1"],
        capture_output=True, env=env, timeout=60, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert b"TEXTUAL=False" in result.stderr


def test_piped_tide_without_a_subcommand_takes_ask_options(
    server: LLMServer, env: dict[str, str]
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tokentide", "summarise", *openai(server, echo=1)],
        input=b"the notes", capture_output=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"summarise\n\nthe notes\n"


def test_a_spinner_waits_on_a_terminal_and_is_erased_before_the_answer(
    server: LLMServer, env: dict[str, str]
) -> None:
    """On a terminal (a pty here) a waiting line shows until the first token and is
    erased before the answer; on a pipe there is none (the other tests read stderr)."""
    code, output = tide_on_a_terminal(
        "ask", "hi", *openai(server, first_delay=0.6, tokens=3), env=env, timeout=30
    )
    assert code == 0
    assert b"waiting for openai" in output
    erased = output.rindex(b"\r\x1b[K")
    assert output.index(b"w0 w1 w2") > erased  # the answer comes after the erase
    assert b"waiting" not in output[erased:]


# -- a tool call without tools (issue 11 item 9) -----------------------------------------

WEATHER = '{"city": "Paris"}'


def _dialect(api: str, server: LLMServer, **knobs: object) -> list[str]:
    url = server.url(**knobs) + ("/v1" if api == "openai" else "")
    return ["--api", api, "--url", url, "--model", "m"]


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "no-stream"])
@pytest.mark.parametrize("api", ["openai", "anthropic", "ollama"])
def test_a_tool_call_is_reported_on_stderr_and_exits_4(
    server: LLMServer, env: dict[str, str], api: str, stream: bool
) -> None:
    knobs = _dialect(api, server, text="Let me check.", tool="get_weather", tool_args=WEATHER)
    result = tide("ask", "weather?", *knobs, *([] if stream else ["--no-stream"]), env=env)
    assert result.returncode == 4, result.stderr
    assert result.stdout == b"Let me check.\n"  # the text the model sent comes first
    assert result.stderr.decode().splitlines() == [
        'tide: the model asked to call get_weather({"city": "Paris"}) but tools are off in tide ask'
    ]


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "no-stream"])
def test_a_tool_call_is_a_json_line_and_the_finish_reason_is_kept(
    server: LLMServer, env: dict[str, str], stream: bool
) -> None:
    knobs = openai(server, text="", tool="get_weather,get_time", tool_args=WEATHER)
    result = tide("ask", "hi", *knobs, "--json", *([] if stream else ["--no-stream"]), env=env)
    assert result.returncode == 4, result.stderr
    lines = [json.loads(line) for line in result.stdout.decode().splitlines()]
    calls = [line for line in lines if line["type"] == "tool_call"]
    assert calls == [
        {"type": "tool_call", "name": "get_weather", "arguments": WEATHER, "id": "call_0"},
        {"type": "tool_call", "name": "get_time", "arguments": WEATHER, "id": "call_1"},
    ]
    assert [line["reason"] for line in lines if line["type"] == "finish"] == ["tool_calls"]
    assert lines[-1]["type"] == "stats"
    assert len(result.stderr.decode().splitlines()) == 2


def test_a_hostile_tool_call_is_sanitised_and_shortened(
    server: LLMServer, env: dict[str, str]
) -> None:
    name = "evil\x1b]0;pwned\x07\x1b[31m"
    args = '{"x": "' + "\x1b[2J\n" + "a" * 5000 + '"}'
    result = tide("ask", "hi", *openai(server, text="", tool=name, tool_args=args), env=env)
    assert result.returncode == 4
    stderr = result.stderr.decode()
    assert "\x1b" not in stderr and "\x07" not in stderr
    (line,) = stderr.splitlines()
    assert line.startswith("tide: the model asked to call evil")
    assert line.endswith("…) but tools are off in tide ask")
    assert len(line) < 350


def test_stats_say_chunks_when_nobody_counted_tokens_and_never_1_token(
    server: LLMServer, env: dict[str, str]
) -> None:
    # Issue 11: a non-streamed answer said "1 tokens"; a stream without usage counted
    # its events as tokens.
    streamed = tide("ask", "hello", *openai(server, usage=0), "--stats", env=env)
    assert streamed.returncode == 0, streamed.stderr
    stats = streamed.stderr.decode()
    assert re.search(r"\b\d+ chunks · [\d.,]+ chunks/s\b", stats), stats
    assert "tokens" not in stats and "tok/s" not in stats
    whole = tide("ask", "hello", *openai(server, usage=0), "--no-stream", "--stats", env=env)
    assert whole.returncode == 0, whole.stderr
    stats = whole.stderr.decode()
    assert "first token" in stats and "total" in stats
    assert "token " not in stats.replace("first token", "") and "chunk" not in stats, stats
    counted = tide("ask", "hello", *openai(server), "--no-stream", "--stats", env=env)
    assert re.search(r"\b\d+ tokens · [\d.,]+ tok/s\b", counted.stderr.decode())
