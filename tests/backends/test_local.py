"""The ``local`` backend, driven through real predictor files and real worker threads.

The predictors in ``examples/predictors/`` are the fixtures; cases that need to watch a
predictor from outside (did its ``finally`` run? did it start its next step?) write a
small predictor file with ``threading.Event`` objects and read them back through the
loaded function's globals.  Tests synchronise on those events, with timeouts, never on
sleeps.
"""

from __future__ import annotations

import asyncio
import sys
import textwrap
import threading
import time
from contextlib import aclosing
from pathlib import Path
from typing import Any

import pytest

from tokentide.backends.base import Backend, GenerationRequest, Message
from tokentide.backends.events import Event, Finish, TextDelta
from tokentide.backends.local import LocalBackend, from_profile
from tokentide.backends.registry import create_backend
from tokentide.config.model import Profile
from tokentide.errors import BackendError, ConfigError, LocalFunctionError
from tokentide.generation import Generation, State

REPO = Path(__file__).resolve().parents[2]
PREDICTORS = REPO / "examples" / "predictors"
CONSUMER_DEADLINE = 0.1
"""The consumer side of a stop must return within this many seconds."""
WAIT = 10.0
"""Timeout for waiting on a threading.Event set by a predictor."""

HI = GenerationRequest.from_prompt("hi")


def backend(target: str, yields: str = "delta", **profile: Any) -> LocalBackend:
    options = {"target": target, "yields": yields}
    return from_profile(Profile("test", "local", options=options, **profile), {})


def example(name: str, yields: str = "delta") -> LocalBackend:
    return backend(f"{PREDICTORS / name}", yields)


def predictor(tmp_path: Path, source: str, name: str = "predictor") -> str:
    """Write a predictor file; return its target for ``func``."""
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    return f"{path}:func"


def globals_of(local: LocalBackend) -> dict[str, Any]:
    """The namespace the predictor was loaded into (to reach its events)."""
    return local.function.__globals__


async def events_of(local: Backend, request: GenerationRequest = HI) -> list[Event]:
    return [event async for event in local.stream(request)]


def texts(events: list[Event]) -> list[str]:
    return [event.text for event in events if isinstance(event, TextDelta)]


async def wait_for(flag: threading.Event) -> bool:
    """Wait for a flag set in another thread without blocking the loop."""
    return await asyncio.to_thread(flag.wait, WAIT)


# -- the shapes a predictor can take -------------------------------------------------------


async def test_eager_function_streams_one_piece_then_finish() -> None:
    local = example("echo.py:generate")
    request = GenerationRequest.from_prompt("hello there", system="be brief")

    events = await events_of(local, request)

    assert events == [TextDelta("You said: hello there (system: be brief)"), Finish("stop")]
    reply = await local.create(request)
    assert reply.text == "You said: hello there (system: be brief)"
    assert reply.finish_reason == "stop"


async def test_eager_async_function() -> None:
    local = example("echo.py:agenerate")

    assert await events_of(local) == [TextDelta("You said: hi"), Finish("stop")]
    assert (await local.create(HI)).text == "You said: hi"


async def test_sync_generator_streams_every_piece_in_order() -> None:
    local = example("story.py:generate")
    story = globals_of(local)["STORY"]

    events = await events_of(local)

    assert isinstance(events[-1], Finish) and events[-1].reason == "stop"
    pieces = texts(events)
    assert len(pieces) == len(story.split(" "))
    assert "".join(pieces) == story
    assert (await local.create(HI)).text == story


async def test_generator_receives_max_tokens() -> None:
    local = example("story.py:generate")

    pieces = texts(await events_of(local, GenerationRequest.from_prompt("x", max_tokens=3)))

    assert pieces == ["Once", " upon", " a"]


async def test_async_generator_streams_every_piece() -> None:
    local = example("async_story.py:generate")
    request = GenerationRequest(
        messages=(Message("user", "a"), Message("assistant", "b"), Message("user", "c"))
    )

    assert texts(await events_of(local, request)) == ["This", " is", " turn", " 2", "."]
    assert (await local.create(request)).text == "This is turn 2."


