"""The model that answered, as the server named it (issue 11: exports said
``"model": null`` when the profile named none and the server chose its default), from
the loopback server's OpenAI, Anthropic and Ollama dialects, streaming and not."""

from __future__ import annotations

from typing import Any

import pytest

from tests.servers.llm_server import LLMServer
from tokentide.backends.base import GenerationRequest, model_name
from tokentide.backends.registry import create_backend
from tokentide.config.model import Profile
from tokentide.generation import Generation, Mode, State

ASK = GenerationRequest.from_prompt("hi")

# api, url suffix, profile keys, the server's default model name
DIALECTS: list[tuple[str, str, dict[str, Any], str]] = [
    ("openai", "/v1", {}, "test-model"),
    ("openai-completions", "/v1", {}, "test-model"),
    ("anthropic", "", {"model": "claude-x"}, "claude-x"),
    ("ollama", "", {"model": "llama3.2"}, "llama3.2"),
]


@pytest.mark.parametrize("mode", ["stream", "create"])
@pytest.mark.parametrize(("api", "suffix", "keys", "served"), DIALECTS)
async def test_the_finish_names_the_model_the_server_says_answered(
    server: LLMServer, api: str, suffix: str, keys: dict[str, Any], served: str, mode: Mode
) -> None:
    profile = Profile(name="p", api=api, url=server.url(text="ok") + suffix, **keys)
    backend = create_backend(profile)
    try:
        async with Generation(backend, ASK, mode=mode) as gen:
            async for _ in gen.batches():
                pass
        assert gen.state is State.DONE
        assert gen.finish is not None and gen.finish.model == served
    finally:
        await backend.aclose()


def test_a_model_name_is_a_non_empty_string_of_bounded_length() -> None:
    assert model_name("gpt-4o-mini-2024-07-18") == "gpt-4o-mini-2024-07-18"
    assert model_name("") is None and model_name("  ") is None
    assert model_name(42) is None and model_name(None) is None
    assert model_name("m" * 1000) == "m" * 200
