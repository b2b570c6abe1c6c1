"""Every backend ends cleanly at the token limit with finish reason ``length`` (issue 11
item 1): no error, the partial text kept, streaming and not, each dialect against the
loopback server's own limit (the request's max_tokens / max_new_tokens / num_predict is
honoured and answered with that dialect's word for it).

Substrate and Muna have no word for it in their protocols, nor has Triton's, except
where the model offers vLLM's ``finish_reason`` output (then tide asks for it): they end
cleanly with no reason (None), never an error; that is asserted too, so a change is
noticed.  The
in-process llama.cpp model's real context limit is in ``test_llamacpp.py``.
"""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers.llm_server import BackendMaker, LLMServer, drain
from tests.servers.triton_grpc_server import serve as serve_grpc
from tokentide.backends.base import Backend, GenerationRequest
from tokentide.backends.events import Finish
from tokentide.backends.local import from_profile
from tokentide.backends.registry import create_backend
from tokentide.config.model import Profile
from tokentide.generation import Generation, Mode, State

ASK = GenerationRequest.from_prompt("Tell me everything.")
LIMIT = 3
CUT = "w0 w1 w2"  # what the server sends of ``tokens=10`` when cut at 3

# api, base-url suffix, profile keys, the dialect's own word (as the server sends it)
DIALECTS: list[tuple[str, str, dict[str, Any], str | None]] = [
    ("openai", "/v1", {"model": "m"}, "length"),
    ("openai-completions", "/v1", {"model": "m"}, "length"),
    ("tgi", "", {}, "length"),
    ("anthropic", "", {"model": "m"}, "length"),
    ("ollama", "", {"model": "m"}, "length"),
    # Triton's vLLM backend reports it as its finish_reason output when asked to.
    ("triton-http", "", {"model": "toy", "params": {"return_finish_reason": True}}, "length"),
]


@pytest.fixture
async def make() -> AsyncIterator[BackendMaker]:
    maker = BackendMaker("openai")
    yield maker
    await maker.aclose()


async def _run(backend: Backend, mode: Mode) -> Generation:
    gen = Generation(backend, ASK, mode=mode)
    async with gen:
        await gen.wait()
    return gen


@pytest.mark.parametrize("mode", ["stream", "create"])
@pytest.mark.parametrize(
    ("api", "suffix", "keys", "reason"), DIALECTS, ids=[d[0] for d in DIALECTS]
)
async def test_the_limit_is_a_clean_length_ending(
    server: LLMServer,
    make: BackendMaker,
    api: str,
    suffix: str,
    keys: dict[str, Any],
    reason: str | None,
    mode: Mode,
) -> None:
    url = server.url(tokens=10, tag=f"length-{api}-{mode}") + suffix
    backend = make(url, api=api, max_tokens=LIMIT, **keys)
    gen = await _run(backend, mode)
    assert gen.error is None, gen.error
    assert gen.state is State.DONE
    assert gen.text == CUT  # the partial answer is the answer
    assert gen.finish is not None and gen.finish.reason == reason


@pytest.mark.parametrize("mode", ["stream", "create"])
async def test_a_finish_reason_given_as_a_one_element_list_is_read(
    server: LLMServer, make: BackendMaker, mode: Mode
) -> None:
    # Triton's generate extension may send a one-element BYTES output as a list.
    url = server.url(tokens=10, finish_reason_list=1)
    params = {"return_finish_reason": True}
    backend = make(url, api="triton-http", model="toy", max_tokens=LIMIT, params=params)
    gen = await _run(backend, mode)
    assert (gen.error, gen.text) == (None, CUT)
    assert gen.finish is not None and gen.finish.reason == "length"


async def test_without_the_limit_triton_says_stop_or_nothing(
    server: LLMServer, make: BackendMaker
) -> None:
    asked = make(server.url(tokens=2), api="triton-http", model="toy",
                 params={"return_finish_reason": True})  # fmt: skip
    events, error = await drain(asked.stream(ASK))
    assert error is None and events[-1] == Finish("stop")
    plain = make(server.url(tokens=2), api="triton-http", model="toy", max_tokens=1)
    events, error = await drain(plain.stream(ASK))
    assert error is None and events[-1] == Finish(None)  # nobody asked: no word