async def test_cumulative_results_become_deltas_and_create_returns_the_last() -> None:
    local = example("cumulative.py:generate", yields="cumulative")

    events = await events_of(local)

    assert events == [TextDelta("hello"), TextDelta(" from"), TextDelta(" Muna"), Finish("stop")]
    assert (await local.create(HI)).text == "hello from Muna"


async def test_delta_mode_appends_every_piece() -> None:
    # The same predictor read as deltas: create concatenates (Muna's delta semantics).
    local = example("cumulative.py:generate", yields="delta")

    assert (await local.create(HI)).text == "hellohello fromhello from Muna"


async def test_cumulative_result_that_does_not_extend_the_previous_is_an_error(
    tmp_path: Path,
) -> None:
    target = predictor(
        tmp_path,
        """
        def func():
            yield "hello"
            yield "hello from"
            yield "goodbye"
        """,
    )
    local = backend(target, yields="cumulative")
    seen: list[str] = []

    with pytest.raises(LocalFunctionError) as caught:
        async for event in local.stream(HI):
            if isinstance(event, TextDelta):
                seen.append(event.text)

    assert seen == ["hello", " from"]
    message = str(caught.value)
    assert target in message
    assert "'hello from'" in message and "'goodbye'" in message
    assert 'yields = "delta"' in message  # the hint
    # create keeps only the last result, so a revision is fine there.
    assert (await local.create(HI)).text == "goodbye"


async def test_openai_shaped_chunks_and_their_finish_reason() -> None:
    local = example("openai_chunks.py:generate")
    request = GenerationRequest.from_prompt("ping")

    events = await events_of(local, request)

    assert texts(events) == ["Echo:", " ", "ping"]
    assert events[-1] == Finish("length")
    reply = await local.create(request)
    assert (reply.text, reply.finish_reason) == ("Echo: ping", "length")


async def test_dict_and_none_pieces(tmp_path: Path) -> None:
    target = predictor(
        tmp_path,
        """
        def func():
            yield {"content": "a"}
            yield None
            yield {"text": "b"}
            yield {"choices": [{"message": {"content": "c"}}]}
            yield {"choices": []}
        """,
    )

    assert texts(await events_of(backend(target))) == ["a", "b", "c"]


async def test_eager_dict_answer(tmp_path: Path) -> None:
    target = predictor(tmp_path, 'def func():\n    return {"content": "whole answer"}\n')

    assert await events_of(backend(target)) == [TextDelta("whole answer"), Finish("stop")]


async def test_a_piece_of_the_wrong_type_is_an_error(tmp_path: Path) -> None:
    target = predictor(tmp_path, "def func():\n    yield 42\n")

    with pytest.raises(LocalFunctionError, match=r"produced int 42; expected str"):
        await events_of(backend(target))


async def test_decorators_that_hide_the_kind_of_function(tmp_path: Path) -> None:
    target = predictor(
        tmp_path,
        """
        import functools

        def plain(fn):
            @functools.wraps(fn)
            def wrapper(*args, **kwargs):
                return fn(*args, **kwargs)
            return wrapper

        @plain
        def func(prompt):
            yield prompt
            yield "!"

        @plain
        async def agen(prompt):
            yield prompt
            yield "?"

        @plain
        async def coro(prompt):
            return prompt + "."
        """,
    )
    request = GenerationRequest.from_prompt("x")

    assert texts(await events_of(backend(target), request)) == ["x", "!"]
    assert texts(await events_of(backend(target[:-4] + "agen"), request)) == ["x", "?"]
    assert texts(await events_of(backend(target[:-4] + "coro"), request)) == ["x."]
    assert (await backend(target[:-4] + "agen").create(request)).text == "x?"


# -- arguments ------------------------------------------------------------------------------


