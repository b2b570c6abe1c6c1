"""A real Triton Inference Server (NVIDIA PyTriton, CPU) over gRPC and HTTP generate_stream.

The module-scoped fixture starts ``tests/real/pytriton_serve.py`` (about 7 s) with the
``LD_LIBRARY_PATH`` fix from ``real-servers.md`` §2, on free ports, and stops it with
SIGTERM.  Its PyTriton workspace lives in pytest's temporary directory; any new
``~/.cache/pytriton`` entry and the Python backend's ``/tmp/folder*`` copy of the model
are removed afterwards.

A PyTriton Python model cannot observe a cancellation (it keeps generating after the
client leaves), so these tests prove the *client* side of a stop (the stream ends within
100 ms and nothing is read after it); the server-side cancellation is proved against the
grpc.aio test server in ``tests/backends/test_triton_grpc.py``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing
from typing import Any

import pytest

pytest.importorskip("pytriton")

from tests.real.pytriton_serve import MODEL, LaunchError, PyTriton, expected, launch
from tokentide.backends.base import Backend, GenerationRequest
from tokentide.backends.events import Event, Finish, TextDelta
from tokentide.backends.registry import create_backend
from tokentide.config.model import Deadlines, Profile
from tokentide.errors import ConfigError, HTTPStatusError
from tokentide.generation import Generation, State

pytestmark = pytest.mark.real_server

STOP_WITHIN = 0.100


@pytest.fixture(scope="module")
def pytriton(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PyTriton]:
    try:
        with launch(tmp_path_factory.mktemp("pytriton")) as server:
            yield server
    except LaunchError as error:
        pytest.fail(str(error))


@pytest.fixture
async def backends(pytriton: PyTriton) -> AsyncIterator[dict[str, Any]]:
    made: list[Backend] = []

    def grpc_backend(**keys: Any) -> Backend:
        params = keys.pop("params", {})
        profile = Profile(
            name="real-grpc",
            api="triton-grpc",
            url=pytriton.grpc,
            model=keys.pop("model", MODEL),
            max_tokens=keys.pop("max_tokens", None),
            params=params,
            deadlines=Deadlines(connect=5.0, first_token=30.0),
            options={"max_tokens_tensor": "max_tokens", **keys},
        )
        made.append(create_backend(profile, {}))
        return made[-1]

    def http_backend(**params: Any) -> Backend:
        profile = Profile(
            name="real-http",
            api="triton-http",
            url=pytriton.http,
            model=MODEL,
            params=params,
            deadlines=Deadlines(connect=5.0, first_token=30.0),
        )
        made.append(create_backend(profile, {}))
        return made[-1]

    yield {"grpc": grpc_backend, "http": http_backend}
    for backend in made:
        await backend.aclose()


async def events_of(backend: Backend, request: GenerationRequest) -> list[Event]:
    async with aclosing(backend.stream(request)) as stream:
        return [event async for event in stream]


def text_of(events: list[Event]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


async def test_grpc_streams_tokens(backends: dict[str, Any]) -> None:
    backend = backends["grpc"](max_tokens=6)
    events = await events_of(backend, GenerationRequest.from_prompt("Hello"))
    assert events == [
        TextDelta(t) for t in ("The", " quick", " brown", " fox", " jumps", " over")
    ] + [Finish()]
    reply = await backend.create(GenerationRequest.from_prompt("Hello", max_tokens=3))
    assert reply.text == "The quick brown"


async def test_grpc_and_http_return_identical_text(backends: dict[str, Any]) -> None:
    request = GenerationRequest.from_prompt("Tell me something", max_tokens=40)
    over_grpc = text_of(await events_of(backends["grpc"](), request))
    over_http = text_of(
        await events_of(
            backends["http"](max_tokens=40), GenerationRequest.from_prompt("Tell me something")
        )
    )
    assert over_grpc == over_http == expected(40)
    assert "日本語 ✓" in over_grpc  # multibyte UTF-8 crossed both transports intact


@pytest.mark.parametrize("transport", ["grpc", "http"])
async def test_stop_ends_the_stream_within_100_ms(backends: dict[str, Any], transport: str) -> None:
    # 200 tokens, 20 ms apart: the model goes on for 4 s after we stop.
    if transport == "grpc":
        backend = backends["grpc"](max_tokens=200, params={"delay": 0.02})
    else:
        backend = backends["http"](max_tokens=200, delay=0.02)
    generation = Generation(backend, GenerationRequest.from_prompt("Go")).start()
    batches = generation.batches()
    seen: list[Event] = []
    while len(seen) < 3:
        seen.extend(await anext(batches))
    stopped = time.perf_counter()
    generation.cancel()
    assert await generation.wait() is State.STOPPED
    elapsed = time.perf_counter() - stopped
    assert elapsed < STOP_WITHIN, f"the stream took {elapsed * 1000:.1f} ms to end"
    text_at_stop = generation.text
    count_at_stop = generation.stats.tokens
    async for batch in batches:  # a stopped generation ends its batches quietly
        seen.extend(batch)
    # While the model keeps generating on its side, a whole second answer runs on the
    # same backend; the stopped one must not have read anything meanwhile.
    # (A fresh backend: Triton's HTTP generate rejects max_tokens as both a top-level key
    # and a parameter.)
    again = backends[transport](max_tokens=5)
    other = await again.create(GenerationRequest.from_prompt("Again"))
    assert other.text == expected(5)
    assert generation.text == text_at_stop and generation.stats.tokens == count_at_stop
    assert text_at_stop == expected(count_at_stop)


async def test_real_metadata_check_lists_the_model_tensors(backends: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as caught:
        await backends["grpc"](input_tensor="prompt").create(GenerationRequest.from_prompt("x"))
    message = str(caught.value)
    assert "text_input (BYTES [1])" in message and "max_tokens (INT32 [1])" in message


async def test_real_unknown_model(backends: dict[str, Any], pytriton: PyTriton) -> None:
    with pytest.raises(HTTPStatusError) as caught:
        await backends["grpc"](model="nope").create(GenerationRequest.from_prompt("x"))
    assert caught.value.status == 404
    assert "'nope'" in str(caught.value) and pytriton.grpc in str(caught.value)


async def test_real_probe(backends: dict[str, Any]) -> None:
    result = await backends["grpc"]().probe()
    assert result["live"] and result["ready"] and result["model_ready"]
    assert result["problems"] == []
    assert result["metadata"]["platform"] == "python"
