"""The ``anthropic`` dialect against the test server's Messages route over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.servers.llm_server import (
    BackendMaker,
    LLMServer,
    drain,
    read_then_close,
)
from tokentide.backends.base import GenerationRequest, collect
from tokentide.backends.events import Finish, ReasoningDelta, TextDelta, Usage
from tokentide.errors import (
    ConfigError,
    HTTPStatusError,
    IncompleteStream,
    Overloaded,
    ProtocolError,
    ServerError,
)

ASK = GenerationRequest.from_prompt("Say hi", system="Be brief.")
KEY = {"ANTHROPIC_API_KEY": "sk-ant-test-key"}


@pytest.fixture
async def make() -> AsyncIterator[BackendMaker]:
    maker = BackendMaker("anthropic")
    yield maker
    await maker.aclose()


async def test_stream_text_usage_and_stop(server: LLMServer, make: BackendMaker) -> None:
    backend = make(
        server.url(tokens=3, tag="basic", api_key="sk-ant-test-key"),
        model="claude-test",
        api_key_env="ANTHROPIC_API_KEY",
        env=KEY,
        temperature=0.2,
    )
    events, error = await drain(backend.stream(ASK))
    assert error is None
    assert events == [
        TextDelta("w0"),
        TextDelta(" w1"),
        TextDelta(" w2"),
        Finish("stop", Usage(4, 3), model="claude-test"),
    ]
    record = server.record("basic")
    assert record.path == "/v1/messages"
    assert record.headers["x-api-key"] == "sk-ant-test-key"
    assert "authorization" not in record.headers
    assert record.headers["anthropic-version"] == "2023-06-01"
    assert record.body["system"] == "Be brief."
    assert record.body["messages"] == [{"role": "user", "content": "Say hi"}]
    assert record.body["max_tokens"] == 1024
    assert record.body["stream"] is True
    assert record.body["temperature"] == 0.2
    assert record.body["model"] == "claude-test"


async def test_version_option_and_max_tokens(server: LLMServer, make: BackendMaker) -> None:
    backend = make(server.url(tag="ver"), options={"anthropic_version": "2024-01-01"}, max_tokens=2)
    events, error = await drain(backend.stream(GenerationRequest.from_prompt("x", stop=["."])))
    assert error is None
    record = server.record("ver")
    assert record.headers["anthropic-version"] == "2024-01-01"
    assert record.body["max_tokens"] == 2
    assert record.body["stop_sequences"] == ["."]
    assert events[-1].reason == "length"


def test_bad_version_option(make: BackendMaker) -> None:
    with pytest.raises(ConfigError):
        make("http://127.0.0.1:9", options={"anthropic_version": 5})


async def test_thinking_is_reasoning(server: LLMServer, make: BackendMaker) -> None:
    events, error = await drain(make(server.url(tokens=1, reasoning="Let me see")).stream(ASK))
    assert error is None
    assert events[:3] == [ReasoningDelta("Let"), ReasoningDelta(" me"), ReasoningDelta(" see")]
    assert events[3] == TextDelta("w0")
    reply = await collect(make(server.url(tokens=2, reasoning="hm")).stream(ASK))
    assert (reply.text, reply.reasoning) == ("w0 w1", "hm")


async def test_no_ping_and_framing(server: LLMServer, make: BackendMaker) -> None:
    text = "日本 a\u2028b 🎉"
    for knobs in ({"ping": 0}, {"nospace": 1, "crlf": 1}, {"chunk": 3, "keepalive": 1}):
        reply = await collect(make(server.url(text=text, **knobs)).stream(ASK))
        assert reply.text == text, knobs


async def test_wrong_key_is_401(server: LLMServer, make: BackendMaker) -> None:
    backend = make(
        server.url(api_key="right"),
        api_key_env="ANTHROPIC_API_KEY",
        env={"ANTHROPIC_API_KEY": "wrong"},
    )
    _, error = await drain(backend.stream(ASK))
    assert isinstance(error, HTTPStatusError)
    assert error.status == 401
    assert "invalid x-api-key" in str(error)
    assert "ANTHROPIC_API_KEY" in str(error)  # the hint names the variable
    assert "wrong" not in str(error)


async def test_529_is_overloaded(server: LLMServer, make: BackendMaker) -> None:
    _, error = await drain(make(server.url(status=529, retry_after=2)).stream(ASK))
    assert isinstance(error, Overloaded)
    assert error.status == 529
    assert error.retryable
    assert error.retry_after == 2
    assert "Overloaded" in str(error)


async def test_error_event_mid_stream(server: LLMServer, make: BackendMaker) -> None:
    events, error = await drain(make(server.url(tokens=4, error_at=2)).stream(ASK))
    assert events == [TextDelta("w0"), TextDelta(" w1")]
    assert isinstance(error, ServerError)
    assert error.kind == "overloaded_error"
    assert error.retryable
    events, error = await drain(
        make(server.url(error_at=0, error_kind="api_error", error_message="internal")).stream(ASK)
    )
    assert events == []
    assert isinstance(error, ServerError)
    assert error.kind == "api_error"
    assert not error.retryable
    assert "internal" in str(error)


@pytest.mark.parametrize("knobs", [{"truncate": 1}, {"truncate_at": 1}, {"abort_at": 2}])
async def test_no_message_stop_is_incomplete(
    server: LLMServer, make: BackendMaker, knobs: Any
) -> None:
    _, error = await drain(make(server.url(tokens=3, **knobs)).stream(ASK))
    assert isinstance(error, IncompleteStream)


async def test_html_page(server: LLMServer, make: BackendMaker) -> None:
    _, error = await drain(make(server.url(html=1)).stream(ASK))
    assert isinstance(error, ProtocolError)
    assert "HTML" in str(error)


async def test_create_joins_blocks(server: LLMServer, make: BackendMaker) -> None:
    backend = make(server.url(tokens=4, reasoning="hmm", tag="create"))
    reply = await backend.create(ASK)
    assert reply.text == "w0 w1 w2 w3"
    assert reply.reasoning == "hmm"
    assert reply.finish_reason == "stop"
    assert reply.usage == Usage(4, 4)
    record = server.record("create")
    assert record.body["stream"] is False
    assert record.headers["anthropic-version"] == "2023-06-01"


async def test_create_errors(server: LLMServer, make: BackendMaker) -> None:
    with pytest.raises(Overloaded):
        await make(server.url(error_at=0, error_kind="overloaded_error")).create(ASK)
    with pytest.raises(HTTPStatusError) as caught:
        await make(server.url(status=400, error_message="messages: roles must alternate")).create(
            ASK
        )
    assert "roles must alternate" in str(caught.value)


async def test_cancel_closes_the_connection(server: LLMServer, make: BackendMaker) -> None:
    backend = make(server.url(tokens=50, stall_at=2, tag="cancel"))
    events, lag = await read_then_close(server, backend.stream(ASK), "cancel")
    assert events == [TextDelta("w0"), TextDelta(" w1")]
    assert lag < 0.1


# -- tool calls (issue 11 item 9): reported, not lost ------------------------------------

WEATHER = '{"city": "Paris", "unit": "celsius"}'


async def test_streamed_tool_use_blocks_join_their_json(
    server: LLMServer, make: BackendMaker
) -> None:
    from tokentide.backends.events import ToolCallRequested

    url = server.url(text="Let me look.", tool="get_weather,get_time", tool_args=WEATHER)
    events, error = await drain(make(url).stream(ASK))
    assert error is None
    assert [e for e in events if isinstance(e, ToolCallRequested)] == [
        ToolCallRequested("get_weather", WEATHER, "toolu_0"),
        ToolCallRequested("get_time", WEATHER, "toolu_1"),
    ]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Let me look."
    assert isinstance(events[-1], Finish) and events[-1].reason == "tool_calls"


async def test_streamed_tool_use_without_arguments(server: LLMServer, make: BackendMaker) -> None:
    from tokentide.backends.events import ToolCallRequested

    events, error = await drain(make(server.url(text="", tool="now", tool_args="")).stream(ASK))
    assert error is None
    assert [e for e in events if isinstance(e, ToolCallRequested)] == [
        ToolCallRequested("now", "{}", "toolu_0")
    ]


async def test_create_returns_the_tool_use_blocks(server: LLMServer, make: BackendMaker) -> None:
    from tokentide.backends.events import ToolCallRequested

    reply = await make(server.url(text="Hm.", tool="get_weather", tool_args=WEATHER)).create(ASK)
    assert reply.text == "Hm."
    assert reply.finish_reason == "tool_calls"
    assert tuple(reply.tool_calls) == (ToolCallRequested("get_weather", WEATHER, "toolu_0"),)
