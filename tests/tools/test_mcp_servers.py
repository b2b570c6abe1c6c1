"""An MCP server's life against the real SDK-written test server: start, calls, errors,
deadlines and cancellation (the server sees MCP's cancel), a crash and its restart, a
server that cannot start, stderr in the log, and no process left after close."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from tests.tools.conftest import (
    FAST_RESTART,
    HttpCalc,
    LogWatch,
    alive,
    processes_mentioning,
    stdio_server,
)
from tokentide.sanitize import sanitize
from tokentide.tools.mcp_config import HttpServer, StdioServer
from tokentide.tools.mcp_servers import McpServer, RestartPolicy

pytestmark = pytest.mark.timeout(60)


async def ready(server: McpServer) -> None:
    while server.state != "ready":
        assert server.state not in ("failed", "stopped"), server.status().message
        await server.changes.wait()


async def pid_of(server: McpServer) -> int:
    result = await server.call("pid", {}, call_id="p")
    assert not result.is_error, result.content
    return int(result.content)


async def test_a_stdio_server_starts_in_the_background_and_answers(calc: StdioServer) -> None:
    server = McpServer(calc)
    assert server.state == "starting"
    server.start()
    try:
        await ready(server)
        names = [tool.name for tool in server.tools]
        assert {"add", "hang", "fail", "crash_once"} <= set(names)
        add = next(tool for tool in server.tools if tool.name == "add")
        assert add.description == "Add two integers."
        assert add.parameters["properties"].keys() == {"a", "b"}
        result = await server.call("add", {"a": 2, "b": 3}, call_id="c1", as_name="calc__add")
        assert (result.call_id, result.name, result.content, result.is_error) == (
            "c1",
            "calc__add",
            "5",
            False,
        )
        status = server.status()
        assert (status.kind, status.state, status.message) == ("mcp-stdio", "ready", "")
    finally:
        await server.aclose()
    assert server.status().state == "stopped"
    assert server.tools == ()


async def test_an_is_error_result_and_a_refused_call_are_error_results(calc: StdioServer) -> None:
    server = McpServer(calc)
    server.start()
    try:
        await ready(server)
        failed = await server.call("fail", {"reason": "no"}, call_id="c")
        assert failed.is_error and "failed on purpose: no" in failed.content
        wrong = await server.call("add", {"a": "two"}, call_id="c")
        assert wrong.is_error
        missing = await server.call("no_such_tool", {}, call_id="c")
        assert missing.is_error and "no_such_tool" in missing.content
        loud = await server.call("shout", {}, call_id="c")  # untrusted: kept as it came
        assert loud.content == "\x1b[2Jloud\x1b]52;c;aGk=\x07"
        assert sanitize(loud.content) == "loud"
        long = await server.call("huge", {"size": 300_000}, call_id="c")
        assert not long.is_error and len(long.content) < 101_000
        assert long.content.endswith("more characters cut by tide]")
    finally:
        await server.aclose()


async def test_a_changed_tool_list_is_read_again(calc: StdioServer) -> None:
    server = McpServer(calc)
    server.start()
    try:
        await ready(server)
        assert "extra" not in [tool.name for tool in server.tools]
        assert (await server.call("grow", {}, call_id="g")).content == "grown"
        while "extra" not in [tool.name for tool in server.tools]:
            await server.changes.wait()
        assert (await server.call("extra", {}, call_id="e")).content == "extra"
    finally:
        await server.aclose()


async def test_a_call_past_its_deadline_is_cancelled_on_the_server(
    calc: StdioServer, log_watch: LogWatch
) -> None:
    server = McpServer(calc)
    server.start()
    try:
        await ready(server)
        call = asyncio.create_task(server.call("hang", {}, call_id="h", timeout=600))
        await log_watch.wait_for("hang started")
        # The deadline case: a short deadline once the tool is known to be running.
        late = await server.call("hang", {}, call_id="h2", timeout=0.5)
        assert late.is_error and "did not finish within 0.5 s" in late.content
        await log_watch.wait_for("hang cancelled")
        # The Esc case: the caller's task is cancelled; the server hears of it too.
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        await log_watch.wait_for("hang cancelled", count=2)
        # And the server still answers.
        assert (await server.call("add", {"a": 1, "b": 1}, call_id="a")).content == "2"
    finally:
        await server.aclose()


async def test_a_crashed_server_is_restarted_and_the_call_in_flight_fails(
    calc: StdioServer, log_watch: LogWatch
) -> None:
    server = McpServer(calc, policy=FAST_RESTART)
    server.start()
    try:
        await ready(server)
        first_pid = await pid_of(server)
        crashed = await server.call("crash_once", {}, call_id="x")
        assert crashed.is_error and "stopped during the call" in crashed.content
        await log_watch.wait_for("crashing on purpose")  # its stderr went to the log
        # The next call waits for the restart instead of reaching the dead process.
        survived = await server.call("crash_once", {}, call_id="y")
        assert (survived.content, survived.is_error) == ("survived", False)
        assert server.status().restarts == 1
        second_pid = await pid_of(server)
        assert second_pid != first_pid
        assert not alive(first_pid)
    finally:
        await server.aclose()
    assert not alive(second_pid)


async def test_a_server_that_cannot_start_fails_with_a_message(tmp_path: Path) -> None:
    config = StdioServer(name="ghost", command=str(tmp_path / "no-such-server"))
    server = McpServer(config, policy=RestartPolicy(first_delay=0.01, max_restarts=2))
    seen: list[str] = []
    server.changes.subscribe(lambda: seen.append(server.state))
    server.start()
    while server.state != "failed":
        await server.changes.wait()
    message = server.status().message
    assert "cannot start" in message and "no such program" in message
    assert "gave up after 2 restarts" in message
    assert seen.count("restarting") == 2
    result = await server.call("add", {}, call_id="c")
    assert result.is_error and "is failed" in result.content
    await server.aclose()


async def test_without_the_sdk_a_server_fails_saying_how_to_install_it(
    calc: StdioServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tokentide.tools import mcp_servers

    monkeypatch.setattr(mcp_servers, "_SDK_MODULES", ("mcp", "mcp_not_installed_here"))
    server = McpServer(calc)
    server.start()
    while server.state != "failed":
        await server.changes.wait()
    message = server.status().message
    assert "mcp_not_installed_here" in message and "tokentide[tools]" in message
    await server.aclose()
    assert server.status().state == "stopped"


async def test_a_server_that_exits_at_once_says_what_it_wrote(tmp_path: Path) -> None:
    config = StdioServer(
        name="broken",
        command=sys.executable,
        args=("-c", "import sys; print('ImportError: no module named calc_deps', file=sys.stderr)"),
    )
    server = McpServer(config, policy=RestartPolicy(first_delay=0.01, max_restarts=0))
    server.start()
    while server.state != "failed":
        await server.changes.wait()
    assert "no module named calc_deps" in server.status().message
    await server.aclose()


async def test_server_stderr_never_reaches_the_terminal(
    calc: StdioServer, log_watch: LogWatch, capfd: pytest.CaptureFixture[str]
) -> None:
    server = McpServer(calc)
    server.start()
    try:
        await ready(server)
        await log_watch.wait_for("calc starting")
    finally:
        await server.aclose()
    out, err = capfd.readouterr()
    assert "calc starting" not in out + err


async def test_no_server_process_outlives_close_or_its_owner_being_cancelled(
    tmp_path: Path,
) -> None:
    pids: list[int] = []
    started = asyncio.Event()

    async def owner() -> None:
        server = McpServer(stdio_server(tmp_path, name="owned"))
        server.start()
        try:
            await ready(server)
            pids.append(await pid_of(server))
            started.set()
            await asyncio.Event().wait()  # until cancelled
        finally:
            await server.aclose()

    task = asyncio.create_task(owner())
    await started.wait()
    assert alive(pids[0])
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not alive(pids[0])
    assert processes_mentioning(str(tmp_path)) == []


async def test_a_cancelled_close_still_stops_the_server_and_is_obeyed(tmp_path: Path) -> None:
    server = McpServer(stdio_server(tmp_path))
    server.start()
    await ready(server)
    pid = await pid_of(server)
    closer = asyncio.create_task(server.aclose())
    await asyncio.sleep(0)  # one turn of the loop: the close is under way
    closer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closer
    assert not alive(pid)
    assert server.status().state == "stopped"


async def test_close_while_starting_leaves_no_process(tmp_path: Path, log_watch: LogWatch) -> None:
    server = McpServer(stdio_server(tmp_path))
    server.start()
    await log_watch.wait_for("calc starting")  # running; the handshake may not be done
    assert processes_mentioning(str(tmp_path))
    await server.aclose()
    assert server.state == "stopped"
    assert processes_mentioning(str(tmp_path)) == []


async def test_a_streamable_http_server(http_calc: HttpCalc) -> None:
    server = McpServer(http_calc.config)
    server.start()
    try:
        await ready(server)
        assert server.status().kind == "mcp-http"
        assert (await server.call("add", {"a": 20, "b": 22}, call_id="h")).content == "42"
        failed = await server.call("fail", {"reason": "http"}, call_id="h")
        assert failed.is_error and "failed on purpose: http" in failed.content
        late = await server.call("hang", {}, call_id="h", timeout=0.5)
        assert late.is_error and "did not finish" in late.content
        await http_calc.wait_for("hang cancelled")  # MCP's cancel reached it over HTTP
    finally:
        await server.aclose()
    assert server.status().state == "stopped"


async def test_an_http_server_that_goes_away_is_reported(http_calc: HttpCalc) -> None:
    server = McpServer(http_calc.config, policy=RestartPolicy(first_delay=0.01, max_restarts=1))
    server.start()
    try:
        await ready(server)
        http_calc.process.kill()
        http_calc.process.wait()
        gone = await server.call("add", {"a": 1, "b": 1}, call_id="g", timeout=30)
        assert gone.is_error and "stopped during the call to add" in gone.content
        while server.state != "failed":
            await server.changes.wait()
        assert "cannot connect to" in server.status().message
    finally:
        await server.aclose()


async def test_an_http_server_that_is_not_there_fails(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = HttpServer(name="nowhere", url=f"http://127.0.0.1:{port}/mcp")
    server = McpServer(config, policy=RestartPolicy(first_delay=0.01, max_restarts=1))
    server.start()
    while server.state != "failed":
        await server.changes.wait()
    message = server.status().message
    assert f"cannot connect to http://127.0.0.1:{port}/mcp" in message
    assert "gave up after 1 restart)" in message
    await server.aclose()
