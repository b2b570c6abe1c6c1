"""The ``tgi`` dialect against the test server's TGI routes over real HTTP."""

from __future__ import annotations

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
from tokentide.backends.base import GenerationRequest, Message, collect
from tokentide.backends.events import Finish, TextDelta, Usage
from tokentide.errors import (
    HTTPStatusError,
    IncompleteStream,
    Overloaded,
    ProtocolError,
    ServerError,
)

ASK = GenerationRequest.from_prompt("What is deep learning?")


@pytest.fixture
async def make() -> AsyncIterator[BackendMaker]:
    maker = BackendMaker("tgi")
    yield maker
    await maker.aclose()


async def test_stream_tokens_details_and_final_event(server: LLMServer, make: BackendMaker) -> None:
    backend = make(server.url(tokens=3, tag="basic"))
    events, error = await drain(backend.stream(ASK))
    assert error is None
    *deltas, finish = events
    assert deltas == [
        TextDelta("w0", token_id=100, logprob=-0.125),
        TextDelta(" w1", token_id=101, logprob=-0.25),
        TextDelta(" w2", token_id=102, logprob=-0.375),
        TextDelta("</s>", token_id=2, logprob=-0.5, special=True),
    ]
    assert finish == Finish("stop", Usage(4, 4), seed=None, text="w0 w1 w2")
    sent = server.record("basic")
    assert sent.path == "/generate_stream"
    assert sent.body["inputs"] == "What is deep learning?"
    assert sent.body["parameters"]["details"] is True


async def test_collect_hides_the_special_token(server: LLMServer, make: BackendMaker) -> None:
    reply = await collect(make(server.url()).stream(ASK))
    assert reply.text == DEFAULT_TEXT
    assert reply.finish_reason == "stop"
    assert reply.tokens[-1].special


async def test_parameters_sent(server: LLMServer, make: BackendMaker) -> None:
    backend = make(server.url(tag="params"), params={"repetition_penalty": 1.1})
    request = GenerationRequest.from_prompt(
        "hi", max_tokens=2, temperature=0.0, seed=42, top_p=1.0, stop=["\n\n"]
    )
    events, error = await drain(backend.stream(request))
    assert error is None
    params = server.record("params").body["parameters"]
    # temperature 0 is rejected by TGI: greedy decoding instead; top_p 1.0 likewise
    assert params == {
        "details": True,
        "max_new_tokens": 2,
        "do_sample": False,
        "seed": 42,
        "stop": ["\n\n"],
        "repetition_penalty": 1.1,
    }
    finish = events[-1]
    assert finish == Finish("length", Usage(1, 2), seed=42, text="The quick")


async def test_conversation_is_flattened_without_a_chat_template(
    server: LLMServer, make: BackendMaker
) -> None:
    request = GenerationRequest(
        messages=(
            Message("system", "Be brief."),
            Message("user", "Hi"),
            Message("assistant", "Hello"),
            Message("user", "Bye"),
        )
    )
    reply = await make(server.url(echo=1)).create(request)
    assert reply.text == "Be brief.\n\nUser: Hi\n\nAssistant: Hello\n\nUser: Bye\n\nAssistant:"


async def test_null_logprob(server: LLMServer, make: BackendMaker) -> None:
    events, _ = await drain(make(server.url(tokens=1, null_logprob=1)).stream(ASK))
    assert events[0] == TextDelta("w0", token_id=100, logprob=None)


@pytest.mark.parametrize(
    "framing",
    [
        {"nospace": 1},
        {"crlf": 1},
        {"bom": 1},
        {"chunk": 1},
        {"chunk": 7, "keepalive": 2},
        {"ascii": 1},
    ],
)
async def test_framing_variants(server: LLMServer, make: BackendMaker, framing: Any) -> None:
    text = "héllo 日本語 a\u2028b c\u0085d 🎉"
    reply = await collect(make(server.url(text=text, **framing)).stream(ASK))
    assert reply.text == text
    assert reply.finish_reason == "stop"