async def test_kwargs_receives_every_argument(tmp_path: Path) -> None:
    target = predictor(
        tmp_path,
        """
        received = {}

        def func(**kwargs):
            received.update(kwargs)
            return "ok"
        """,
    )
    local = backend(target, temperature=0.5, max_tokens=99)
    request = GenerationRequest.from_prompt("question", system="sys", seed=3, max_tokens=7)

    await local.create(request)

    received = globals_of(local)["received"]
    assert received == {
        "messages": [
            {"role": "system", "content": "sys"},
            {"role": "user", "content": "question"},
        ],
        "prompt": "question",
        "system": "sys",
        "max_tokens": 7,  # the request wins over the profile
        "temperature": 0.5,  # the profile fills what the request leaves out
        "seed": 3,
        "request": request,
    }


async def test_only_named_arguments_are_passed(tmp_path: Path) -> None:
    target = predictor(
        tmp_path,
        """
        def func(prompt, temperature, extra="default"):
            return f"{prompt}|{temperature}|{extra}"
        """,
    )

    assert (await backend(target).create(HI)).text == "hi|None|default"


def test_a_parameter_tokentide_cannot_supply_is_a_config_error(tmp_path: Path) -> None:
    target = predictor(tmp_path, "def func(text):\n    return text\n")

    with pytest.raises(ConfigError, match=r"parameter 'text' cannot be supplied") as caught:
        backend(target)
    assert "prompt" in str(caught.value)  # the hint lists the names it can use


# -- errors -------------------------------------------------------------------------------


async def test_an_exception_midway_keeps_the_text_already_streamed() -> None:
    local = example("flaky.py:generate")
    seen: list[str] = []

    with pytest.raises(LocalFunctionError) as caught:
        async for event in local.stream(HI):
            assert isinstance(event, TextDelta)
            seen.append(event.text)

    assert seen == ["I was going to say", " something clever"]
    assert str(caught.value) == (
        f"{PREDICTORS}/flaky.py:generate raised RuntimeError: the model ran out of ideas"
    )
    assert isinstance(caught.value.__cause__, RuntimeError)
    assert caught.value.exit_code == 4
    with pytest.raises(LocalFunctionError, match="ran out of ideas"):
        await local.create(HI)


async def test_exceptions_from_eager_and_async_predictors(tmp_path: Path) -> None:
    target = predictor(
        tmp_path,
        """
        def func():
            raise KeyError("missing")

        async def coro():
            raise ValueError("bad value")

        async def agen():
            yield "one"
            raise OSError("disk")
        """,
    )
    base = target[:-4]

    with pytest.raises(LocalFunctionError, match=r":func raised KeyError: 'missing'"):
        await events_of(backend(target))
    with pytest.raises(LocalFunctionError, match=r":coro raised ValueError: bad value"):
        await backend(base + "coro").create(HI)
    with pytest.raises(LocalFunctionError, match=r":agen raised OSError: disk"):
        await events_of(backend(base + "agen"))


async def test_a_backend_error_raised_by_the_predictor_passes_through(tmp_path: Path) -> None:
    target = predictor(
        tmp_path,
        """
        from tokentide.errors import BackendError

        def func():
            yield "a"
            raise BackendError("upstream said no", server="elsewhere")
        """,
    )

    with pytest.raises(BackendError) as caught:
        await events_of(backend(target))
    assert type(caught.value) is BackendError
    assert caught.value.server == "elsewhere"


# -- threads and stopping ---------------------------------------------------------------------


async def test_a_blocking_predictor_does_not_block_the_event_loop(tmp_path: Path) -> None:
    target = predictor(
        tmp_path,
        """
        import threading
        entered = threading.Event()
        gate = threading.Event()

        def func():
            entered.set()
            gate.wait(30)   # blocks its thread, as a slow eager model call would
            return "late"
        """,
    )
    slow = backend(target)
    flags = globals_of(slow)
    answer = asyncio.create_task(slow.create(HI))
    assert await wait_for(flags["entered"])

    # While it blocks, the loop serves another backend completely.
    assert (await example("echo.py:generate").create(HI)).text == "You said: hi"
    assert not answer.done()

    flags["gate"].set()
    assert (await answer).text == "late"


