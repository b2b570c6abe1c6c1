"""The OpenAI dialect against the real llama.cpp server with SmolLM2-135M-Instruct."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from tests.real.llamacpp_server import serve_llamacpp
from tokentide.backends.base import GenerationRequest
from tokentide.backends.openai import OpenAIChatBackend, OpenAICompletionsBackend
from tokentide.config.model import Profile
from tokentide.errors import BackendError
from tokentide.generation import Generation, State

pytestmark = pytest.mark.real_server


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with serve_llamacpp() as url:
        yield url


def chat(base_url: str) -> OpenAIChatBackend:
    return OpenAIChatBackend(Profile(name="llamacpp", api="openai", url=base_url), {})


REQUEST = GenerationRequest.from_prompt(
    "Name three colours.", max_tokens=24, temperature=0.0, seed=7
)


async def test_streamed_and_non_streamed_answers_are_identical(base_url: str) -> None:
    backend = chat(base_url)
    try:
        # The server reuses its cached prompt prefix, and with llama-cpp-python 0.3.36 a
        # prompt read fresh and one read from the cache give different greedy answers.
        # One request first, so that both measured ones start from the same cache.
        await backend.create(REQUEST)
        streamed = Generation(backend, REQUEST)
        async with streamed:
            await streamed.wait()
        assert streamed.state is State.DONE, streamed.error
        reply = await backend.create(REQUEST)
    finally:
        await backend.aclose()
    assert streamed.text.strip()
    assert streamed.stats.tokens > 3  # it really streamed, token by token
    assert streamed.text == reply.text
    assert streamed.finish is not None and streamed.finish.reason == reply.finish_reason


async def test_completions_route(base_url: str) -> None:
    backend = OpenAICompletionsBackend(
        Profile(name="l", api="openai-completions", url=base_url), {}
    )
    request = GenerationRequest.from_prompt(
        "The capital of France is", max_tokens=6, temperature=0.0
    )
    try:
        gen = Generation(backend, request)
        async with gen:
            await gen.wait()
        reply = await backend.create(request)
    finally:
        await backend.aclose()
    assert gen.state is State.DONE and gen.text == reply.text and gen.text


async def test_cancelling_mid_stream_makes_the_server_stop(base_url: str) -> None:
    """llama-cpp-python's server generates one answer at a time: if it went on with a
    cancelled 1,500-token answer (about 15 s here), the next request would wait for it."""
    backend = chat(base_url)
    long = GenerationRequest.from_prompt("Write a very long story about a lighthouse.",
                                         max_tokens=1500, temperature=0.7, seed=1)  # fmt: skip
    try:
        gen = Generation(backend, long).start()
        async for _batch in gen.batches():
            if gen.stats.tokens >= 5:
                break
        gen.cancel()
        assert await gen.wait() is State.STOPPED
        started = time.perf_counter()
        quick = Generation(
            backend, GenerationRequest.from_prompt("Hi", max_tokens=2, temperature=0.0)
        )
        async with quick:
            await asyncio.wait_for(quick.wait(), 30)
        assert quick.state is State.DONE
        assert time.perf_counter() - started < 5.0
    finally:
        await backend.aclose()


async def test_prompt_longer_than_the_context_is_a_clear_error(base_url: str) -> None:
    backend = chat(base_url)
    request = GenerationRequest.from_prompt("lighthouse " * 3000, max_tokens=4)
    try:
        gen = Generation(backend, request)
        with pytest.raises(BackendError) as caught:
            async for _ in gen:
                pass
    finally:
        await backend.aclose()
    # llama-cpp-python sends HTTP 200 and then no event at all: that must not pass as an
    # empty answer.
    assert "ended without [DONE]" in str(caught.value) or "context" in str(caught.value)
