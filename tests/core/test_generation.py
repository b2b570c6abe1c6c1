"""The generation object: queue, batching, stats, deadlines, retries, cancellation.

The backend here is mostly a scripted in-process double, because what is tested is the
generation object's own logic; the same paths against real loopback servers are in
tests/test_ask.py and the backend tests, and the honest counts of each dialect at the
end of this file.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncGenerator, Sequence

import pytest

from tests.servers.llm_server import BackendMaker, LLMServer
from tokentide.backends.base import Backend, GenerationRequest, Reply, collect
from tokentide.backends.events import (
    Event,
    Finish,
    Retrying,
    TextDelta,
    ToolCallRequested,
    Usage,
)
from tokentide.config.model import Deadlines
from tokentide.errors import (
    BackendError,
    CannotConnect,
    FirstTokenTimeout,
    IdleTimeout,
    Overloaded,
    ServerError,
)
from tokentide.generation import Generation, Mode, RetryPolicy, State, Stats

REQUEST = GenerationRequest.from_prompt("hi")
Step = Event | BackendError | float  # a float is a pause in seconds


class Scripted:
    """Plays a script per attempt; records whether each stream was closed."""

    name = "scripted"

    def __init__(self, *attempts: Sequence[Step]) -> None:
        self.attempts = list(attempts)
        self.calls = 0
        self.closed = 0
        self.reached: asyncio.Event = asyncio.Event()

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[Event, None]:
        script = self.attempts[min(self.calls, len(self.attempts) - 1)]
        self.calls += 1
        try:
            for step in script:
                if isinstance(step, float):
                    self.reached.set()
                    await asyncio.sleep(step)
                elif isinstance(step, BackendError):
                    raise step
                else:
                    yield step
        finally:
            self.closed += 1

    async def create(self, request: GenerationRequest) -> Reply:
        return await collect(self.stream(request))

    async def aclose(self) -> None:
        pass


async def test_events_text_and_stats() -> None:
    backend = Scripted([TextDelta("Hel"), TextDelta("lo"), TextDelta("</s>", special=True),
                        Finish("stop", Usage(3, 7))])  # fmt: skip
    gen = Generation(backend, REQUEST)
    events = [event async for event in gen]
    assert [type(e).__name__ for e in events] == ["TextDelta", "TextDelta", "TextDelta", "Finish"]
    assert gen.text == "Hello"
    assert gen.state is State.DONE
    assert gen.stats.tokens == 2
    assert gen.stats.token_count == 7  # the server's count wins
    assert len(gen.stats.gaps) == 1
    assert gen.stats.ttft is not None and gen.stats.total is not None
    assert gen.stats.ttft <= gen.stats.total


async def test_batches_hand_over_everything_queued() -> None:
    backend = Scripted([*(TextDelta(str(i)) for i in range(100)), 0.01, TextDelta("x"), Finish()])
    gen = Generation(backend, REQUEST).start()
    await backend.reached.wait()
    batches = [batch async for batch in gen.batches()]
    assert len(batches[0]) == 100  # all queued before the pause, in one batch
    assert gen.text == "".join(map(str, range(100))) + "x"


async def test_ttft_counts_content_not_empty_chunks() -> None:
    backend = Scripted([TextDelta(""), 0.05, TextDelta("a"), Finish()])
    gen = Generation(backend, REQUEST)
    async with gen:
        await gen.wait()
    assert gen.stats.ttft is not None and gen.stats.ttft >= 0.05


async def test_error_after_partial_text_keeps_it() -> None:
    backend = Scripted([TextDelta("partial"), ServerError("boom", kind="generation")])
    gen = Generation(backend, REQUEST, retry=RetryPolicy(max_retries=2))
    seen: list[Event] = []
    with pytest.raises(ServerError):
        async for event in gen:
            seen.append(event)
    assert seen == [TextDelta("partial")]
    assert gen.text == "partial"
    assert gen.state is State.ERROR
    assert backend.calls == 1  # never retried after content: the text would repeat


async def test_cancel_closes_the_backend_stream() -> None:
    backend = Scripted([TextDelta("a"), 30.0, TextDelta("never")])
    gen = Generation(backend, REQUEST).start()
    await backend.reached.wait()
    loop = asyncio.get_running_loop()
    started = loop.time()
    gen.cancel()
    assert await gen.wait() is State.STOPPED
    assert loop.time() - started < 0.1
    assert backend.closed == 1
    assert gen.text == "a"
    assert [e async for e in gen] == [TextDelta("a")]  # the queue still ends cleanly


class SlowToClose(Scripted):
    """A stream whose cleanup itself awaits, like closing an HTTP response or a gRPC call."""

    def __init__(self) -> None:
        super().__init__([30.0])
        self.cleaned = False

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[Event, None]:
        try:
            self.reached.set()
            await asyncio.sleep(30)
            yield TextDelta("never")
        finally:
            for _ in range(3):
                await asyncio.sleep(0)
            self.cleaned = True


async def test_a_second_stop_does_not_interrupt_the_cleanup() -> None:
    # Esc pressed twice (or Esc and a deadline at once): the second cancellation must not
    # land inside the first one's cleanup, or a response is left half closed (the pattern
    # of httpx #3782 / httpcore #1093).
    backend = SlowToClose()
    gen = Generation(backend, REQUEST).start()
    await backend.reached.wait()
    gen.cancel()
    for _ in range(2):
        await asyncio.sleep(0)
        gen.cancel()
    assert await gen.wait() is State.STOPPED
    assert backend.cleaned


async def test_retry_before_first_token_with_backoff() -> None:
    overloaded = Overloaded("busy", status=429, retry_after=0.05)
    backend = Scripted([overloaded], [CannotConnect("down")], [TextDelta("ok"), Finish()])
    gen = Generation(backend, REQUEST, retry=RetryPolicy(max_retries=2, initial=0.01),
                     rng=random.Random(1))  # fmt: skip
    events = [event async for event in gen]
    retries = [e for e in events if isinstance(e, Retrying)]
    assert [r.attempt for r in retries] == [2, 3]
    assert retries[0].delay == 0.05  # Retry-After honoured
    assert 0.0075 <= retries[1].delay <= 0.02  # 0.01 * 2 with up to -25 % jitter
    assert gen.text == "ok" and gen.stats.attempts == 3


async def test_retries_are_bounded() -> None:
    backend = Scripted([CannotConnect("down")])
    gen = Generation(backend, REQUEST, retry=RetryPolicy(max_retries=2, initial=0.001))
    with pytest.raises(CannotConnect):
        async for _ in gen:
            pass
    assert backend.calls == 3


def test_retry_after_beyond_the_cap_is_not_retried() -> None:
    policy = RetryPolicy(max_retries=2, max_retry_after=120)
    error = Overloaded("busy", status=503, retry_after=600)
    assert policy.delay(error, 1, random.Random(0)) is None
    assert policy.delay(ServerError("bad", kind="validation"), 1, random.Random(0)) is None


async def test_first_token_deadline() -> None:
    backend = Scripted([5.0, TextDelta("late")])
    gen = Generation(backend, REQUEST, deadlines=Deadlines(first_token=0.2, idle=None))
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(FirstTokenTimeout, match=r"first-token deadline of 0\.2 s"):
        async for _ in gen:
            pass
    assert 0.2 <= loop.time() - started < 1.2
    assert backend.closed == 1


async def test_idle_deadline_keeps_partial_text() -> None:
    backend = Scripted([TextDelta("a"), 0.05, TextDelta("b"), 5.0, TextDelta("c")])
    gen = Generation(backend, REQUEST, deadlines=Deadlines(first_token=None, idle=0.3))
    with pytest.raises(IdleTimeout):
        async for _ in gen:
            pass
    assert gen.text == "ab"


async def test_slow_healthy_stream_never_times_out() -> None:
    script: list[Step] = []
    for index in range(6):
        script += [0.1, TextDelta(str(index))]
    backend = Scripted([*script, Finish()])
    gen = Generation(backend, REQUEST, deadlines=Deadlines(first_token=0.3, idle=0.3))
    async with gen:
        assert await gen.wait() is State.DONE
    assert gen.text == "012345"


async def test_create_mode_delivers_the_whole_answer_at_once() -> None:
    backend = Scripted(
        [0.05, TextDelta("whole "), TextDelta("answer"), Finish("stop", Usage(1, 2))]
    )
    gen = Generation(backend, REQUEST, mode="create")
    events = [event async for event in gen]
    assert events[0] == TextDelta("whole answer")
    assert isinstance(events[-1], Finish) and events[-1].reason == "stop"
    assert gen.stats.token_count == 2
    assert gen.stats.ttft is not None and gen.stats.ttft >= 0.05
    assert gen.stats.gaps == []


async def test_create_mode_queues_the_tool_calls_before_the_finish() -> None:
    calls = [ToolCallRequested("get_weather", '{"city": "Paris"}', "call_0"),
             ToolCallRequested("get_time", "{}", "call_1")]  # fmt: skip
    backend = Scripted([TextDelta("Let me check."), *calls, Finish("tool_calls")])
    gen = Generation(backend, REQUEST, mode="create")
    events = [event async for event in gen]
    assert events == [
        TextDelta("Let me check."),
        *calls,
        Finish("tool_calls", text="Let me check."),
    ]


# -- honest counts (issue 11 item 6) ----------------------------------------------------


class DeclaresTokens(Scripted):
    events_are_tokens = True


async def _stats(backend: Backend, mode: Mode = "stream") -> Stats:
    gen = Generation(backend, REQUEST, mode=mode)
    async with gen:
        assert await gen.wait() is State.DONE
    return gen.stats


async def test_a_stream_without_usage_counts_chunks() -> None:
    stats = await _stats(Scripted([TextDelta("a"), 0.01, TextDelta("bc"), 0.01, TextDelta("d"),
                                   Finish("stop")]))  # fmt: skip
    assert (stats.count, stats.unit, stats.count_label()) == (3, "chunks", "3 chunks")
    assert stats.rate_label() is not None and stats.rate_label().endswith(" chunks/s")  # type: ignore[union-attr]
    assert stats.as_dict()["unit"] == "chunks" and stats.as_dict()["tokens"] == 3


async def test_usage_from_the_server_counts_tokens() -> None:
    stats = await _stats(
        Scripted([TextDelta("a"), 0.01, TextDelta("b"), Finish("stop", Usage(3, 7))])
    )
    assert (stats.count, stats.unit, stats.count_label()) == (7, "tokens", "7 tokens")
    assert stats.rate_label() is not None and stats.rate_label().endswith(" tok/s")  # type: ignore[union-attr]


async def test_events_with_token_ids_are_tokens() -> None:
    stats = await _stats(Scripted([TextDelta("a", token_id=1), TextDelta("b", token_id=2),
                                   Finish("stop")]))  # fmt: skip
    assert (stats.count, stats.unit) == (2, "tokens")
    mixed = await _stats(Scripted([TextDelta("a", token_id=1), TextDelta("b"), Finish("stop")]))
    assert (mixed.count, mixed.unit) == (2, "chunks")


async def test_a_backend_that_declares_token_events_counts_tokens() -> None:
    stats = await _stats(DeclaresTokens([TextDelta("a"), Finish("stop")]))
    assert (stats.count, stats.unit, stats.count_label()) == (1, "tokens", "1 token")


async def test_create_without_a_count_says_no_count_and_no_rate() -> None:
    stats = await _stats(Scripted([TextDelta("whole "), TextDelta("answer"), Finish("stop")]),
                         "create")  # fmt: skip
    assert (stats.count, stats.unit, stats.token_count) == (None, None, 0)
    assert stats.count_label() is None and stats.rate_label() is None
    assert stats.tokens_per_s is None
    assert (stats.as_dict()["tokens"], stats.as_dict()["unit"]) == (None, None)
    declared = await _stats(DeclaresTokens([TextDelta("a"), Finish("stop")]), "create")
    assert declared.count is None  # the declaration is about stream events, not one reply


async def test_create_with_per_token_details_counts_them() -> None:
    script: list[Step] = [TextDelta("a", token_id=5), TextDelta("b", token_id=6),
              TextDelta("</s>", token_id=2, special=True), Finish("stop")]  # fmt: skip
    stats = await _stats(Scripted(script), "create")
    assert (stats.count, stats.unit, stats.count_label()) == (2, "tokens", "2 tokens")
    assert stats.rate_label() is not None


async def test_state_callback_sees_every_transition() -> None:
    states: list[State] = []
    backend = Scripted([TextDelta("a"), Finish()])
    gen = Generation(backend, REQUEST)
    gen.on_state = states.append
    async with gen:
        await gen.wait()
    assert states == [State.STREAMING, State.DONE]


# -- honest counts against the loopback server, per dialect -----------------------------


@pytest.mark.parametrize(
    ("api", "suffix", "knobs", "mode", "label"),
    [
        ("openai", "/v1", {}, "stream", "4 tokens"),  # the usage chunk counts
        ("openai", "/v1", {"usage": 0}, "stream", "4 chunks"),  # no usage: events
        ("openai", "/v1", {}, "create", "4 tokens"),
        ("openai", "/v1", {"usage": 0}, "create", None),  # one reply is not "1 token"
        ("tgi", "", {}, "stream", "5 tokens"),  # token ids (and the EOS the server counts)
        ("tgi", "", {}, "create", "5 tokens"),
        ("triton-http", "", {}, "stream", "4 chunks"),
        ("triton-http", "", {}, "create", None),
    ],
)  # fmt: skip
async def test_counts_on_the_loopback_server(
    server: LLMServer, api: str, suffix: str, knobs: dict[str, int], mode: Mode, label: str | None
) -> None:
    maker = BackendMaker(api)
    backend = maker(server.url(tokens=4, **knobs) + suffix, model="m")
    try:
        stats = await _stats(backend, mode)
    finally:
        await maker.aclose()
    assert stats.count_label() == label
    assert (stats.rate_label() is None) == (label is None)
    assert stats.as_dict()["unit"] == (None if label is None else label.split()[1])
