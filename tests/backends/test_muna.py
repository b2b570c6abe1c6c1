"""The ``muna`` dialect against the test server's remote prediction route."""

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
from tokentide.backends.muna import decode_data_url
from tokentide.errors import (
    ConfigError,
    HTTPStatusError,
    IncompleteStream,
    ProtocolError,
    ServerError,
)

ASK = GenerationRequest.from_prompt("héllo?")
KEY = {"MUNA_ACCESS_KEY": "muna-key"}


@pytest.fixture
async def make() -> AsyncIterator[BackendMaker]:
    maker = BackendMaker("muna")
    yield maker
    await maker.aclose()


def backend_for(make: BackendMaker, url: str, **options: Any) -> Any:
    return make(
        url,
        api_key_env="MUNA_ACCESS_KEY",
        env=KEY,
        options={"tag": "@acme/llm", **options},
    )


async def test_cumulative_predictions_become_deltas(server: LLMServer, make: BackendMaker) -> None:
    backend = backend_for(make, server.url(text="hello from Muna", tag="basic"))
    events, error = await drain(backend.stream(ASK))
    assert error is None
    assert events == [TextDelta("hello"), TextDelta(" from"), TextDelta(" Muna"), Finish()]
    record = server.record("basic")
    assert record.path == "/predictions/remote"
    assert record.headers["accept"] == "text/event-stream"
    assert record.headers["authorization"] == "Bearer muna-key"
    body = record.body
    assert body["tag"] == "@acme/llm"
    assert body["acceleration"] == "remote_auto"
    assert body["stream"] is True
    assert body["inputs"]["prompt"]["type"] == "string"
    assert decode_data_url(body["inputs"]["prompt"]["data"]) == "héllo?"


@pytest.mark.parametrize("encoding", ["base64", "percent", "url"])
async def test_value_encodings(server: LLMServer, make: BackendMaker, encoding: str) -> None:
    text = "日本語 a\u2028b 🎉 100%"
    backend = backend_for(make, server.url(text=text, encoding=encoding))
    assert (await collect(backend.stream(ASK))).text == text


async def test_options(server: LLMServer, make: BackendMaker) -> None:
    backend = backend_for(
        make,
        server.url(tokens=3, delta=1, input="text", tag="opts"),
        input_name="text",
        acceleration="remote_a100",
        yields="delta",
    )
    assert (await collect(backend.stream(ASK))).text == "w0 w1 w2"
    assert server.record("opts").body["acceleration"] == "remote_a100"


async def test_delta_predictor_declared_cumulative_is_an_error(
    server: LLMServer, make: BackendMaker
) -> None:
    events, error = await drain(backend_for(make, server.url(tokens=3, delta=1)).stream(ASK))
    assert events == [TextDelta("w0")]
    assert isinstance(error, ProtocolError)


async def test_prediction_error_field(server: LLMServer, make: BackendMaker) -> None:
    backend = backend_for(make, server.url(tokens=4, error_at=2, error_message="OOM in predictor"))
    events, error = await drain(backend.stream(ASK))
    assert events == [TextDelta("w0"), TextDelta(" w1")]
    assert isinstance(error, ServerError)
    assert "OOM in predictor" in str(error)


async def test_errors_body_before_the_stream(server: LLMServer, make: BackendMaker) -> None:
    backend = backend_for(make, server.url(input="image"))  # server expects another input
    _, error = await drain(backend.stream(ASK))
    assert isinstance(error, HTTPStatusError)
    assert error.status == 400
    assert "Missing input 'image'" in str(error)


async def test_broken_connection(server: LLMServer, make: BackendMaker) -> None:
    _, error = await drain(backend_for(make, server.url(tokens=3, abort_at=1)).stream(ASK))
    assert isinstance(error, IncompleteStream)


async def test_create(server: LLMServer, make: BackendMaker) -> None:
    backend = backend_for(make, server.url(tokens=3, tag="create"))
    assert (await backend.create(ASK)).text == "w0 w1 w2"
    assert "stream" not in server.record("create").body
    by_url = backend_for(make, server.url(text="über", encoding="url"))
    assert (await by_url.create(ASK)).text == "über"
    with pytest.raises(ServerError, match="nope"):
        await backend_for(make, server.url(error_at=0, error_message="nope")).create(ASK)


def test_tag_required(make: BackendMaker) -> None:
    with pytest.raises(ConfigError, match="tag"):
        make("http://127.0.0.1:9")
    assert make("http://127.0.0.1:9", model="@a/b").tag == "@a/b"


def test_bad_data_url() -> None:
    with pytest.raises(ProtocolError):
        decode_data_url("data:text/plain;base64,!!!")
    with pytest.raises(ProtocolError):
        decode_data_url("data:no-comma")
    assert decode_data_url("data:,a%20b") == "a b"


async def test_cancel_closes_the_connection(server: LLMServer, make: BackendMaker) -> None:
    backend = backend_for(make, server.url(tokens=50, stall_at=2, tag="cancel"))
    events, lag = await read_then_close(server, backend.stream(ASK), "cancel")
    assert events == [TextDelta("w0"), TextDelta(" w1")]
    assert lag < 0.1


async def test_non_text_result_is_a_protocol_error(make: BackendMaker) -> None:
    from tests.servers.raw import LAST_CHUNK, chunk, head, raw_server

    event = b'event: prediction\ndata: {"results": [{"data": 3, "type": "int"}], "error": null}\n\n'
    async with raw_server(head(), chunk(event), LAST_CHUNK) as raw:
        events, error = await drain(backend_for(make, raw.url).stream(ASK))
    assert events == []
    assert isinstance(error, ProtocolError)
    assert "not text" in str(error)
