"""The toolbox over a real MCP server and a functions file: unique names, where a tool
comes from, calls and their errors, several calls at once, the view's snapshot and
change signal, and close."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests.tools.conftest import FAST_RESTART, SERVER, LogWatch, alive, stdio_server
from tokentide.backends.events import ToolCallRequested
from tokentide.errors import ConfigError
from tokentide.tools import Toolbox, build_toolbox, load_functions
from tokentide.tools.toolbox import offered_name

pytestmark = pytest.mark.timeout(60)

SAMPLE = Path(__file__).parent / "sample_functions.py"


def call(name: str, arguments: object = None, id: str = "c") -> ToolCallRequested:
    text = arguments if isinstance(arguments, str) else json.dumps(arguments or {})
    return ToolCallRequested(name=name, arguments=text, id=id)


async def test_clashing_names_are_qualified_once_both_sources_offer_them(tmp_path: Path) -> None:
    box = Toolbox([stdio_server(tmp_path)], [load_functions(SAMPLE)], restart=FAST_RESTART)
    changes: list[int] = []
    box.changes.subscribe(lambda: changes.append(box.changes.version))
    # Before the server is ready only the functions are offered, under their own names.
    assert "add" in [spec.name for spec in box.specs()]
    async with box:
        await box.settled()
        names = [spec.name for spec in box.specs()]
        assert "calc__add" in names and "sample_functions__add" in names and "add" not in names
        assert "hang" in names and "convert" in names  # no clash: plain names
        assert len(names) == len(set(names))
        source = box.source_of("calc__add")
        assert source is not None
        assert (source.original, source.source, source.kind, source.trust) == (
            "add",
            "calc",
            "mcp-stdio",
            False,
        )
        assert box.source_of("add") is None
        result = await box.call(call("calc__add", {"a": 2, "b": 3}, id="x1"))
        assert (result.call_id, result.name, result.content) == ("x1", "calc__add", "5")
        local = await box.call(call("sample_functions__add", {"a": 2, "b": 3}))
        assert local.content == "5"
        states = {status.name: status.state for status in box.snapshot()}
        assert states == {"calc": "ready", "sample_functions": "ready"}
        assert changes  # the view was told
    assert box.snapshot()[0].state == "stopped"
    assert [spec.name for spec in box.specs()] == [s.name for s in load_functions(SAMPLE).tools]


async def test_calls_that_cannot_run_are_errors_for_the_model() -> None:
    box = Toolbox([], [load_functions(SAMPLE)])
    unknown = await box.call(call("nope\x1b[2J"))
    assert unknown.is_error and "there is no tool named 'nope'" in unknown.content
    assert "the tools are: add, block, choose, convert, explode, leave, wait" in unknown.content
    not_json = await box.call(call("add", '{"a": 1'))
    assert not_json.is_error and "not valid JSON" in not_json.content
    not_object = await box.call(call("add", "[1, 2]"))
    assert not_object.is_error and "must be a JSON object, got list" in not_object.content
    empty = await box.call(call("convert", ""))  # "" is taken as no arguments
    assert empty.is_error and "missing argument 'value'" in empty.content


async def test_call_many_runs_calls_at_once_and_keeps_their_order(
    tmp_path: Path, log_watch: LogWatch
) -> None:
    async with Toolbox([stdio_server(tmp_path)], [load_functions(SAMPLE)]) as box:
        await box.settled()
        results = await box.call_many(
            [
                call("explode", {"message": "m"}, id="1"),
                call("calc__add", {"a": 1, "b": 2}, id="2"),
                call("missing", id="3"),
                call("wait", {"seconds": 0}, id="4"),
            ]
        )
        assert [(r.call_id, r.is_error) for r in results] == [
            ("1", True),
            ("2", False),
            ("3", True),
            ("4", False),
        ]
        # Two hanging calls run together; cancelling the caller cancels both on the server.
        both = asyncio.create_task(box.call_many([call("hang", id="a"), call("hang", id="b")]))
        await log_watch.wait_for("hang started", count=2)
        both.cancel()
        with pytest.raises(asyncio.CancelledError):
            await both
        await log_watch.wait_for("hang cancelled", count=2)
        # Each call has its own deadline.
        late = await box.call_many(
            [call("hang", id="c"), call("calc__add", {"a": 1, "b": 1})], timeout=0.5
        )
        assert late[0].is_error and "did not finish within 0.5 s" in late[0].content
        assert late[1].content == "2"


async def test_the_view_can_await_changes_and_read_snapshots(tmp_path: Path) -> None:
    box = Toolbox([stdio_server(tmp_path)])
    assert box.snapshot()[0].state == "starting"
    box.start()
    try:
        while (status := box.snapshot()[0]).state != "ready":
            await box.changes.wait()
        assert status.kind == "mcp-stdio" and "add" in [t.name for t in status.tools]
        pid = int((await box.call(call("pid"))).content)
    finally:
        await box.aclose()
    assert not alive(pid)


def test_build_from_files_and_duplicate_server_names(tmp_path: Path) -> None:
    server = {"command": "python", "args": [str(SERVER)], "trust": True}
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(json.dumps({"mcpServers": {"calc": server}}))
    second.write_text(json.dumps({"mcpServers": {"calc": server}}))
    box = build_toolbox(mcp_files=[first], function_files=[SAMPLE], environ={})
    assert [s.name for s in box.snapshot()] == ["calc", "sample_functions"]
    assert box.snapshot()[0].trust
    with pytest.raises(ConfigError, match=r"'calc' is defined twice \(.*a\.json and .*b\.json\)"):
        build_toolbox(mcp_files=[first, second], environ={})


def test_offered_names_fit_the_apis() -> None:
    assert offered_name("files.read file") == "files_read_file"
    assert len(offered_name("x" * 100)) == 64
