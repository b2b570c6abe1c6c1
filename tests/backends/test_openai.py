"""The ``openai`` and ``openai-completions`` dialects against the test server, with the
quirks of vLLM, llama.cpp and TGI's ``/v1`` routes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.servers.llm_server import (
    DEFAULT_TEXT,
    BackendMaker,
    LLMServer,
    drain,
    read_then_close,
)
from tests.servers.raw import LAST_CHUNK, chunk, head, raw_server
from tokentide.backends.base import GenerationRequest, collect
from tokentide.backends.events import Finish, ReasoningDelta, TextDelta, Usage
from tokentide.errors import (
    CannotConnect,
    HTTPStatusError,
    IncompleteStream,
    Overloaded,
    ProtocolError,
    ServerError,
)

ASK = GenerationRequest.from_prompt("Say hello", system="Be brief.")


@pytest.fixture
async def make() -> AsyncIterator[BackendMaker]:
    maker = BackendMaker("openai")
    yield maker
    await maker.aclose()


async def test_chat_stream_role_chunk_usage_and_done(server: LLMServer, make: BackendMaker) -> None:
    backend = make(
        server.url(tokens=2, tag="chat") + "/v1",
        model="m",
        api_key_env="KEY",
        env={"KEY": "sk-test"},
    )
    events, error = await drain(backend.stream(ASK))
    assert error is None
    assert events == [TextDelta("w0"), TextDelta(" w1"), Finish("stop", Usage(2, 2), model="m")]
    record = server.record("chat")
    assert record.path == "/v1/chat/completions"
    assert record.headers["authorization"] == "Bearer sk-test"
    assert record.body["stream_options"] == {"include_usage": True}
    assert record.body["messages"][0] == {"role": "system", "content": "Be brief."}


@pytest.mark.parametrize(
    "knobs",
    [
        {"nospace": 1},
        {"crlf": 1, "bom": 1},
        {"chunk": 1},
        {"keepalive": 3},
        {"all_roles": 1},  # TGI /v1: role on every delta
        {"role_first": 0, "usage": 0},
        {"done": 0},  # older TGI / llama.cpp: no [DONE], but a finish_reason
        {"ascii": 1},
    ],
)
async def test_chat_quirks(server: LLMServer, make: BackendMaker, knobs: Any) -> None:
    text = "héllo a\u2028b c\u0085d 日本 🎉"
    reply = await collect(make(server.url(text=text, **knobs) + "/v1").stream(ASK))
    assert reply.text == text
    assert reply.finish_reason == "stop"


async def test_reasoning_content(server: LLMServer, make: BackendMaker) -> None:
    events, _ = await drain(make(server.url(tokens=1, reasoning="think") + "/v1").stream(ASK))
    assert events[:2] == [ReasoningDelta("think"), TextDelta("w0")]


async def test_max_tokens_length(server: LLMServer, make: BackendMaker) -> None:
    reply = await collect(make(server.url() + "/v1", max_tokens=3).stream(ASK))
    assert (reply.text, reply.finish_reason) == ("The quick brown", "length")


@pytest.mark.parametrize(
    ("shape", "kind"),
    [
        ("object", "server_error"),  # OpenAI / vLLM, then [DONE]
        ("llamacpp", None),  # old llama.cpp `error:` field, then [DONE]
        ("tgi", None),  # TGI /v1: {"error":{"message","http_status_code":422}}
        ("string", None),
        ("event", "server_error"),
    ],
)
async def test_in_band_errors(
    server: LLMServer, make: BackendMaker, shape: str, kind: str | None
) -> None:
    url = server.url(tokens=4, error_at=2, error_shape=shape, error_message="KV cache full")
    events, error = await drain(make(url + "/v1").stream(ASK))
    assert events == [TextDelta("w0"), TextDelta(" w1")]
    assert isinstance(error, ServerError)
    assert "KV cache full" in str(error)
    assert error.kind == kind


async def test_error_before_any_token(server: LLMServer, make: BackendMaker) -> None:
    events, error = await drain(make(server.url(error_at=0) + "/v1").stream(ASK))
    assert events == []
    assert isinstance(error, ServerError)


@pytest.mark.parametrize(
    "knobs",
    [
        {"truncate": 1},  # all tokens, no finish_reason, no [DONE]
        {"truncate_at": 0},  # llama.cpp context overflow: 200 and zero events
        {"abort_at": 1, "partial": 1},  # server killed mid-event
    ],
)
async def test_incomplete(server: LLMServer, make: BackendMaker, knobs: Any) -> None:
    _, error = await drain(make(server.url(tokens=3, **knobs) + "/v1").stream(ASK))
    assert isinstance(error, IncompleteStream)


async def test_429_with_retry_after(server: LLMServer, make: BackendMaker) -> None:
    _, error = await drain(make(server.url(status=429, retry_after=7) + "/v1").stream(ASK))
    assert isinstance(error, Overloaded)
    assert error.retry_after == 7
    assert "Rate limit reached" in str(error)
    _, error = await drain(make(server.url(status=429, retry_after_ms=1500) + "/v1").stream(ASK))
    assert isinstance(error, Overloaded)
    assert error.retry_after == 1.5


async def test_html_error_page(server: LLMServer, make: BackendMaker) -> None:
    url = server.url(status=502, status_ctype="text/html") + "/v1"
    _, error = await drain(make(url).stream(ASK))
    assert isinstance(error, HTTPStatusError)
    assert "HTML page (Sign in to the network)" in str(error)


@pytest.mark.parametrize("knobs", [{"html": 1}, {"ctype": "text/plain"}])
async def test_200_that_is_not_a_stream(server: LLMServer, make: BackendMaker, knobs: Any) -> None:
    _, error = await drain(make(server.url(**knobs) + "/v1").stream(ASK))
    assert isinstance(error, ProtocolError)


async def test_create(server: LLMServer, make: BackendMaker) -> None:
    backend = make(server.url(tag="create", reasoning="r") + "/v1")
    reply = await backend.create(ASK)
    assert (reply.text, reply.reasoning, reply.finish_reason) == (DEFAULT_TEXT, "r", "stop")
    assert reply.usage == Usage(2, 9)
    assert server.record("create").body["stream"] is False
    with pytest.raises(HTTPStatusError, match="boom"):
        await make(server.url(error_at=0, error_message="boom") + "/v1").create(ASK)


async def test_completions(server: LLMServer, make: BackendMaker) -> None:
    backend = make(server.url(tokens=2, tag="cmpl") + "/v1", api="openai-completions")
    events, error = await drain(backend.stream(ASK))
    assert error is None
    assert events == [TextDelta("w0"), TextDelta(" w1"), Finish("stop", None, model="test-model")]
    record = server.record("cmpl")
    assert record.path == "/v1/completions"
    assert record.body["prompt"] == "Be brief.\n\nUser: Say hello\n\nAssistant:"
    reply = await backend.create(ASK)
    assert reply.text == "w0 w1"


async def test_cancel_closes_the_connection(server: LLMServer, make: BackendMaker) -> None:
    backend = make(server.url(tokens=50, stall_at=2, tag="cancel") + "/v1")
    events, lag = await read_then_close(server, backend.stream(ASK), "cancel")
    assert events == [TextDelta("w0"), TextDelta(" w1")]
    assert lag < 0.1


async def test_cancel_while_waiting_for_the_first_token(
    server: LLMServer, make: BackendMaker
) -> None:
    backend = make(server.url(tokens=5, stall_at=0, tag="cancel0") + "/v1")
    stream = backend.stream(ASK)
    task = asyncio.ensure_future(anext(stream))
    record = await server.wait_responding("cancel0")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    cancelled = time.monotonic()
    seen = await server.wait_disconnect(record)
    assert seen - cancelled < 0.1
    await stream.aclose()


async def test_connection_refused(make: BackendMaker) -> None:
    async with raw_server() as raw:
        url = raw.url
    _, error = await drain(make(url + "/v1").stream(ASK))
    assert isinstance(error, CannotConnect)


async def test_reset_mid_event_raw(make: BackendMaker) -> None:
    async with raw_server(
        head(),
        chunk(b'data: {"choices":[{"index":0,"delta":{"content":"Hi"}}]}\n\n'),
        chunk(b'data: {"choices":[{"index":0,"del'),
        "reset",
    ) as raw:
        events, error = await drain(make(raw.url + "/v1").stream(ASK))
    assert events == [TextDelta("Hi")]
    assert isinstance(error, IncompleteStream)


async def test_byte_exact_split_crlf_and_multibyte_raw(make: BackendMaker) -> None:
    event = 'data: {"choices":[{"index":0,"delta":{"content":"日本"},"finish_reason":"stop"}]}\r'
    raw_bytes = event.encode()
    cut = raw_bytes.index("本".encode()) + 1  # inside the multibyte character
    async with raw_server(
        head(ctype="text/event-stream"),
        chunk(raw_bytes[:cut]),
        chunk(raw_bytes[cut:]),
        chunk(b"\n\r\n"),
        chunk(b"data: [DONE]\n\n"),
        LAST_CHUNK,
    ) as raw:
        events, error = await drain(make(raw.url + "/v1").stream(ASK))
    assert error is None
    assert events == [TextDelta("日本"), Finish("stop", None)]


async def test_a_finished_stream_hands_its_connection_back_to_the_pool(server: LLMServer) -> None:
    """After [DONE] the rest of the body (the chunked end) is read, so the next answer
    reuses the connection instead of opening a new one (a TLS handshake, remotely)."""
    from tokentide.backends.openai import OpenAIChatBackend
    from tokentide.config.model import Profile
    from tokentide.generation import Generation, State

    backend = OpenAIChatBackend(
        Profile(name="p", api="openai", url=server.url(tokens=3) + "/v1"), {}
    )
    try:
        for _ in range(2):
            gen = Generation(backend, GenerationRequest.from_prompt("hi"))
            async with gen:
                assert await gen.wait() is State.DONE
            pool = backend.client._transport._pool  # type: ignore[attr-defined]
            assert len(pool.connections) == 1 and pool.connections[0].is_idle()
    finally:
        await backend.aclose()


# -- tool calls (issue 11 item 9): reported, not lost ------------------------------------

WEATHER = '{"city": "Paris", "unit": "celsius"}'


async def test_streamed_tool_call_fragments_are_joined_by_index(
    server: LLMServer, make: BackendMaker
) -> None:
    from tokentide.backends.events import ToolCallRequested

    url = server.url(text="Let me look.", tool="get_weather,get_time", tool_args=WEATHER)
    events, error = await drain(make(url + "/v1").stream(ASK))
    assert error is None
    calls = [e for e in events if isinstance(e, ToolCallRequested)]
    assert calls == [
        ToolCallRequested("get_weather", WEATHER, "call_0"),
        ToolCallRequested("get_time", WEATHER, "call_1"),
    ]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Let me look."
    assert isinstance(events[-1], Finish) and events[-1].reason == "tool_calls"
    assert events.index(calls[-1]) < len(events) - 1  # the calls come before the Finish


async def test_streamed_tool_call_tgi_repeats_the_id_and_nulls_the_name(
    server: LLMServer, make: BackendMaker
) -> None:
    """TGI repeats ``id``/``role`` on every fragment and sends ``name: null`` after the
    first (protocols.md §4.3), and may end without ``[DONE]``."""
    from tokentide.backends.events import ToolCallRequested

    url = server.url(text="", tool="get_weather", tool_args=WEATHER, all_roles=1, done=0)
    events, error = await drain(make(url + "/v1").stream(ASK))
    assert error is None
    assert [e for e in events if isinstance(e, ToolCallRequested)] == [
        ToolCallRequested("get_weather", WEATHER, "call_0")
    ]


def test_tool_call_fragments_with_null_names_and_repeated_ids() -> None:
    from tokentide.backends.events import ToolCallRequested
    from tokentide.backends.openai import _OpenAIParser
    from tokentide.backends.sse import SSEEvent

    parser = _OpenAIParser("http://x", chat=True)

    def feed(delta: dict[str, Any], finish: str | None = None) -> list[Any]:
        import json

        chunk = {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return parser.feed(SSEEvent(data=json.dumps(chunk)))

    call = {"index": 0, "id": "c1", "type": "function"}
    assert feed({"tool_calls": [{**call, "function": {"name": "f", "arguments": '{"a"'}}]}) == []
    assert feed({"tool_calls": [{**call, "function": {"name": None, "arguments": ": 1}"}}]}) == []
    assert feed({"function_call": {"name": "legacy", "arguments": "{}"}}, "tool_calls") == []
    assert parser.feed(SSEEvent(data="[DONE]")) == [
        ToolCallRequested("f", '{"a": 1}', "c1"),
        ToolCallRequested("legacy", "{}", None),
        Finish("tool_calls", None),
    ]


async def test_create_returns_the_tool_calls(server: LLMServer, make: BackendMaker) -> None:
    from tokentide.backends.events import ToolCallRequested

    url = server.url(text="", tool="get_weather", tool_args=WEATHER)
    reply = await make(url + "/v1").create(ASK)
    assert reply.text == ""
    assert reply.finish_reason == "tool_calls"
    assert tuple(reply.tool_calls) == (ToolCallRequested("get_weather", WEATHER, "call_0"),)
