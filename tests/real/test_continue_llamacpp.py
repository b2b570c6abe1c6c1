"""Continuing an answer against the real llama.cpp server (llama-cpp-python's ``[server]``
with SmolLM2-135M-Instruct; issue 12 item 3): a request ending with the partial answer
"1, 2, 3," gets text that goes on from it (" 4, 5, ..."), not a new answer.

The completions route continues the transcript (``base.prompt_text``).  The chat route is
checked for what this server does with a final assistant message and vLLM's flags: it
accepts the flags (no 400) but renders the message as a finished turn, so its answer
starts anew; that is why docs/backends-http.md says to give such a profile
``continue_answers = "off"`` (llama.cpp's own ``llama-server`` does continue it).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.real.llamacpp_server import serve_llamacpp
from tokentide.backends.base import GenerationRequest, Message, collect
from tokentide.backends.openai import OpenAIChatBackend, OpenAICompletionsBackend
from tokentide.config.model import Profile

pytestmark = pytest.mark.real_server

PARTIAL = "1, 2, 3,"
COUNT = GenerationRequest(
    messages=(
        Message("system", "You are a helpful assistant."),
        Message("user", "Count from 1 to 10, separated by commas."),
        Message("assistant", PARTIAL),
    ),
    temperature=0.0,
    seed=7,
    max_tokens=8,
)


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with serve_llamacpp(n_ctx=512) as url:
        yield url


@pytest.mark.parametrize("stream", [True, False])
async def test_completions_go_on_from_the_partial_answer(base_url: str, stream: bool) -> None:
    backend = OpenAICompletionsBackend(
        Profile(name="llamacpp", api="openai-completions", url=base_url), {}
    )
    try:
        reply = await (collect(backend.stream(COUNT)) if stream else backend.create(COUNT))
    finally:
        await backend.aclose()
    assert reply.text.startswith(" 4,"), reply.text


async def test_this_server_takes_the_chat_flags_but_starts_anew(base_url: str) -> None:
    backend = OpenAIChatBackend(Profile(name="llamacpp", api="openai", url=base_url), {})
    try:
        reply = await backend.create(COUNT)
    finally:
        await backend.aclose()
    assert backend.continue_mode == "flag"  # sent with continue_final_message: no 400
    assert not reply.text.startswith(" 4"), reply.text