async def test_closing_while_suspended_at_a_yield_closes_the_generator_at_once(
    tmp_path: Path,
) -> None:
    target = predictor(
        tmp_path,
        """
        import threading
        next_step = threading.Event()
        closed = threading.Event()

        def func():
            try:
                yield "first"
                next_step.set()     # only runs if someone asks for a second piece
                yield "second"
            finally:
                closed.set()
        """,
    )
    local = backend(target)
    flags = globals_of(local)
    stream = local.stream(HI)
    assert await anext(stream) == TextDelta("first")
    # No read-ahead: nobody asked for a second piece, so the generator does not move.
    # (A read-ahead thread would set next_step within microseconds.)
    assert not await asyncio.to_thread(flags["next_step"].wait, 0.2)

    started = time.perf_counter()
    await stream.aclose()
    assert time.perf_counter() - started < CONSUMER_DEADLINE

    assert await wait_for(flags["closed"])  # closed at the yield it was suspended at
    assert not flags["next_step"].is_set()


async def test_breaking_out_of_the_loop_closes_the_generator(tmp_path: Path) -> None:
    target = predictor(
        tmp_path,
        """
        import itertools, threading
        closed = threading.Event()

        def func():
            try:
                for n in itertools.count():
                    yield f"{n} "
            finally:
                closed.set()
        """,
    )
    local = backend(target)
    seen = []
    async with aclosing(local.stream(HI)) as stream:
        async for event in stream:
            seen.append(event)
            if len(seen) == 3:
                break

    assert texts(seen) == ["0 ", "1 ", "2 "]
    assert await wait_for(globals_of(local)["closed"])


async def test_cancelling_between_yields_returns_at_once_and_closes_at_the_next_yield() -> None:
    local = example("hang.py:generate")
    flags = globals_of(local)
    try:
        stream = local.stream(HI)
        assert await anext(stream) == TextDelta("Thinking")
        waiting = asyncio.create_task(anext(stream))
        assert await wait_for(flags["stalled"])  # the generator is stuck inside next()

        started = time.perf_counter()
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await stream.aclose()
        assert time.perf_counter() - started < CONSUMER_DEADLINE

        # Nothing can interrupt the blocked call: the generator is still in it ...
        assert not flags["closed"].is_set()
        flags["resume"].set()
        # ... and is closed when it reaches its next yield; " ... done." is dropped.
        assert await wait_for(flags["closed"])
    finally:
        flags["resume"].set()


async def test_cancelling_an_async_generator_runs_its_finally(tmp_path: Path) -> None:
    target = predictor(
        tmp_path,
        """
        import asyncio, threading
        waiting = threading.Event()
        closed = threading.Event()

        async def func():
            try:
                yield "a"
                waiting.set()
                await asyncio.Event().wait()
                yield "never"
            finally:
                closed.set()
        """,
    )
    local = backend(target)
    flags = globals_of(local)

    async def consume(into: list[Event]) -> None:
        async for event in local.stream(HI):
            into.append(event)

    seen: list[Event] = []
    task = asyncio.create_task(consume(seen))
    assert await wait_for(flags["waiting"])
    started = time.perf_counter()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.perf_counter() - started < CONSUMER_DEADLINE
    assert flags["closed"].is_set()
    assert seen == [TextDelta("a")]


async def test_create_cancelled_mid_generator_closes_it(tmp_path: Path) -> None:
    target = predictor(
        tmp_path,
        """
        import threading
        stalled = threading.Event()
        resume = threading.Event()
        closed = threading.Event()

        def func():
            try:
                yield "a"
                stalled.set()
                resume.wait(30)
                yield "b"
            finally:
                closed.set()
        """,
    )
    local = backend(target)
    flags = globals_of(local)
    try:
        task = asyncio.create_task(local.create(HI))
        assert await wait_for(flags["stalled"])
        started = time.perf_counter()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert time.perf_counter() - started < CONSUMER_DEADLINE
        flags["resume"].set()
        assert await wait_for(flags["closed"])
    finally:
        flags["resume"].set()


