"""``api = "triton-grpc"`` against the grpc.aio Triton test server (tests/servers)."""

from __future__ import annotations

import asyncio
import shutil
import socket
import struct
import subprocess
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from contextlib import aclosing
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest

from tests.servers.triton_grpc_server import TritonServer, serve
from tokentide.backends.base import GenerationRequest
from tokentide.backends.events import Event, Finish, TextDelta
from tokentide.backends.models import list_models
from tokentide.backends.registry import create_backend
from tokentide.backends.triton_grpc import (
    TritonGRPCBackend,
    decode_bytes_tensor,
    encode_bytes_tensor,
    from_profile,
)
from tokentide.backends.triton_status import CallSite, GrpcErrors
from tokentide.config.model import Deadlines, Limits, Profile
from tokentide.errors import (
    BackendError,
    BackendTimeout,
    CannotConnect,
    ConfigError,
    ConnectTimeout,
    FirstTokenTimeout,
    GrpcStatusError,
    HTTPStatusError,
    IncompleteStream,
    LimitExceeded,
    Overloaded,
    ProtocolError,
    ServerError,
)
from tokentide.generation import Generation, State

ASK = GenerationRequest.from_prompt("Hi")
STOP_WITHIN = 0.100
"""The issue's bound: stop -> the server sees the cancellation."""

Make = Callable[..., TritonGRPCBackend]


@pytest.fixture
async def server() -> AsyncIterator[TritonServer]:
    async with serve() as s:
        yield s


@pytest.fixture
async def make(server: TritonServer) -> AsyncIterator[Make]:
    """Build backends for the test server from profile keys; closes them afterwards."""
    made: list[TritonGRPCBackend] = []

    def build(
        model: str = "toy",
        *,
        env: dict[str, str] | None = None,
        url: str | None = None,
        **keys: Any,
    ) -> TritonGRPCBackend:
        common = {
            k: keys.pop(k)
            for k in ("params", "deadlines", "limits", "max_tokens", "temperature", "headers")
            if k in keys
        }
        profile = Profile(
            name="t",
            api="triton-grpc",
            url=url or server.target,
            model=model,
            options=keys,
            **common,
        )
        backend = create_backend(profile, env or {})
        assert isinstance(backend, TritonGRPCBackend)
        made.append(backend)
        return backend

    yield build
    for backend in made:
        await backend.aclose()


async def drain(events: AsyncGenerator[Event, None]) -> tuple[list[Event], BaseException | None]:
    got: list[Event] = []
    async with aclosing(events) as stream:
        try:
            async for event in stream:
                got.append(event)
        except BackendError as error:
            return got, error
    return got, None


