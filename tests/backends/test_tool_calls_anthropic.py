"""Tool calling in the Anthropic Messages dialect against the loopback server: ``tools``
with ``input_schema``, ``tool_choice`` objects, ``tool_use`` blocks in the assistant turn
and a turn's ``tool_result`` blocks in one user message; streamed ``tool_use`` blocks
(``input_json_delta``) give the calls ``create`` gives (issue 14 item 1)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.servers.llm_server import BackendMaker, LLMServer, drain
from tokentide.backends.base import GenerationRequest, Message
from tokentide.backends.events import Finish, TextDelta, ToolCallRequested
from tokentide.backends.tool_spec import ForcedTool, ToolChoice, ToolSpec

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}}
TOOLS = (ToolSpec("get_weather", "The weather in a city.", SCHEMA), ToolSpec("now"))
OFFER = GenerationRequest.from_prompt("Weather?", system="Be brief.", tools=TOOLS)
ARGS = '{"city": "Zürich \\"centre\\"", "days": [1, 2]}'


@pytest.fixture
async def make() -> AsyncIterator[BackendMaker]:
    maker = BackendMaker("anthropic")
    yield maker
    await maker.aclose()


def calls_of(events: list[object]) -> list[ToolCallRequested]:
    return [e for e in events if isinstance(e, ToolCallRequested)]


async def test_a_request_without_tools_says_nothing_of_them(
    server: LLMServer, make: BackendMaker
) -> None:
    await make(server.url(tag="plain")).create(GenerationRequest.from_prompt("hi"))
    body = server.record("plain").body
    assert "tools" not in body and "tool_choice" not in body
    assert body["messages"] == [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("choice", "sent"),
    [
        ("auto", {"type": "auto"}),
        ("required", {"type": "any"}),
        ("none", {"type": "none"}),
        (ForcedTool("now"), {"type": "tool", "name": "now"}),
    ],
)
async def test_tools_and_the_choice_are_sent(
    server: LLMServer, make: BackendMaker, choice: ToolChoice, sent: object
) -> None:
    request = GenerationRequest.from_prompt("q", tools=TOOLS, tool_choice=choice)
    await make(server.url(tag=f"choice-{choice}")).create(request)
    body = server.record(f"choice-{choice}").body
    assert body["tools"] == [
        {"name": "get_weather", "description": "The weather in a city.", "input_schema": SCHEMA},
        {"name": "now", "description": "", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert body["tool_choice"] == sent


async def test_calls_and_results_go_back_as_blocks(server: LLMServer, make: BackendMaker) -> None:
    """Both results in one user turn, after the system prompt went to ``system``; the
    result's text reaches the server (``echo`` answers with the last turn's text)."""
    calls = (
        ToolCallRequested("get_weather", '{"city": "Paris"}', "toolu_a"),
        ToolCallRequested("now", "", None),  # no arguments, no id
    )
    request = GenerationRequest(
        messages=(
            Message("system", "Be brief."),
            Message("user", "Weather, and the time?"),
            Message("assistant", "I will look.", tool_calls=calls),
            Message("tool", "18 °C", tool_call_id="toolu_a", name="get_weather"),
            Message("tool", "clock broken", name="now", is_error=True),
        ),
        tools=TOOLS,
    )
    reply = await make(server.url(tag="results", echo=1)).create(request)
    assert reply.text == "18 °Cclock broken"
    body = server.record("results").body
    assert body["system"] == "Be brief."
    assert body["messages"] == [
        {"role": "user", "content": "Weather, and the time?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "I will look."},
                {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "call_2_1", "name": "now", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_a", "content": "18 °C", "is_error": False},
                {"type": "tool_result", "tool_use_id": "call_2_1", "content": "clock broken", "is_error": True},
            ],
        },
    ]  # fmt: skip


async def test_an_assistant_turn_of_calls_only_has_no_empty_text_block(
    server: LLMServer, make: BackendMaker
) -> None:
    """The API refuses empty text blocks."""
    call = ToolCallRequested("now", "{}", "toolu_1")
    request = GenerationRequest(
        messages=(
            Message("user", "time?"),
            Message("assistant", "", tool_calls=(call,)),
            Message("tool", "noon", tool_call_id="toolu_1", name="now"),
        )
    )
    await make(server.url(tag="calls-only")).create(request)
    turn = server.record("calls-only").body["messages"][1]
    assert turn["content"] == [{"type": "tool_use", "id": "toolu_1", "name": "now", "input": {}}]


@pytest.mark.parametrize(
    "knobs",
    [{}, {"tool_split": 1}, {"tool_split": 3, "ping": 0}, {"chunk": 5}],
    ids=["fragments-4", "split-1", "split-3", "chunked"],
)
async def test_streamed_tool_use_blocks_are_the_calls_create_gives(
    server: LLMServer, make: BackendMaker, knobs: dict[str, object]
) -> None:
    url = server.url(text="Let me look.", tool="*", tool_args=ARGS, tool_args_1="", **knobs)
    backend = make(url)
    events, error = await drain(backend.stream(OFFER))
    assert error is None
    expected = [
        ToolCallRequested("get_weather", ARGS, "toolu_0"),
        ToolCallRequested("now", "{}", "toolu_1"),  # no input_json_delta: its start's {}
    ]
    assert calls_of(events) == expected
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Let me look."
    assert isinstance(events[-1], Finish) and events[-1].reason == "tool_calls"
    reply = await backend.create(OFFER)
    assert list(reply.tool_calls) == expected  # a whole block's input: the same JSON
    assert reply.finish_reason == "tool_calls" and reply.text == "Let me look."