# -- targets and profiles ---------------------------------------------------------------


def test_relative_paths_are_relative_to_the_current_directory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(REPO)
    local = backend("examples/predictors/echo.py:generate")

    assert local.name == "local examples/predictors/echo.py:generate"


async def test_package_module_targets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "tide_test_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "answers.py").write_text("def answer(prompt):\n    return prompt.upper()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "tide_test_pkg", raising=False)

    local = backend("tide_test_pkg.answers:answer")

    assert (await local.create(HI)).text == "HI"


def test_the_registry_builds_a_local_backend() -> None:
    profile = Profile(
        "mine",
        "local",
        options={"target": f"{PREDICTORS}/cumulative.py:generate", "yields": "cumulative"},
    )

    built = create_backend(profile, {})

    assert isinstance(built, LocalBackend)
    assert isinstance(built, Backend)
    assert built.yields == "cumulative"


@pytest.mark.parametrize(
    ("source", "target_suffix", "expected"),
    [
        (None, "nowhere.py:func", r"no file .*nowhere\.py"),
        ("def other():\n    pass\n", "predictor.py:func", r"has no 'func'.*\n.*It defines: other"),
        ("func = 42\n", "predictor.py:func", r"'func' is a int, not a function"),
        ("import no_such_module_xyz\n", "predictor.py:func", r"raised ModuleNotFoundError"),
        ("def func(:\n", "predictor.py:func", r"raised SyntaxError"),
        ("raise RuntimeError('boom at import')\n", "predictor.py:func", r"RuntimeError: boom"),
        (None, "predictor.py", r"does not name a function"),
    ],
)
def test_bad_targets_are_config_errors(
    tmp_path: Path, source: str | None, target_suffix: str, expected: str
) -> None:
    if source is not None:
        (tmp_path / "predictor.py").write_text(source)

    with pytest.raises(ConfigError, match=expected) as caught:
        backend(f"{tmp_path}/{target_suffix}")
    assert caught.value.exit_code == 2


def test_missing_module_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"no module named 'no_such_pkg_xyz'"):
        backend("no_such_pkg_xyz.sub:func")


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, r"needs a target"),
        ({"target": "  "}, r"needs a target"),
        ({"target": f"{PREDICTORS}/echo.py:generate", "yields": "words"}, r"yields = 'words'"),
    ],
)
def test_bad_profiles_are_config_errors(options: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        from_profile(Profile("bad", "local", options=options), {})


async def test_the_stream_is_an_async_iterator() -> None:
    stream = example("echo.py:generate").stream(HI)
    assert await anext(stream) == TextDelta("You said: hi")
    await stream.aclose()


# -- through the generation object, as the TUI and `tide ask` use it ---------------------------


async def test_generation_keeps_the_partial_answer_when_the_predictor_fails() -> None:
    generation = Generation(example("flaky.py:generate"), HI).start()

    assert await generation.wait() == State.ERROR
    assert generation.text == "I was going to say something clever"
    assert isinstance(generation.error, LocalFunctionError)


async def test_generation_stops_a_stalled_predictor_at_once() -> None:
    local = example("hang.py:generate")
    flags = globals_of(local)
    try:
        generation = Generation(local, HI).start()
        assert await wait_for(flags["stalled"])

        started = time.perf_counter()
        generation.cancel()
        assert await generation.wait() == State.STOPPED
        assert time.perf_counter() - started < CONSUMER_DEADLINE
        assert generation.text == "Thinking"

        flags["resume"].set()
        assert await wait_for(flags["closed"])
    finally:
        flags["resume"].set()