async def test_create_uses_generate_with_details(server: LLMServer, make: BackendMaker) -> None:
    backend = make(server.url(tokens=2, tag="create"))
    reply = await backend.create(GenerationRequest.from_prompt("hi", seed=7, temperature=0.5))
    assert reply.text == "w0 w1"
    assert reply.finish_reason == "stop"
    assert reply.seed == 7
    assert reply.usage == Usage(1, 3)
    assert [t.text for t in reply.tokens] == ["w0", " w1", "</s>"]
    assert reply.tokens[-1].special
    record = server.record("create")
    assert record.path == "/generate"
    assert record.body["parameters"]["temperature"] == 0.5


async def test_error_event_mid_stream_keeps_partial_text(
    server: LLMServer, make: BackendMaker
) -> None:
    backend = make(server.url(tokens=5, error_at=2, error_message="CUDA out of memory"))
    events, error = await drain(backend.stream(ASK))
    assert [e.text for e in events] == ["w0", " w1"]
    assert isinstance(error, ServerError)
    assert error.kind == "generation"
    assert not error.retryable
    assert "CUDA out of memory" in str(error)


async def test_overloaded_is_the_only_event_of_a_200_stream(
    server: LLMServer, make: BackendMaker
) -> None:
    events, error = await drain(make(server.url(overloaded=1)).stream(ASK))
    assert events == []
    assert isinstance(error, ServerError)
    assert error.kind == "overloaded"
    assert error.retryable
    assert "overloaded" in str(error).lower()


async def test_validation_error_in_band(server: LLMServer, make: BackendMaker) -> None:
    backend = make(server.url(error_at=0, error_kind="validation", error_message="`best_of` != 1"))
    _, error = await drain(backend.stream(ASK))
    assert isinstance(error, ServerError)
    assert error.kind == "validation"
    assert "`best_of` != 1" in str(error)


async def test_generate_429_is_overloaded(server: LLMServer, make: BackendMaker) -> None:
    backend = make(server.url(overloaded=1, retry_after=3))
    with pytest.raises(Overloaded) as caught:
        await backend.create(ASK)
    assert caught.value.status == 429
    assert caught.value.retry_after == 3
    assert "Model is overloaded" in str(caught.value)


async def test_generate_error_status_shows_the_message(
    server: LLMServer, make: BackendMaker
) -> None:
    backend = make(server.url(error_at=0, error_message="Input validation error: too long"))
    with pytest.raises(HTTPStatusError) as caught:
        await backend.create(ASK)
    assert caught.value.status == 424
    assert "Input validation error: too long" in str(caught.value)


async def test_http_error_before_the_stream(server: LLMServer, make: BackendMaker) -> None:
    _, error = await drain(make(server.url(status=503, retry_after=1)).stream(ASK))
    assert isinstance(error, Overloaded)
    assert error.retry_after == 1


@pytest.mark.parametrize("knobs", [{"truncate": 1}, {"truncate_at": 2}, {"truncate_at": 0}])
async def test_eof_before_final_event_is_incomplete(
    server: LLMServer, make: BackendMaker, knobs: Any
) -> None:
    events, error = await drain(make(server.url(tokens=3, **knobs)).stream(ASK))
    assert isinstance(error, IncompleteStream)
    assert not any(isinstance(e, Finish) for e in events)


async def test_broken_connection_is_incomplete(server: LLMServer, make: BackendMaker) -> None:
    events, error = await drain(make(server.url(tokens=3, abort_at=1, partial=1)).stream(ASK))
    assert [e.text for e in events] == ["w0"]
    assert isinstance(error, IncompleteStream)


async def test_length_without_eos_token(server: LLMServer, make: BackendMaker) -> None:
    events, error = await drain(make(server.url(tokens=2, finish="length")).stream(ASK))
    assert error is None
    assert [type(e) for e in events] == [TextDelta, TextDelta, Finish]
    assert events[-1].reason == "length"
    assert events[-1].text == "w0 w1"


@pytest.mark.parametrize("knobs", [{"html": 1}, {"ctype": "text/plain"}])
async def test_not_an_event_stream(server: LLMServer, make: BackendMaker, knobs: Any) -> None:
    _, error = await drain(make(server.url(**knobs)).stream(ASK))
    assert isinstance(error, ProtocolError)


async def test_cancel_closes_the_connection(server: LLMServer, make: BackendMaker) -> None:
    backend = make(server.url(tokens=50, stall_at=2, tag="cancel"))
    events, lag = await read_then_close(server, backend.stream(ASK), "cancel")
    assert [e.text for e in events] == ["w0", " w1"]
    assert lag < 0.1