def text_of(events: list[Event]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


# -- the wire --------------------------------------------------------------------------


def test_bytes_tensor_round_trip() -> None:
    assert encode_bytes_tensor(b"Hi") == b"\x02\x00\x00\x00Hi"
    assert decode_bytes_tensor(b"\x02\x00\x00\x00Hi") == [b"Hi"]
    raw = encode_bytes_tensor(b"a", b"", "日本".encode())
    assert decode_bytes_tensor(raw) == [b"a", b"", "日本".encode()]
    assert decode_bytes_tensor(b"") == []
    with pytest.raises(ValueError, match="passes the end"):
        decode_bytes_tensor(b"\x09\x00\x00\x00Hi")
    with pytest.raises(ValueError, match="truncated"):
        decode_bytes_tensor(b"\x01\x00\x00\x00a\x01\x00")


async def test_stream_sends_one_request_and_ends_on_final_flag(
    server: TritonServer, make: Make
) -> None:
    backend = make(params={"tokens": 3, "temperature": 0.5}, max_tokens=7)
    events, error = await drain(backend.stream(GenerationRequest.from_prompt("héllo")))
    assert error is None
    assert events == [TextDelta("w0"), TextDelta(" w1"), TextDelta(" w2"), Finish()]
    record = server.last()
    assert server.calls["ModelStreamInfer"] == 1
    assert record.status == "OK"
    assert record.prompt == "héllo"
    assert record.tensor("text_input") == ("BYTES", [1], b"\x06\x00\x00\x00" + "héllo".encode())
    assert record.tensor("stream") is None  # no stream_param: no stream tensor
    assert record.request is not None
    assert record.request.model_name == "toy"
    assert [o.name for o in record.request.outputs] == ["text_output"]
    assert record.params == {
        "tokens": 3,
        "temperature": 0.5,
        "max_tokens": 7,
        "triton_enable_empty_final_response": True,
    }
    assert len(record.sent) == 4  # three tokens and the flags-only final response


async def test_stream_param_and_max_tokens_tensor(server: TritonServer, make: Make) -> None:
    backend = make(
        params={"tokens": 9}, stream_param="stream", max_tokens_tensor="max_tokens", model_version=1
    )
    events, error = await drain(backend.stream(GenerationRequest.from_prompt("x", max_tokens=2)))
    assert error is None
    assert text_of(events) == "w0 w1"  # the server honoured the INT32 tensor
    record = server.last()
    assert record.tensor("stream") == ("BOOL", [1], b"\x01")
    assert record.tensor("max_tokens") == ("INT32", [1], struct.pack("<i", 2))
    assert record.request is not None and record.request.model_version == "1"


async def test_batch_dimension_from_metadata(server: TritonServer, make: Make) -> None:
    backend = make("batched", params={"tokens": 2}, stream_param="stream")
    events, error = await drain(backend.stream(ASK))
    assert error is None and text_of(events) == "w0 w1"
    record = server.last()
    assert record.tensor("text_input") == ("BYTES", [1, 1], b"\x02\x00\x00\x00Hi")
    assert record.tensor("stream") == ("BOOL", [1, 1], b"\x01")


async def test_metadata_read_once_per_backend(server: TritonServer, make: Make) -> None:
    backend = make(params={"tokens": 1})
    for _ in range(3):
        assert (await backend.create(ASK)).text == "w0"
    assert server.calls["ModelMetadata"] == 1
    assert server.calls["ModelStreamInfer"] == 3  # one call per generation


async def test_conversation_is_flattened(server: TritonServer, make: Make) -> None:
    backend = make(params={"echo": True})
    request = GenerationRequest.from_prompt("Hi", system="Be brief.")
    reply = await backend.create(request)
    assert reply.text == "Be brief.\n\nUser: Hi\n\nAssistant:"


async def test_text_in_bytes_contents(make: Make) -> None:
    events, error = await drain(make(params={"tokens": 3, "contents": True}).stream(ASK))
    assert error is None and text_of(events) == "w0 w1 w2"


async def test_utf8_split_across_responses(make: Make) -> None:
    text = "héllo 日本 ✓"
    events, error = await drain(make(params={"text": text, "bytes_at": 1}).stream(ASK))
    assert error is None
    assert text_of(events) == text
    assert "\ufffd" not in text_of(events)


async def test_cumulative_outputs(make: Make) -> None:
    backend = make(params={"tokens": 4, "cumulative": True}, yields="cumulative")
    events, error = await drain(backend.stream(ASK))
    assert error is None
    assert events == [
        TextDelta("w0"),
        TextDelta(" w1"),
        TextDelta(" w2"),
        TextDelta(" w3"),
        Finish(),
    ]


async def test_cumulative_that_does_not_extend_is_an_error(make: Make) -> None:
    events, error = await drain(make(params={"tokens": 3}, yields="cumulative").stream(ASK))
    assert events == [TextDelta("w0")]
    assert isinstance(error, ProtocolError)
    assert 'yields = "delta"' in str(error)


async def test_clean_end_of_call_without_final_flag(make: Make) -> None:
    events, error = await drain(make(params={"tokens": 2, "no_final": True}).stream(ASK))
    assert error is None
    assert events == [TextDelta("w0"), TextDelta(" w1"), Finish()]


async def test_final_flag_ends_the_answer_even_if_the_call_lingers(
    server: TritonServer, make: Make
) -> None:
    started = time.monotonic()
    events, error = await drain(make(params={"tokens": 2, "linger": True}).stream(ASK))
    assert error is None
    assert events == [TextDelta("w0"), TextDelta(" w1"), Finish()]
    assert time.monotonic() - started < 2.0  # a short grace for the call's end, then cancel
    await server.wait_cancelled(server.last())


# -- create ----------------------------------------------------------------------------


async def test_create_decoupled_consumes_the_stream(server: TritonServer, make: Make) -> None:
    reply = await make(params={"tokens": 3}).create(ASK)
    assert reply.text == "w0 w1 w2"
    assert server.calls["ModelStreamInfer"] == 1 and server.calls["ModelInfer"] == 0


async def test_create_unary_model_infer(server: TritonServer, make: Make) -> None:
    backend = make("unary", params={"tokens": 3}, decoupled=False, stream_param="stream")
    reply = await backend.create(ASK)
    assert reply.text == "w0 w1 w2"
    assert server.calls["ModelInfer"] == 1 and server.calls["ModelStreamInfer"] == 0
    record = server.last("ModelInfer")
    assert record.tensor("stream") == ("BOOL", [1], b"\x00")
    assert "triton_enable_empty_final_response" not in record.params


async def test_create_unary_on_a_decoupled_model_says_so(make: Make) -> None:
    with pytest.raises(HTTPStatusError) as caught:
        await make("toy", decoupled=False).create(ASK)
    assert caught.value.status == 501
    assert "decoupled = true" in str(caught.value)


async def test_create_unary_errors_are_mapped(make: Make) -> None:
    backend = make("unary", params={"status": "RESOURCE_EXHAUSTED"}, decoupled=False)
    with pytest.raises(Overloaded):
        await backend.create(ASK)


# -- errors ----------------------------------------------------------------------------


async def test_error_response_in_stream(server: TritonServer, make: Make) -> None:
    backend = make(params={"tokens": 5, "error_at": 2, "error_message": "CUDA out of memory"})
    events, error = await drain(backend.stream(ASK))
    assert events == [TextDelta("w0"), TextDelta(" w1")]  # the partial text came first
    assert isinstance(error, ServerError)
    assert "CUDA out of memory" in str(error)
    assert "'toy'" in str(error) and server.target in str(error)


async def test_unknown_model_names_model_server_and_known_models(
    server: TritonServer, make: Make
) -> None:
    events, error = await drain(make("nope").stream(ASK))
    assert events == []
    assert isinstance(error, HTTPStatusError) and error.status == 404
    message = str(error)
    assert "'nope'" in message and server.target in message
    assert "It serves: batched, numeric, renamed, toy, unary, vllm." in message
    assert "Check model" in message
    assert server.calls["ModelStreamInfer"] == 0  # caught by the metadata check


@pytest.mark.parametrize(
    ("status", "at", "kind", "http", "words"),
    [
        ("RESOURCE_EXHAUSTED", 0, Overloaded, 429, ["overloaded", "gRPC RESOURCE_EXHAUSTED"]),
        ("UNAVAILABLE", 0, CannotConnect, None, ["Cannot connect", "gRPC UNAVAILABLE"]),
        ("UNAVAILABLE", 2, IncompleteStream, None, ["broke in the middle"]),
        ("DEADLINE_EXCEEDED", 1, BackendTimeout, None, ["deadline"]),
        ("INVALID_ARGUMENT", 0, GrpcStatusError, 400, ["rejected", "bad temperature"]),
        ("UNAUTHENTICATED", 0, GrpcStatusError, 401, ["API key", "metadata"]),
        ("PERMISSION_DENIED", 0, GrpcStatusError, 403, ["API key", "metadata"]),
        ("NOT_FOUND", 0, GrpcStatusError, 404, ["has no model"]),
        ("INTERNAL", 1, GrpcStatusError, 500, ["gRPC INTERNAL"]),
    ],
)
async def test_status_mapping(
    server: TritonServer,
    make: Make,
    status: str,
    at: int,
    kind: type[BackendError],
    http: int | None,
    words: list[str],
) -> None:
    params = {"tokens": 5, "status": status, "status_at": at, "status_message": "bad temperature"}
    events, error = await drain(make(params=params).stream(ASK))
    assert len([e for e in events if isinstance(e, TextDelta)]) == at
    assert type(error) is kind
    assert getattr(error, "status", None) == http
    if isinstance(error, GrpcStatusError):  # the gRPC code stays the gRPC code
        assert error.code == status and error.details == "bad temperature"
    for word in words:
        assert word in str(error)
    assert server.target in str(error) and (status == "UNAVAILABLE" or "'toy'" in str(error))


async def test_restricted_protocol_is_an_auth_problem(make: Make) -> None:
    # Triton (and PyTriton, for its repository API) answers UNAVAILABLE "This protocol is
    # restricted, expecting header ..." when an endpoint needs an access header: that is
    # not a server that is down.
    message = "This protocol is restricted, expecting header 'triton-grpc-protocol-x'"
    params = {"status": "UNAVAILABLE", "status_message": message}
    _, error = await drain(make(params=params).stream(ASK))
    assert isinstance(error, HTTPStatusError) and error.status == 401
    assert not isinstance(error, CannotConnect)
    assert "metadata" in str(error) and "expecting header" in str(error)


async def test_api_key_metadata_from_environment() -> None:
    async with serve(api_key="s3cret") as server:
        profile = Profile(
            name="k",
            api="triton-grpc",
            url=server.target,
            model="toy",
            params={"tokens": 2},
            options={"metadata": {"X-Api-Key": "${TRITON_KEY}", "x-team": "a ${TEAM} b"}},
        )
        good = from_profile(profile, {"TRITON_KEY": "s3cret", "TEAM": "ml"})
        bad = from_profile(profile, {"TRITON_KEY": "wrong", "TEAM": "ml"})
        try:
            assert (await good.create(ASK)).text == "w0 w1"
            assert server.last().metadata["x-team"] == "a ml b"
            with pytest.raises(HTTPStatusError) as caught:
                await bad.create(ASK)
            assert caught.value.status == 401
            assert "metadata" in str(caught.value) and "'k'" in str(caught.value)
        finally:
            await good.aclose()
            await bad.aclose()
        with pytest.raises(ConfigError, match="TRITON_KEY, which is not set"):
            from_profile(profile, {"TEAM": "ml"})


async def test_api_key_env_becomes_bearer_authorization(server: TritonServer) -> None:
    profile = Profile(
        name="k", api="triton-grpc", url=server.target, model="toy", api_key_env="MY_KEY"
    )
    backend = from_profile(profile, {"MY_KEY": "abc"})
    try:
        await backend.create(ASK)
    finally:
        await backend.aclose()
    assert server.last().metadata["authorization"] == "Bearer abc"


# -- tensor names ----------------------------------------------------------------------


async def test_unknown_input_tensor_lists_the_real_ones(server: TritonServer, make: Make) -> None:
    with pytest.raises(ConfigError) as caught:
        await make("renamed").create(ASK)
    message = str(caught.value)
    assert "input_tensor = 'text_input'" in message
    assert "Its inputs: prompt (BYTES [1])" in message
    assert server.calls["ModelStreamInfer"] == 0


async def test_unknown_output_tensor_lists_the_real_ones(make: Make) -> None:
    with pytest.raises(ConfigError, match=r"Its outputs: answer \(BYTES \[1\]\)"):
        await make("renamed", input_tensor="prompt").create(ASK)


async def test_renamed_tensors_work(make: Make) -> None:
    backend = make("renamed", input_tensor="prompt", output_tensor="answer", params={"tokens": 2})
    assert (await backend.create(ASK)).text == "w0 w1"


@pytest.mark.parametrize(
    ("keys", "match"),
    [
        ({"stream_param": "streaming"}, "stream_param = 'streaming'"),
        ({"max_tokens_tensor": "max_new_tokens"}, "max_tokens_tensor = 'max_new_tokens'"),
        ({"stream_param": "max_tokens"}, "is a INT32 tensor"),
    ],
)
async def test_optional_tensors_are_checked(make: Make, keys: dict[str, str], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        await make(**keys).create(ASK)


async def test_non_text_output_is_rejected(make: Make) -> None:
    with pytest.raises(ConfigError, match=r"FP32 tensor .* not text"):
        await make("numeric").create(ASK)


async def test_probe_for_doctor(server: TritonServer, make: Make) -> None:
    result = await make().probe()
    assert result["live"] is True and result["ready"] is True and result["model_ready"] is True
    assert result["problems"] == []
    assert [t["name"] for t in result["metadata"]["inputs"]] == [
        "text_input",
        "stream",
        "max_tokens",
    ]
    wrong = await make("renamed").probe()
    assert wrong["model_ready"] is True
    assert "Its inputs: prompt" in wrong["problems"][0]
    missing = await make("nope").probe()
    assert missing["model_ready"] is False and "has no model 'nope'" in missing["problems"][0]


async def test_probe_of_a_dead_server(make: Make) -> None:
    result = await make(url=f"127.0.0.1:{closed_port()}").probe()
    assert result["live"] is None
    assert "Cannot connect" in result["problems"][0]


# -- deadlines and connecting ----------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_nothing_listening_is_cannot_connect_at_once(make: Make) -> None:
    backend = make(url=f"grpc://127.0.0.1:{closed_port()}", deadlines=Deadlines(connect=5.0))
    started = time.monotonic()
    _, error = await drain(backend.stream(ASK))
    assert isinstance(error, CannotConnect) and not error.retryable  # said once, at once
    assert time.monotonic() - started < 2.0  # not the 5 s connect deadline
    assert "Is the server running" in str(error) and "gRPC port is 8001" in str(error)


async def test_silent_listener_is_a_connect_timeout(make: Make) -> None:
    """A socket that accepts but never speaks HTTP/2 keeps the channel CONNECTING."""
    accepted: list[asyncio.StreamWriter] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    listener = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        backend = make(url=f"127.0.0.1:{port}", deadlines=Deadlines(connect=0.3))
        started = time.monotonic()
        with pytest.raises(ConnectTimeout, match=r"connect deadline of 0.3 s"):
            await backend.create(ASK)
        assert 0.25 < time.monotonic() - started < 2.0
        assert accepted  # it did reach our listener
    finally:
        for writer in accepted:
            writer.close()
        listener.close()
        await listener.wait_closed()


# The first-token deadline is the generation's, as for every backend: its watchdog
# cancels the backend's stream (or its unary call), and so the gRPC call.


def watched(backend: TritonGRPCBackend, first_token: float, **keys: Any) -> Generation:
    deadlines = Deadlines(first_token=first_token, idle=None)
    return Generation(backend, ASK, deadlines=deadlines, **keys).start()


async def test_first_token_deadline_cancels_the_call(server: TritonServer, make: Make) -> None:
    backend = make(params={"hang": True})
    started = time.monotonic()
    generation = watched(backend, 0.3)
    assert await generation.wait() is State.ERROR
    error = generation.error
    assert isinstance(error, FirstTokenTimeout) and "first-token deadline of 0.3 s" in str(error)
    assert generation.text == ""
    assert 0.25 < time.monotonic() - started < 2.0
    record = server.last()
    seen = await server.wait_cancelled(record)
    assert seen - record.started < 0.3 + STOP_WITHIN  # from the call's arrival
    assert record.status == "CANCELLED"


async def test_first_token_deadline_counts_only_until_the_first_text(make: Make) -> None:
    backend = make(params={"tokens": 6, "delay": 0.1})
    started = time.monotonic()
    generation = watched(backend, 0.4)
    assert await generation.wait() is State.DONE, generation.error
    assert generation.text == "w0 w1 w2 w3 w4 w5"
    assert time.monotonic() - started > 0.4  # the whole answer took longer than the deadline


async def test_the_backend_keeps_no_deadline_of_its_own(make: Make) -> None:
    # The profile's first_token deadline is passed long before the first text: read
    # without a generation, the stream just waits (the deadline is the generation's).
    backend = make(params={"tokens": 2, "first_delay": 0.3}, deadlines=Deadlines(first_token=0.05))
    events, error = await drain(backend.stream(ASK))
    assert error is None and text_of(events) == "w0 w1"


async def test_unary_first_token_deadline(server: TritonServer, make: Make) -> None:
    backend = make("unary", params={"hang": True}, decoupled=False)
    generation = watched(backend, 0.2, mode="create")
    assert await generation.wait() is State.ERROR
    error = generation.error
    assert isinstance(error, FirstTokenTimeout) and "first-token deadline of 0.2 s" in str(error)
    await server.wait_cancelled(server.last("ModelInfer"))


async def test_limits(make: Make) -> None:
    events, error = await drain(
        make(
            params={"text": "ab " * 20}, limits=Limits(max_event_bytes=8, max_answer_bytes=20)
        ).stream(ASK)
    )
    assert isinstance(error, LimitExceeded) and "20 bytes" in str(error)
    assert text_of(events) == "ab" + " ab" * 6  # 20 bytes; the 8th token passes the limit


async def test_a_response_over_the_event_limit_is_refused(make: Make) -> None:
    backend = make(params={"text": "ok abcdefghijkl"}, limits=Limits(max_event_bytes=8))
    events, error = await drain(backend.stream(ASK))
    assert isinstance(error, LimitExceeded)
    assert str(error).startswith("Model 'toy' at ") and "of more than 8 bytes" in str(error)
    assert "max_event_bytes" in (error.hint or "")
    assert text_of(events) == "ok"


async def test_a_cumulative_answer_may_outgrow_the_event_limit(make: Make) -> None:
    # What a response adds is what max_event_bytes bounds, not the whole text it repeats.
    params = {"tokens": 6, "cumulative": True}
    backend = make(params=params, yields="cumulative", limits=Limits(max_event_bytes=8))
    events, error = await drain(backend.stream(ASK))
    assert error is None and text_of(events) == "w0 w1 w2 w3 w4 w5"


# -- stopping --------------------------------------------------------------------------


async def test_closing_the_stream_cancels_the_call_within_100_ms(
    server: TritonServer, make: Make
) -> None:
    backend = make(params={"tokens": 1000, "delay": 0.01})
    got: list[Event] = []
    async with aclosing(backend.stream(ASK)) as stream:
        async for event in stream:
            got.append(event)
            if len(got) == 3:
                break
        closed = time.monotonic()
    # aclose() has run: nothing more can be read from the stream.
    with pytest.raises(StopAsyncIteration):
        await anext(stream)
    record = server.last()
    seen = await server.wait_cancelled(record)
    assert 0 <= seen - closed < STOP_WITHIN
    assert record.status == "CANCELLED"
    assert got == [TextDelta("w0"), TextDelta(" w1"), TextDelta(" w2")]
    assert all(when <= seen for when in record.sent)  # the server sent nothing after
    assert len(record.sent) < 10  # and stopped generating: not 1000 tokens


async def test_cancelling_the_consumer_task_cancels_the_call(
    server: TritonServer, make: Make
) -> None:
    backend = make(params={"tokens": 10, "stall_at": 2})
    got: list[Event] = []
    two = asyncio.Event()

    async def consume() -> None:
        async with aclosing(backend.stream(ASK)) as stream:
            async for event in stream:
                got.append(event)
                if len(got) == 2:
                    two.set()

    task = asyncio.create_task(consume())
    await two.wait()
    await asyncio.sleep(0)  # let the consumer go back to waiting on the server
    cancelled = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    seen = await server.wait_cancelled(server.last())
    assert 0 <= seen - cancelled < STOP_WITHIN
    assert got == [TextDelta("w0"), TextDelta(" w1")]


async def test_generation_cancel_reaches_the_server(server: TritonServer, make: Make) -> None:
    backend = make(params={"tokens": 1000, "delay": 0.01})
    generation = Generation(backend, ASK).start()
    batches = generation.batches()
    first = await anext(batches)
    assert first and isinstance(first[0], TextDelta)
    stopped = time.monotonic()
    generation.cancel()
    assert await generation.wait() is State.STOPPED
    async for _ in batches:  # a stop ends the batches quietly
        pass
    seen = await server.wait_cancelled(server.last())
    assert 0 <= seen - stopped < STOP_WITHIN
    assert generation.text.startswith("w0")


# -- TLS -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, bytes, bytes]]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    folder = tmp_path_factory.mktemp("tls")
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    yield cert, key.read_bytes(), cert.read_bytes()


async def test_tls_with_ca_file(certificate: tuple[Path, bytes, bytes]) -> None:
    cert_path, key, cert = certificate
    async with serve(tls=(key, cert)) as server:
        profile = Profile(
            name="tls",
            api="triton-grpc",
            url=f"grpcs://{server.target}",
            model="toy",
            params={"tokens": 2},
            options={"ca_file": str(cert_path)},
            deadlines=Deadlines(connect=3.0),
        )
        backend = from_profile(profile, {})
        untrusted = from_profile(
            Profile(name="tls", api="triton-grpc", url=server.target, model="toy",
                    options={"tls": True}, deadlines=Deadlines(connect=3.0)),
            {},
        )  # fmt: skip
        plain = from_profile(
            Profile(name="tls", api="triton-grpc", url=server.target, model="toy",
                    deadlines=Deadlines(connect=1.0)),
            {},
        )  # fmt: skip
        try:
            assert backend.name.startswith("triton-grpc grpcs://")
            assert (await backend.create(ASK)).text == "w0 w1"
            with pytest.raises(CannotConnect, match="TLS"):
                await untrusted.create(ASK)  # the system CAs do not know our certificate
            with pytest.raises((CannotConnect, ConnectTimeout)):
                await plain.create(ASK)  # plaintext HTTP/2 to a TLS port
        finally:
            for b in (backend, untrusted, plain):
                await b.aclose()


# -- the profile -----------------------------------------------------------------------


def profile(**keys: Any) -> Profile:
    common = {k: keys.pop(k) for k in ("url", "model", "params") if k in keys}
    common.setdefault("url", "127.0.0.1:8001")
    common.setdefault("model", "m")
    return Profile(name="p", api="triton-grpc", options=keys, **common)


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("localhost", "localhost:8001"),
        ("127.0.0.1:9001", "127.0.0.1:9001"),
        ("grpc://triton.lan:8001/", "triton.lan:8001"),
        ("[::1]:8001", "[::1]:8001"),
        ("[::1]", "[::1]:8001"),
        ("unix:///tmp/triton.sock", "unix:///tmp/triton.sock"),
    ],
)
def test_urls(url: str, target: str) -> None:
    backend = from_profile(profile(url=url), {})
    assert backend.target == target
    assert backend.name == f"triton-grpc grpc://{target} (m)"


