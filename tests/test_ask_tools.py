"""``tide ask`` with tools, as a real process against the loopback server: a functions
file and a real MCP server (written with the SDK) give the model tools; tool activity
is one line per call on stderr, the answer on stdout; ``--json`` has ``tool_call`` and
``tool_result`` events; in a pipe with no terminal, a call that needs approval exits 2
and nothing runs; the MCP server is gone when tide exits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers.llm_server import LLMServer

TOOLSERVER = Path(__file__).parent / "tools" / "servers" / "toolserver.py"

FUNCTIONS = '''
from pathlib import Path

MARK = Path(__file__).with_suffix(".ran")


def add(a: int, b: int) -> int:
    """Add two numbers."""
    MARK.write_text(f"{a}+{b}")
    return a + b
'''


def tide(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # A session of its own: no controlling terminal, as in a pipeline run by cron or CI.
    return subprocess.run(
        [sys.executable, "-m", "tokentide", "ask", *args], stdin=subprocess.DEVNULL,
        capture_output=True, text=True, env=env, timeout=120, check=False,
        start_new_session=True,
    )  # fmt: skip


@pytest.fixture
def functions(tmp_path: Path) -> Path:
    path = tmp_path / "calc.py"
    path.write_text(FUNCTIONS)
    return path


def url(server: LLMServer, tag: str, **knobs: object) -> str:
    return server.url(
        tag=tag, tool="add", tool_once=1, echo=1, tool_args='{"a": 2, "b": 3}', **knobs
    )


def test_a_function_runs_its_line_is_on_stderr_and_the_answer_on_stdout(
    server: LLMServer, env: dict[str, str], functions: Path
) -> None:
    result = tide(
        "--api", "openai", "--url", url(server, "ask-tools"), "--functions", str(functions),
        "--approve", "all", "what is 2+3?", env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    # The first round's text (the server echoes the prompt), then, as a paragraph of its
    # own, the answer after the tool (the echo of what the tool gave back).
    assert result.stdout == "what is 2+3?\n\n5\n"
    assert "▸ calc.add(a=2, b=3) → 5" in result.stderr
    assert result.stderr.count("▸") == 1  # one line per call
    assert functions.with_suffix(".ran").read_text() == "2+3"


def test_json_has_the_call_and_its_result(
    server: LLMServer, env: dict[str, str], functions: Path
) -> None:
    result = tide(
        "--api", "openai", "--url", url(server, "ask-tools-json"), "--functions",
        str(functions), "--allow-tool", "add", "--json", "go", env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    kinds = [e["type"] for e in events]
    assert kinds.index("tool_call") < kinds.index("tool_result") < len(kinds) - 1
    done = next(e for e in events if e["type"] == "tool_result")
    assert (done["name"], done["content"], done["is_error"]) == ("add", "5", False)


def test_in_a_pipe_a_call_that_needs_approval_exits_2_and_nothing_runs(
    server: LLMServer, env: dict[str, str], functions: Path
) -> None:
    result = tide(
        "--api", "openai", "--url", url(server, "ask-tools-refused"), "--functions",
        str(functions), "go", env=env,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "the tool add" in result.stderr and "--allow-tool add" in result.stderr
    assert not functions.with_suffix(".ran").exists()
    assert len([r for r in server.records if r.tag == "ask-tools-refused"]) == 1


def test_approve_none_tells_the_model_and_runs_nothing(
    server: LLMServer, env: dict[str, str], functions: Path
) -> None:
    result = tide(
        "--api", "openai", "--url", url(server, "ask-tools-none"), "--functions",
        str(functions), "--approve", "none", "go", env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "did not allow" in result.stdout  # the refusal went back to the model
    assert "✗ not run" in result.stderr
    assert not functions.with_suffix(".ran").exists()


def test_an_mcp_server_gives_the_tools_and_is_gone_when_tide_exits(
    server: LLMServer, env: dict[str, str], tmp_path: Path
) -> None:
    mcp = tmp_path / "mcp.json"
    mcp.write_text(json.dumps({"mcpServers": {"calc": {
        "command": sys.executable, "args": [str(TOOLSERVER), "--state", str(tmp_path)],
    }}}))  # fmt: skip
    knobs = {"tag": "ask-tools-mcp", "tool": "pid", "tool_once": 1, "echo": 1, "tool_args": "{}"}
    result = tide(
        "--api", "openai", "--url", server.url(**knobs), "--mcp", str(mcp),
        "--allow-tool", "calc.pid", "go", env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    pid = int(result.stdout.split()[-1])  # the server's own pid, as its tool gave it back
    assert f"▸ calc.pid() → {pid}" in result.stderr
    body = server.record("ask-tools-mcp").body
    assert {"add", "pid"} <= {t["function"]["name"] for t in body["tools"]}
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # tide stopped it before exiting


def test_a_backend_that_cannot_call_tools_is_said_and_the_prompt_still_goes(
    server: LLMServer, env: dict[str, str], functions: Path
) -> None:
    result = tide(
        "--api", "tgi", "--url", server.url(tag="ask-tools-tgi"), "--functions",
        str(functions), "hi", env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "cannot call tools" in result.stderr
    assert "tools" not in server.record("ask-tools-tgi").body


def test_a_refused_call_is_saved_as_stopped_with_the_call(
    server: LLMServer, env: dict[str, str], functions: Path
) -> None:
    import sqlite3

    result = tide(
        "--api", "openai", "--url", url(server, "ask-tools-saved"), "--functions",
        str(functions), "--json", "go", env=env,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    last = json.loads(result.stdout.splitlines()[-1])  # --json still ends with its stats
    assert last["type"] == "stats"
    assert any(json.loads(line).get("exit_code") == 2 for line in result.stdout.splitlines())
    db = sqlite3.connect(Path(env["TIDE_DATA_DIR"]) / "history.sqlite3")
    status, details = db.execute(
        "SELECT status, details FROM messages WHERE role = 'assistant'"
    ).fetchone()
    db.close()
    assert status == "stopped"
    assert json.loads(details)["tools"][0]["calls"][0]["name"] == "add"


def test_a_bad_approve_value_is_a_usage_error_even_without_tools(env: dict[str, str]) -> None:
    result = tide("--api", "openai", "--url", "http://127.0.0.1:9/v1", "--approve", "bogus",
                  "hi", env=env)  # fmt: skip
    assert result.returncode == 2
    assert "--approve" in result.stderr and "ask, all, none" in result.stderr