@pytest.mark.parametrize("mode", ["stream", "create"])
@pytest.mark.parametrize("api", ["substrate", "muna"])
async def test_protocols_without_a_word_for_it_end_cleanly(
    server: LLMServer, make: BackendMaker, api: str, mode: Mode
) -> None:
    keys: dict[str, Any] = (
        {"api_key_env": "MUNA_ACCESS_KEY", "env": {"MUNA_ACCESS_KEY": "k"},
         "options": {"tag": "@acme/llm"}}
        if api == "muna"
        else {"api_key_env": "SUBSTRATE_API_KEY", "env": {"SUBSTRATE_API_KEY": "k"}}
    )  # fmt: skip
    backend = make(server.url(tokens=3), api=api, max_tokens=LIMIT, **keys)
    gen = await _run(backend, mode)
    assert gen.error is None and gen.state is State.DONE, gen.error
    assert gen.text.startswith("w0 w1 w2")
    assert gen.finish is not None and gen.finish.reason is None


@pytest.mark.parametrize("mode", ["stream", "create"])
async def test_a_local_generator_that_hits_its_limit(tmp_path: Path, mode: Mode) -> None:
    path = tmp_path / "limited.py"
    path.write_text(
        textwrap.dedent(
            """
            def generate(prompt, max_tokens=None, **_):
                for i in range(max_tokens):
                    yield {"choices": [{"delta": {"content": f" w{i}"}}]}
                yield {"choices": [{"delta": {}, "finish_reason": "length"}]}
            """
        )
    )
    profile = Profile("t", "local", max_tokens=LIMIT, options={"target": f"{path}:generate"})
    backend = from_profile(profile, {})
    try:
        gen = await _run(backend, mode)
    finally:
        await backend.aclose()
    assert gen.error is None and gen.text == " w0 w1 w2"
    assert gen.finish is not None and gen.finish.reason == "length"


@pytest.mark.parametrize("mode", ["stream", "create"])
async def test_triton_grpc_stops_at_the_limit_cleanly(mode: Mode) -> None:
    async with serve_grpc() as grpc_server:
        profile = Profile(name="t", api="triton-grpc", url=grpc_server.target, model="toy",
                          max_tokens=LIMIT, params={"tokens": 10},
                          options={"max_tokens_tensor": "max_tokens"})  # fmt: skip
        backend = create_backend(profile, {})
        try:
            gen = await _run(backend, mode)
        finally:
            await backend.aclose()
    assert gen.error is None and gen.state is State.DONE, gen.error
    assert gen.text == CUT
    assert gen.finish is not None and gen.finish.reason is None  # toy has no such output


@pytest.mark.parametrize("mode", ["stream", "create"])
@pytest.mark.parametrize(("tokens", "reason"), [(10, "length"), (2, "stop")])
async def test_triton_grpc_asks_a_vllm_model_why_it_stopped(
    mode: Mode, tokens: int, reason: str
) -> None:
    # vLLM's Triton backend offers a return_finish_reason input and a finish_reason
    # output; the model's metadata says so, and then tide asks for it.
    async with serve_grpc() as grpc_server:
        profile = Profile(name="t", api="triton-grpc", url=grpc_server.target, model="vllm",
                          max_tokens=LIMIT, params={"tokens": tokens},
                          options={"max_tokens_tensor": "max_tokens"})  # fmt: skip
        backend = create_backend(profile, {})
        try:
            gen = await _run(backend, mode)
        finally:
            await backend.aclose()
        assert grpc_server.last().asked_finish_reason
    assert gen.error is None and gen.state is State.DONE, gen.error
    assert gen.text == (CUT if tokens > LIMIT else "w0 w1")
    assert gen.finish is not None and gen.finish.reason == reason
