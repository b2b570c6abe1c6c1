"""Tool calling in Ollama's native ``/api/chat`` against the loopback server: ``tools``
in OpenAI's shape (no ``tool_choice``), calls with their arguments as objects, results
as ``role: "tool"`` with ``tool_name``; ``message.tool_calls`` come whole, streamed or
not, and an answer with calls ends with ``tool_calls`` (issue 14 item 1)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.servers.llm_server import BackendMaker, LLMServer, drain
from tokentide.backends.base import GenerationRequest, Message
from tokentide.backends.events import Finish, TextDelta, ToolCallRequested
from tokentide.backends.tool_spec import ForcedTool, ToolChoice, ToolSpec

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}}
TOOLS = (ToolSpec("get_weather", "The weather in a city.", SCHEMA),)
OFFER = GenerationRequest.from_prompt("Weather?", tools=TOOLS, model="llama3.2")
ARGS = '{"city": "Zürich", "days": [1, 2]}'


@pytest.fixture
async def make() -> AsyncIterator[BackendMaker]:
    maker = BackendMaker("ollama")
    yield maker
    await maker.aclose()


async def test_a_request_without_tools_says_nothing_of_them(
    server: LLMServer, make: BackendMaker
) -> None:
    await make(server.url(tag="plain")).create(GenerationRequest.from_prompt("hi"))
    body = server.record("plain").body
    assert "tools" not in body and "tool_choice" not in body
    assert body["messages"] == [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize("choice", ["auto", "required", ForcedTool("get_weather"), "none"])
async def test_tools_are_sent_unless_the_choice_is_none(
    server: LLMServer, make: BackendMaker, choice: ToolChoice
) -> None:
    """Ollama has no tool_choice: a call cannot be forced, and ``none`` offers nothing."""
    request = GenerationRequest.from_prompt("q", tools=TOOLS, tool_choice=choice)
    await make(server.url(tag=f"choice-{choice}")).create(request)
    body = server.record(f"choice-{choice}").body
    assert "tool_choice" not in body
    if choice == "none":
        assert "tools" not in body
    else:
        assert body["tools"] == [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "The weather in a city.",
                    "parameters": SCHEMA,
                },
            }
        ]


async def test_calls_and_results_go_back_in_ollama_shape(
    server: LLMServer, make: BackendMaker
) -> None:
    calls = (
        ToolCallRequested("get_weather", '{"city": "Paris"}'),
        ToolCallRequested("get_weather", "not json"),
    )
    request = GenerationRequest(
        messages=(
            Message("user", "Paris and?"),
            Message("assistant", "Looking.", tool_calls=calls),
            Message("tool", "18 °C", name="get_weather"),
            Message("tool", "bad arguments", name="get_weather", is_error=True),
        ),
        tools=TOOLS,
    )
    reply = await make(server.url(tag="results", echo=1)).create(request)
    assert reply.text == "bad arguments"
    assert server.record("results").body["messages"] == [
        {"role": "user", "content": "Paris and?"},
        {
            "role": "assistant",
            "content": "Looking.",
            "tool_calls": [
                {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
                {"function": {"name": "get_weather", "arguments": {}}},  # not JSON: {}
            ],
        },
        {"role": "tool", "content": "18 °C", "tool_name": "get_weather"},
        {"role": "tool", "content": "bad arguments", "tool_name": "get_weather"},
    ]


@pytest.mark.parametrize(
    "knobs", [{}, {"tool_lines": 1}, {"chunk": 6}], ids=["one-line", "a-line-each", "chunked"]
)
async def test_streamed_calls_are_the_calls_create_gives(
    server: LLMServer, make: BackendMaker, knobs: dict[str, object]
) -> None:
    url = server.url(
        text="Let me look.", tool="get_weather,now", tool_args=ARGS, tool_args_1="{}", **knobs
    )
    backend = make(url)
    events, error = await drain(backend.stream(OFFER))
    assert error is None
    expected = [ToolCallRequested("get_weather", ARGS), ToolCallRequested("now", "{}")]
    assert [e for e in events if isinstance(e, ToolCallRequested)] == expected
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Let me look."
    assert isinstance(events[-1], Finish) and events[-1].reason == "tool_calls"  # Ollama: stop
    reply = await backend.create(OFFER)
    assert list(reply.tool_calls) == expected
    assert reply.finish_reason == "tool_calls" and reply.text == "Let me look."


async def test_an_answer_without_calls_still_ends_with_stop(
    server: LLMServer, make: BackendMaker
) -> None:
    events, error = await drain(make(server.url(tokens=2)).stream(OFFER))
    assert error is None and isinstance(events[-1], Finish) and events[-1].reason == "stop"
