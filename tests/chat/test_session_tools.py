"""The chat session with tools: the model asks for a call, the call is decided (rules,
the user's choice) and run, its result goes back, and the model answers; rounds are
bounded; a stop during a call keeps the answer.  Against the loopback server (OpenAI
chat dialect, tool calls streamed in fragments) and a real functions file."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.chat import tool_gate
from tests.servers.llm_server import LLMServer
from tokentide.backends.events import ToolCallRequested
from tokentide.chat.live import LiveAnswer
from tokentide.chat.parts import TextPart, ToolCallPart, ToolResultPart
from tokentide.chat.session import ChatSession
from tokentide.chat.tool_use import (
    AskUser,
    Choice,
    ToolFinished,
    ToolsStopped,
    ToolStarted,
    ToolUse,
)
from tokentide.config.model import Profile, Settings
from tokentide.history.store import HistoryStore
from tokentide.tools import ApprovalRules, Policy, ToolSource, build_toolbox

FUNCTIONS = '''
from tests.chat import tool_gate


def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


def slow() -> str:
    """Wait until released."""
    tool_gate.started.set()
    tool_gate.release.wait(30)
    return "late"
'''


@pytest.fixture
def store(tmp_path: Path) -> Iterator[HistoryStore]:
    store = HistoryStore.open(tmp_path / "history.sqlite3")
    yield store
    store.close()


@pytest.fixture
def functions(tmp_path: Path) -> Path:
    path = tmp_path / "calc_tools.py"
    path.write_text(FUNCTIONS)
    return path


def chat_with_tools(
    server: LLMServer, store: HistoryStore, functions: Path, *, tag: str,
    policy: Policy = "all", ask: AskUser | None = None, max_rounds: int = 8, **knobs: Any,
) -> ChatSession:  # fmt: skip
    url = server.url(tag=tag, **knobs)
    profile = Profile(name="p", api="openai", url=url, model="m")
    chat = ChatSession(Settings(profiles={"p": profile}), profile, store)
    toolbox = build_toolbox(function_files=[functions])
    chat.tools = ToolUse(
        toolbox,
        ApprovalRules(policy=policy),
        ask_user=ask,
        max_rounds=max_rounds,
    )
    chat.new_conversation()
    return chat


async def drain(chat: ChatSession, live: LiveAnswer) -> list[Any]:
    seen: list[Any] = []
    async for batch in live.batches():
        seen.extend(batch)
    chat.finish(live)
    return seen


def bodies(server: LLMServer, tag: str) -> list[dict[str, Any]]:
    return [r.body for r in server.records if r.tag == tag]


async def test_a_call_runs_and_its_result_goes_back(
    server: LLMServer, store: HistoryStore, functions: Path
) -> None:
    chat = chat_with_tools(
        server, store, functions, tag="tools-loop", tool="add", tool_once=1, echo=1,
        tool_args='{"a": 2, "b": 3}',
    )  # fmt: skip
    chat.send("what is 2+3?")
    seen = await drain(chat, chat.answer())
    started = [e for e in seen if isinstance(e, ToolStarted)]
    finished = [e for e in seen if isinstance(e, ToolFinished)]
    assert [(s.call.name, s.denied) for s in started] == [("add", None)]
    assert [(f.result.content, f.result.is_error) for f in finished] == [("5", False)]
    turn = chat.branch[-1]
    assert turn.status == "complete" and turn.stats["tool_rounds"] == 1
    kinds = [type(p) for p in turn.parts if not isinstance(p, TextPart)]
    assert kinds == [ToolCallPart, ToolResultPart]
    assert turn.content.endswith("5")  # the echo of the tool's result: it was sent back
    first, second = bodies(server, "tools-loop")
    assert [t["function"]["name"] for t in first["tools"]] == ["add", "slow"]
    call = second["messages"][-2]["tool_calls"][0]
    assert (call["function"]["name"], json.loads(call["function"]["arguments"])) == (
        "add", {"a": 2, "b": 3},
    )  # fmt: skip
    assert second["messages"][-1] == {"role": "tool", "tool_call_id": call["id"], "content": "5"}
    # Stored and read back: the rounds survive a reopen.
    assert chat.conversation_id is not None
    again = ChatSession(chat.config, chat.profile, store)
    again.open(chat.conversation_id)
    assert again.branch[-1].parts == turn.parts
    await chat.close()


async def test_a_call_the_user_denies_is_told_to_the_model(
    server: LLMServer, store: HistoryStore, functions: Path
) -> None:
    asked: list[tuple[str, str]] = []

    async def ask(call: ToolCallRequested, source: ToolSource) -> Choice:
        asked.append((call.name, source.source))
        return Choice(run=False, reason="not today")

    chat = chat_with_tools(
        server, store, functions, tag="tools-deny", policy="ask", ask=ask,
        tool="add", tool_once=1, echo=1, tool_args='{"a": 1, "b": 1}',
    )  # fmt: skip
    chat.send("add")
    await drain(chat, chat.answer())
    assert asked == [("add", "calc_tools")]  # the tool and the functions file it is from
    result = next(p for p in chat.branch[-1].parts if isinstance(p, ToolResultPart))
    assert result.is_error and "not today" in result.content
    assert "not today" in bodies(server, "tools-deny")[-1]["messages"][-1]["content"]
    await chat.close()


async def test_always_for_this_tool_asks_once_per_conversation(
    server: LLMServer, store: HistoryStore, functions: Path
) -> None:
    asked: list[str] = []

    async def ask(call: ToolCallRequested, source: ToolSource) -> Choice:
        asked.append(call.name)
        return Choice(run=True, always=True)

    chat = chat_with_tools(
        server, store, functions, tag="tools-always", policy="ask", ask=ask,
        tool="add", tool_once=1, tool_args='{"a": 1, "b": 2}',
    )  # fmt: skip
    for prompt in ("one", "two"):
        chat.send(prompt)
        await drain(chat, chat.answer())
    assert asked == ["add"]
    assert len(bodies(server, "tools-always")) == 4  # two answers of two rounds each
    await chat.close()


async def test_rounds_stop_at_max_tool_rounds_with_a_note(
    server: LLMServer, store: HistoryStore, functions: Path
) -> None:
    chat = chat_with_tools(
        server, store, functions, tag="tools-max", max_rounds=2, tool="add",
        tool_args='{"a": 1, "b": 2}',
    )  # fmt: skip
    chat.send("loop forever")
    live = chat.answer()
    seen = await drain(chat, live)
    stopped = [e for e in seen if isinstance(e, ToolsStopped)]
    assert len(stopped) == 1 and "max_tool_rounds" in stopped[0].note
    assert len(bodies(server, "tools-max")) == 3  # 2 rounds of tools, then no more
    assert live.rounds == 2
    await chat.close()


async def stop_when_started(live: LiveAnswer) -> None:
    await asyncio.to_thread(tool_gate.started.wait, 30)
    live.cancel()


async def test_a_stop_while_a_tool_runs_keeps_the_answer(
    server: LLMServer, store: HistoryStore, functions: Path
) -> None:
    chat = chat_with_tools(server, store, functions, tag="tools-stop", tool="slow", tool_args="{}")
    chat.send("wait")
    live = chat.answer()
    tool_gate.started.clear()
    tool_gate.release.clear()
    seen: list[Any] = []
    async for batch in live.batches():
        seen.extend(batch)
        if any(isinstance(e, ToolStarted) for e in batch):
            # The tool runs once this batch is taken: stop it from another task.
            asyncio.get_running_loop().call_soon(
                lambda: asyncio.ensure_future(stop_when_started(live))
            )
    tool_gate.release.set()
    turn = chat.finish(live)
    assert turn is not None and turn.status == "stopped"
    assert [p.name for p in turn.parts if isinstance(p, ToolCallPart)] == ["slow"]
    assert not any(isinstance(e, ToolFinished) for e in seen)
    assert len(bodies(server, "tools-stop")) == 1
    await chat.close()
