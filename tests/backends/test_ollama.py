"""The ``ollama`` dialect against the test server's ``/api/chat`` NDJSON route."""

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

ASK = GenerationRequest.from_prompt("why is the sky blue?", system="Be brief.")


@pytest.fixture
async def make() -> AsyncIterator[BackendMaker]:
    maker = BackendMaker("ollama")
    yield maker
    await maker.aclose()


async def test_stream_and_done_line(server: LLMServer, make: BackendMaker) -> None:
    backend = make(
        server.url(tokens=2, tag="basic"),
        model="llama3.2",
        temperature=0.1,
        seed=3,
        options={"keep_alive": "5m"},
        params={"num_ctx": 4096, "think": True},
    )
    events, error = await drain(backend.stream(ASK))
    assert error is None
    assert events == [
        TextDelta("w0"),
        TextDelta(" w1"),
        Finish("stop", Usage(5, 2), model="llama3.2"),
    ]
    body = server.record("basic").body
    assert body["model"] == "llama3.2"
    assert body["stream"] is True
    assert body["keep_alive"] == "5m"
    assert body["think"] is True
    assert body["options"] == {"temperature": 0.1, "seed": 3, "num_ctx": 4096}
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "why is the sky blue?"},
    ]


async def test_num_predict_gives_length(server: LLMServer, make: BackendMaker) -> None:
    events, _ = await drain(make(server.url(tag="np"), max_tokens=3).stream(ASK))
    assert events[-1] == Finish("length", Usage(5, 3), model="llama3.2")
    assert server.record("np").body["options"] == {"num_predict": 3}


async def test_thinking_is_reasoning(server: LLMServer, make: BackendMaker) -> None:
    events, _ = await drain(make(server.url(tokens=1, reasoning="Rayleigh")).stream(ASK))
    assert events[:2] == [ReasoningDelta("Rayleigh"), TextDelta("w0")]


@pytest.mark.parametrize("knobs", [{"chunk": 1}, {"keepalive": 2}, {"final_newline": 0}])
async def test_ndjson_framing(server: LLMServer, make: BackendMaker, knobs: Any) -> None:
    # U+0085 and U+2028 are not line ends in NDJSON (Go does not escape U+0085)
    text = "a\u0085b c\u2028d 日本 🎉"
    reply = await collect(make(server.url(text=text, **knobs)).stream(ASK))
    assert reply.text == text
    assert reply.finish_reason == "stop"


async def test_error_line_mid_stream(server: LLMServer, make: BackendMaker) -> None:
    backend = make(server.url(tokens=3, error_at=1, error_message="model runner crashed"))
    events, error = await drain(backend.stream(ASK))
    assert events == [TextDelta("w0")]
    assert isinstance(error, ServerError)
    assert "model runner crashed" in str(error)


async def test_unknown_model_404(server: LLMServer, make: BackendMaker) -> None:
    _, error = await drain(make(server.url(), model="nope").stream(ASK))
    assert isinstance(error, HTTPStatusError)
    assert error.status == 404
    assert "model 'nope' not found" in str(error)


async def test_503_is_overloaded(server: LLMServer, make: BackendMaker) -> None:
    _, error = await drain(make(server.url(status=503, retry_after=4)).stream(ASK))
    assert isinstance(error, Overloaded)
    assert error.retry_after == 4


@pytest.mark.parametrize("knobs", [{"truncate": 1}, {"truncate_at": 0}, {"abort_at": 1}])
async def test_no_done_line_is_incomplete(
    server: LLMServer, make: BackendMaker, knobs: Any
) -> None:
    _, error = await drain(make(server.url(tokens=2, **knobs)).stream(ASK))
    assert isinstance(error, IncompleteStream)


async def test_html_page(server: LLMServer, make: BackendMaker) -> None:
    _, error = await drain(make(server.url(html=1)).stream(ASK))
    assert isinstance(error, ProtocolError)


async def test_create(server: LLMServer, make: BackendMaker) -> None:
    backend = make(server.url(tokens=2, reasoning="hm", tag="create"))
    reply = await backend.create(ASK)
    assert (reply.text, reply.reasoning, reply.finish_reason) == ("w0 w1", "hm", "stop")
    assert reply.usage == Usage(5, 2)
    assert server.record("create").body["stream"] is False
    with pytest.raises(HTTPStatusError, match="boom"):
        await make(server.url(error_at=0, error_message="boom")).create(ASK)


def test_bad_keep_alive(make: BackendMaker) -> None:
    with pytest.raises(ConfigError):
        make("http://127.0.0.1:9", options={"keep_alive": [1]})


async def test_cancel_closes_the_connection(server: LLMServer, make: BackendMaker) -> None:
    backend = make(server.url(tokens=50, stall_at=2, tag="cancel"))
    events, lag = await read_then_close(server, backend.stream(ASK), "cancel")
    assert events == [TextDelta("w0"), TextDelta(" w1")]
    assert lag < 0.1


# -- tool calls (issue 11 item 9): reported, not lost ------------------------------------

WEATHER = '{"city": "Paris", "unit": "celsius"}'


async def test_streamed_tool_calls(server: LLMServer, make: BackendMaker) -> None:
    from tokentide.backends.events import ToolCallRequested

    url = server.url(text="Let me look.", tool="get_weather,get_time", tool_args=WEATHER)
    events, error = await drain(make(url).stream(ASK))
    assert error is None
    assert [e for e in events if isinstance(e, ToolCallRequested)] == [
        ToolCallRequested("get_weather", WEATHER),  # the object, serialised
        ToolCallRequested("get_time", WEATHER),
    ]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Let me look."
    assert isinstance(events[-1], Finish)


async def test_create_returns_the_tool_calls(server: LLMServer, make: BackendMaker) -> None:
    from tokentide.backends.events import ToolCallRequested

    reply = await make(server.url(text="", tool="get_weather", tool_args=WEATHER)).create(ASK)
    assert reply.text == ""
    assert tuple(reply.tool_calls) == (ToolCallRequested("get_weather", WEATHER),)


def test_arguments_too_deep_to_serialise_are_named_not_a_crash() -> None:
    from tokentide.backends.tool_calls import arguments_text

    deep: Any = []
    for _ in range(100_000):
        deep = [deep]
    assert arguments_text(deep) == "(arguments too deeply nested to show)"
    assert arguments_text({"city": "Paris"}) == '{"city": "Paris"}'