@pytest.mark.parametrize(
    ("keys", "match"),
    [
        ({"url": "http://127.0.0.1:8000"}, "triton-http"),
        ({"url": "127.0.0.1:8001/v2"}, "takes no path"),
        ({"url": "ftp://x:1"}, "scheme 'ftp'"),
        ({"model": None}, "has no model"),
        ({"params": {"triton_enable_empty_final_response": False}}, "reserved by Triton"),
        ({"params": {"priority": 1}}, "reserved by Triton"),
        ({"yields": "sometimes"}, "is not one of 'delta', 'cumulative'"),
        ({"decoupled": "yes"}, "true or false"),
        ({"url": "grpcs://h:1", "tls": False}, "asks for TLS"),
        ({"ca_file": "/nonexistent/ca.pem"}, "cannot read ca_file"),
        ({"metadata": {"Bad Key": "x"}}, "cannot be a gRPC metadata key"),
        ({"metadata": ["x"]}, "must be a table"),
        ({"input_tensor": ""}, "non-empty string"),
    ],
)
def test_profile_errors(keys: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        from_profile(profile(**keys), {})


def test_registry_builds_it_and_rejects_unknown_keys() -> None:
    assert isinstance(create_backend(profile(), {}), TritonGRPCBackend)
    with pytest.raises(ConfigError, match="does not take 'prompt_tensor'"):
        create_backend(profile(prompt_tensor="x"), {})


# -- the one gRPC translator (triton_status) ---------------------------------------------

SITE = CallSite(server="h:1", model="m", profile="p")


def rpc(code: str, details: str = "said so") -> grpc.aio.AioRpcError:
    """A real AioRpcError, as grpc.aio raises it."""
    status = getattr(grpc.StatusCode, code)
    return grpc.aio.AioRpcError(status, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


async def translated(
    error: BaseException, site: CallSite = SITE, *, started: bool = False, **keys: Any
) -> BaseException:
    with pytest.raises(BaseException) as caught:
        async with GrpcErrors(site, **keys) as guard:
            guard.started = started
            raise error
    return caught.value


@pytest.mark.parametrize(
    ("code", "kind", "http", "retryable"),
    [
        ("INVALID_ARGUMENT", GrpcStatusError, 400, False),
        ("NOT_FOUND", GrpcStatusError, 404, False),
        ("UNIMPLEMENTED", GrpcStatusError, 501, False),
        ("UNAUTHENTICATED", GrpcStatusError, 401, False),
        ("FAILED_PRECONDITION", GrpcStatusError, 400, False),
        ("INTERNAL", GrpcStatusError, 500, True),
        ("ABORTED", GrpcStatusError, 409, True),
        ("DATA_LOSS", GrpcStatusError, 500, True),
        ("RESOURCE_EXHAUSTED", Overloaded, 429, True),
        ("UNAVAILABLE", CannotConnect, None, True),
        ("DEADLINE_EXCEEDED", BackendTimeout, None, False),
        ("CANCELLED", BackendError, None, False),
    ],
)
async def test_translator_keeps_grpc_codes(
    code: str, kind: type[BackendError], http: int | None, retryable: bool
) -> None:
    error = await translated(rpc(code))
    assert type(error) is kind and isinstance(error, BackendError)
    assert getattr(error, "status", None) == http
    assert error.retryable is retryable  # as when the status was dressed as HTTP
    assert "h:1" in str(error) and "said so" in str(error)
    if isinstance(error, GrpcStatusError):
        assert (error.code, error.details) == (code, "said so")
    assert isinstance(error.__cause__, grpc.aio.AioRpcError)


async def test_translator_passes_everything_else_unchanged() -> None:
    own = ServerError("in-band")
    assert await translated(own) is own
    bug = ValueError("a bug")
    assert await translated(bug) is bug
    async with GrpcErrors(SITE):
        pass  # no error: nothing raised


async def test_translator_unavailable_after_text_is_an_incomplete_answer() -> None:
    assert type(await translated(rpc("UNAVAILABLE"), started=True)) is IncompleteStream
    restricted = await translated(rpc("UNAVAILABLE", "protocol is restricted, expecting header"))
    assert isinstance(restricted, GrpcStatusError) and restricted.code == "UNAVAILABLE"
    assert restricted.status == 401 and not restricted.retryable  # a key, not a server down


async def test_translator_asks_for_the_ready_models_only_on_not_found() -> None:
    asked: list[str] = []

    async def ready() -> list[str]:
        asked.append("asked")
        return ["a", "b"]

    error = await translated(rpc("NOT_FOUND"), ready_models=ready)
    assert asked == ["asked"] and "It serves: a, b." in str(error)
    await translated(rpc("INTERNAL"), ready_models=ready)
    assert asked == ["asked"]


async def test_translator_words_a_listing_as_a_listing() -> None:
    listing = CallSite(server="h:1", model="", profile="p", listing=True)
    none = await translated(rpc("UNIMPLEMENTED", "Method not found!"), listing)
    assert isinstance(none, GrpcStatusError) and none.code == "UNIMPLEMENTED"
    assert "The gRPC server at h:1 has no model list" in str(none)
    assert "RepositoryIndex" in str(none)
    refused = await translated(rpc("PERMISSION_DENIED"), listing)
    assert isinstance(refused, GrpcStatusError) and refused.status == 403
    assert "refused to list its models" in str(refused) and "'p'" in str(refused)


async def test_in_band_unknown_model_is_not_found(make: Make) -> None:
    # A per-request model skips the metadata check: the server says it in the stream.
    request = GenerationRequest.from_prompt("Hi", model="nope")
    events, error = await drain(make().stream(request))
    assert events == []
    assert isinstance(error, GrpcStatusError) and error.code == "NOT_FOUND"
    assert error.status == 404 and "has no model 'toy'" in str(error)
    assert "Request for unknown model: 'nope'" in str(error)


async def test_health_calls_go_through_the_translator(server: TritonServer, make: Make) -> None:
    with pytest.raises(GrpcStatusError) as caught:
        await make("nope").model_metadata()
    assert caught.value.code == "NOT_FOUND" and server.target in str(caught.value)
    assert "It serves: batched, numeric, renamed, toy, unary, vllm." in str(caught.value)


async def test_listing_a_grpc_server_without_the_repository_api() -> None:
    bare = grpc.aio.server()  # no services: every method is UNIMPLEMENTED
    port = bare.add_insecure_port("127.0.0.1:0")
    await bare.start()
    try:
        with pytest.raises(GrpcStatusError) as caught:
            await list_models(profile(url=f"127.0.0.1:{port}", model=None), env={})
    finally:
        await bare.stop(None)
    assert caught.value.code == "UNIMPLEMENTED" and caught.value.status == 501
    assert f"The gRPC server at 127.0.0.1:{port} has no model list" in str(caught.value)
