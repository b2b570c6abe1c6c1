"""The real llama.cpp server driven to its context limit (issue 11 item 1): the answer
ends cleanly with finish reason ``length``, the text so far kept, streaming and not.

A 256-token context and a prompt that fills most of it: llama-cpp-python caps
``max_tokens`` at what the context has left and ends there with ``length``.  The prompt
counts upwards, so the model keeps counting rather than stopping by itself.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.real.llamacpp_server import serve_llamacpp
from tokentide.backends.base import GenerationRequest
from tokentide.backends.openai import OpenAIChatBackend, OpenAICompletionsBackend
from tokentide.config.model import Profile
from tokentide.generation import Generation, Mode, State

pytestmark = pytest.mark.real_server

N_CTX = 256
PROMPT = ", ".join(str(n) for n in range(1, 61)) + ","
"""About 180 tokens: the context has about 70 left."""
CHAT_PROMPT = "Continue counting: " + ", ".join(str(n) for n in range(1, 41)) + ","
"""About 140 tokens with the chat template around it."""


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with serve_llamacpp(n_ctx=N_CTX) as url:
        yield url


@pytest.mark.parametrize("mode", ["stream", "create"])
@pytest.mark.parametrize("api", ["openai-completions", "openai"])
async def test_the_context_limit_is_a_clean_length_ending(
    base_url: str, api: str, mode: Mode
) -> None:
    profile = Profile(name="llamacpp", api=api, url=base_url)
    backend = (OpenAICompletionsBackend if api == "openai-completions" else OpenAIChatBackend)(
        profile, {}
    )
    # Completions: far more than the context holds, so the server stops at its end, not at
    # this number.  Chat refuses such a request (HTTP 400, messages + max_tokens > n_ctx):
    # no max_tokens there, which llama-cpp-python takes as "the rest of the context".
    chat = api == "openai"
    request = GenerationRequest.from_prompt(
        CHAT_PROMPT if chat else PROMPT,
        max_tokens=None if chat else 4 * N_CTX,
        temperature=0.0,
    )
    try:
        gen = Generation(backend, request, mode=mode)
        async with gen:
            await gen.wait()
    finally:
        await backend.aclose()
    assert gen.error is None, gen.error
    assert gen.state is State.DONE
    assert gen.finish is not None and gen.finish.reason == "length", gen.text
    assert gen.text.strip()  # the answer up to the limit is kept
    assert gen.stats.count is not None and gen.stats.count < N_CTX
