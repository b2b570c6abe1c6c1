"""Tool calling in the OpenAI chat dialect (vLLM, llama.cpp server, TGI ``/v1``) against
the loopback server: what tokentide sends (``tools``, ``tool_choice``, assistant
``tool_calls``, ``role: "tool"`` results) and the calls it assembles from streamed
deltas, the same as ``create`` gives (issue 14 item 1)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from tests.servers.llm_server import BackendMaker, LLMServer, drain
from tokentide.backends.base import GenerationRequest, Message
from tokentide.backends.events import Finish, TextDelta, ToolCallRequested
from tokentide.backends.tool_spec import ForcedTool, ToolChoice, ToolSpec

WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}
TOOLS = (
    ToolSpec("get_weather", "The weather in a city.", WEATHER_SCHEMA),
    ToolSpec("get_time", "The time in a zone."),
)
ASK = GenerationRequest.from_prompt("Weather in Paris?", system="Be brief.")
OFFER = GenerationRequest.from_prompt("Weather in Paris?", tools=TOOLS)
ARGS = '{"city": "Zürich \\"centre\\"", "days": [1, 2]}'


@pytest.fixture
async def make() -> AsyncIterator[BackendMaker]:
    maker = BackendMaker("openai")
    yield maker
    await maker.aclose()


def calls_of(events: list[object]) -> list[ToolCallRequested]:
    return [e for e in events if isinstance(e, ToolCallRequested)]


async def test_a_request_without_tools_says_nothing_of_them(
    server: LLMServer, make: BackendMaker
) -> None:
    await make(server.url(tag="plain") + "/v1").create(ASK)
    body = server.record("plain").body
    assert "tools" not in body and "tool_choice" not in body
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris?"},
    ]


@pytest.mark.parametrize(
    ("choice", "sent"),
    [
        ("auto", "auto"),
        ("none", "none"),
        ("required", "required"),
        (ForcedTool("get_time"), {"type": "function", "function": {"name": "get_time"}}),
    ],
)
async def test_tools_and_the_choice_are_sent(
    server: LLMServer, make: BackendMaker, choice: ToolChoice, sent: object
) -> None:
    request = GenerationRequest.from_prompt("q", tools=TOOLS, tool_choice=choice)
    await make(server.url(tag=f"choice-{choice}") + "/v1").create(request)
    body = server.record(f"choice-{choice}").body
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "The weather in a city.",
                "parameters": WEATHER_SCHEMA,
            },
        },
        {
            "type": "function",
            "function": {
                "name": "get_time",
                "description": "The time in a zone.",
                "parameters": {"type": "object", "properties": {}},
            },
        },
    ]
    assert body["tool_choice"] == sent


async def test_calls_and_results_go_back_in_openai_shape(
    server: LLMServer, make: BackendMaker
) -> None:
    """The result's content reaches the server: ``echo`` answers with the last message."""
    weather = ToolCallRequested("get_weather", '{"city": "Paris"}', "call_x")
    broken = ToolCallRequested("get_time", '{"tz": "CE', None)  # cut short, no id
    request = GenerationRequest(
        messages=(
            Message("user", "Weather and time?"),
            Message("assistant", "", tool_calls=(weather, broken)),
            Message("tool", "18 °C", tool_call_id="call_x", name="get_weather"),
            Message("tool", "bad arguments", name="get_time", is_error=True),
        ),
        tools=TOOLS,
    )
    reply = await make(server.url(tag="results", echo=1) + "/v1").create(request)
    assert reply.text == "bad arguments" and reply.finish_reason == "stop"
    assert server.record("results").body["messages"] == [
        {"role": "user", "content": "Weather and time?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "call_x",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                },
                {
                    "id": "call_1_1",  # made up, and given to its result too
                    "type": "function",
                    "function": {"name": "get_time", "arguments": "{}"},  # not JSON: {}
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_x", "content": "18 °C"},
        {"role": "tool", "tool_call_id": "call_1_1", "content": "bad arguments"},
    ]


@pytest.mark.parametrize(
    "knobs",
    [
        {},  # each call's fragments in turn, 4 characters each
        {"tool_split": 1},  # every escape and multibyte character split
        {"tool_split": 3, "tool_interleave": 1},  # parallel calls' fragments interleaved
        {"tool_split": 5, "tool_index0": 1},  # every call at index 0, told apart by id
        {"chunk": 7},  # SSE events split across network reads too
    ],
    ids=["sequential", "split-1", "interleaved", "index-0", "chunked"],
)
async def test_streamed_calls_are_the_calls_create_gives(
    server: LLMServer, make: BackendMaker, knobs: dict[str, object]
) -> None:
    url = (
        server.url(text="Let me look.", tool="*", tool_args=ARGS, tool_args_1="{}", **knobs) + "/v1"
    )
    backend = make(url)
    events, error = await drain(backend.stream(OFFER))
    assert error is None
    expected = [
        ToolCallRequested("get_weather", ARGS, "call_0"),
        ToolCallRequested("get_time", "{}", "call_1"),
    ]
    assert calls_of(events) == expected
    assert json.loads(expected[0].arguments)["city"] == 'Zürich "centre"'
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Let me look."
    assert isinstance(events[-1], Finish) and events[-1].reason == "tool_calls"
    reply = await backend.create(OFFER)
    assert list(reply.tool_calls) == expected
    assert reply.finish_reason == "tool_calls" and reply.text == "Let me look."


async def test_a_forced_call_ended_with_stop_is_reported_as_tool_calls(
    server: LLMServer, make: BackendMaker
) -> None:
    """vLLM ends a call forced by ``tool_choice`` with ``finish_reason: "stop"``."""
    backend = make(server.url(text="", tool="get_time", tool_args="{}", finish="stop") + "/v1")
    request = GenerationRequest.from_prompt("q", tools=TOOLS, tool_choice="required")
    events, error = await drain(backend.stream(request))
    assert error is None and isinstance(events[-1], Finish)
    assert events[-1].reason == "tool_calls"
    assert (await backend.create(request)).finish_reason == "tool_calls"


async def test_malformed_streamed_arguments_arrive_as_sent(
    server: LLMServer, make: BackendMaker
) -> None:
    """Not validated here: the tools layer answers the model with an error result."""
    backend = make(server.url(text="", tool="get_weather", tool_args='{"city": "Par') + "/v1")
    events, error = await drain(backend.stream(OFFER))
    assert error is None
    assert calls_of(events) == [ToolCallRequested("get_weather", '{"city": "Par', "call_0")]


async def test_no_tool_offered_means_no_call_from_tool_star(
    server: LLMServer, make: BackendMaker
) -> None:
    """The server's ``tool=*`` calls only what the request offered."""
    events, error = await drain(make(server.url(tool="*") + "/v1").stream(ASK))
    assert error is None and calls_of(events) == []
    assert isinstance(events[-1], Finish) and events[-1].reason == "stop"


def test_a_call_sent_both_as_tool_calls_and_function_call_is_one_call() -> None:
    """llama-cpp-python's server writes each call in both fields, streamed and not."""
    from tokentide.backends.openai import _OpenAIParser, _reply_tool_calls
    from tokentide.backends.sse import SSEEvent

    function = {"name": "get_weather", "arguments": '{"city": "Paris"}'}
    call = {"index": 0, "id": "call_1", "type": "function", "function": function}
    parser = _OpenAIParser("http://x", chat=True)
    delta = {"role": "assistant", "content": None, "tool_calls": [call], "function_call": function}
    chunk = {"choices": [{"index": 0, "delta": delta, "finish_reason": "tool_calls"}]}
    assert parser.feed(SSEEvent(data=json.dumps(chunk))) == []
    expected = ToolCallRequested("get_weather", '{"city": "Paris"}', "call_1")
    assert parser.feed(SSEEvent(data="[DONE]")) == [expected, Finish("tool_calls", None)]
    message = {
        "role": "assistant",
        "content": None,
        "tool_calls": [call],
        "function_call": function,
    }
    assert _reply_tool_calls(message) == (expected,)
