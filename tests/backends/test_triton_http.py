"""The ``triton-http`` dialect against the test server's Triton generate routes."""

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
from tokentide.backends.events import Finish, TextDelta
from tokentide.errors import (
    ConfigError,
    HTTPStatusError,
    IncompleteStream,
    ProtocolError,
    ServerError,
)

ASK = GenerationRequest.from_prompt("Hi")


@pytest.fixture
async def make() -> AsyncIterator[BackendMaker]:
    maker = BackendMaker("triton-http")
    yield maker
    await maker.aclose()


async def test_stream_to_clean_eof(server: LLMServer, make: BackendMaker) -> None:
    backend = make(
        server.url(tokens=3, tag="basic"), model="toy", params={"max_tokens": 3}, temperature=0
    )
    events, error = await drain(backend.stream(ASK))
    assert error is None
    assert events == [TextDelta("w0"), TextDelta(" w1"), TextDelta(" w2"), Finish(None)]
    record = server.record("basic")
    assert record.path == "/v2/models/toy/generate_stream"
    assert record.body == {
        "text_input": "Hi",
        "parameters": {"stream": True, "temperature": 0},
        "max_tokens": 3,
    }


async def test_version_and_tensor_names(server: LLMServer, make: BackendMaker) -> None:
    backend = make(
        server.url(tokens=2, input="prompt", output="answer", tag="names"),
        model="my model",
        options={"model_version": 3, "input_tensor": "prompt", "output_tensor": "answer"},
    )
    reply = await collect(backend.stream(ASK))
    assert reply.text == "w0 w1"
    record = server.record("names")
    assert record.path == "/v2/models/my model/versions/3/generate_stream"
    assert record.body["prompt"] == "Hi"


async def test_missing_output_tensor_is_explained(server: LLMServer, make: BackendMaker) -> None:
    backend = make(server.url(output="other"), model="toy")
    _, error = await drain(backend.stream(ASK))
    assert isinstance(error, ProtocolError)
    assert "'text_output'" in str(error)
    assert "other" in str(error)
    assert "output_tensor" in str(error)


async def test_cumulative_yields(server: LLMServer, make: BackendMaker) -> None:
    backend = make(
        server.url(text="héllo wörld 日本", cumulative=1),
        model="toy",
        options={"yields": "cumulative"},
    )
    events, error = await drain(backend.stream(ASK))
    assert error is None
    assert events == [TextDelta("héllo"), TextDelta(" wörld"), TextDelta(" 日本"), Finish()]


async def test_cumulative_declared_but_server_sends_deltas(
    server: LLMServer, make: BackendMaker
) -> None:
    backend = make(server.url(tokens=3), model="toy", options={"yields": "cumulative"})
    events, error = await drain(backend.stream(ASK))
    assert events == [TextDelta("w0")]
    assert isinstance(error, ProtocolError)
    assert 'yields = "delta"' in str(error)


async def test_auto_yields_falls_back_to_delta(server: LLMServer, make: BackendMaker) -> None:
    backend = make(server.url(tokens=3), model="toy", options={"yields": "auto"})
    assert (await collect(backend.stream(ASK))).text == "w0 w1 w2"


def test_config_errors(make: BackendMaker) -> None:
    with pytest.raises(ConfigError, match="no model"):
        make("http://127.0.0.1:9")
    with pytest.raises(ConfigError, match="yields"):
        make("http://127.0.0.1:9", model="m", options={"yields": "sometimes"})


async def test_error_event_mid_stream(server: LLMServer, make: BackendMaker) -> None:
    backend = make(server.url(tokens=4, error_at=2, error_message="engine died"), model="toy")
    events, error = await drain(backend.stream(ASK))
    assert events == [TextDelta("w0"), TextDelta(" w1")]
    assert isinstance(error, ServerError)
    assert "engine died" in str(error)


async def test_model_exception_is_400_with_an_event_stream(
    server: LLMServer, make: BackendMaker
) -> None:
    # real Triton: 400, text/event-stream, one data: {"error": "Traceback ..."} event
    backend = make(server.url(input="question"), model="toy")
    _, error = await drain(backend.stream(ASK))
    assert isinstance(error, HTTPStatusError)
    assert error.status == 400
    assert "KeyError: 'question'" in str(error)
    assert "data:" not in error.message


async def test_unknown_model_is_404(server: LLMServer, make: BackendMaker) -> None:
    _, error = await drain(make(server.url(), model="nope").stream(ASK))
    assert isinstance(error, HTTPStatusError)
    assert error.status == 404
    assert "Request for unknown model: 'nope' is not found" in str(error)


async def test_truncated_chunked_body(server: LLMServer, make: BackendMaker) -> None:
    events, error = await drain(make(server.url(tokens=3, abort_at=1), model="toy").stream(ASK))
    assert events == [TextDelta("w0")]
    assert isinstance(error, IncompleteStream)


@pytest.mark.parametrize("knobs", [{"nospace": 1}, {"crlf": 1, "bom": 1}, {"chunk": 2}])
async def test_framing(server: LLMServer, make: BackendMaker, knobs: Any) -> None:
    text = "a\u2028b c\u0085d 🎉 é"
    assert (await collect(make(server.url(text=text, **knobs), model="t").stream(ASK))).text == text


async def test_create_uses_generate(server: LLMServer, make: BackendMaker) -> None:
    backend = make(server.url(tokens=2, tag="create"), model="toy")
    reply = await backend.create(ASK)
    assert reply.text == "w0 w1"
    record = server.record("create")
    assert record.path == "/v2/models/toy/generate"
    assert record.body["parameters"]["stream"] is False


async def test_create_on_a_decoupled_model_falls_back_to_the_stream(
    server: LLMServer, make: BackendMaker
) -> None:
    backend = make(server.url(tokens=2, decoupled=1, tag="decoupled"), model="toy")
    reply = await backend.create(ASK)
    assert reply.text == "w0 w1"
    assert server.last().path == "/v2/models/toy/generate_stream"


async def test_create_error(server: LLMServer, make: BackendMaker) -> None:
    with pytest.raises(HTTPStatusError, match="bad input"):
        await make(server.url(error_at=0, error_message="bad input"), model="toy").create(ASK)


async def test_cancel_closes_the_connection(server: LLMServer, make: BackendMaker) -> None:
    backend = make(server.url(tokens=50, stall_at=2, tag="cancel"), model="toy")
    events, lag = await read_then_close(server, backend.stream(ASK), "cancel")
    assert events == [TextDelta("w0"), TextDelta(" w1")]
    assert lag < 0.1
