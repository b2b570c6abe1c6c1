"""A local predictor's answer obeys max_event_bytes and max_answer_bytes, like the HTTP
backends: in ``stream`` and ``create``, checked on each piece as it arrives (issue 10
item 7)."""

from __future__ import annotations

import asyncio
import logging
import threading
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from tokentide.backends.base import GenerationRequest
from tokentide.backends.events import TextDelta
from tokentide.backends.local import LocalBackend, from_profile
from tokentide.config.model import Limits, Profile
from tokentide.errors import LimitExceeded
from tokentide.generation import Generation, State

PREDICTORS = Path(__file__).resolve().parents[1] / "predictors"
HI = GenerationRequest(messages=())
MB = 1 << 20


def local(predictor: object, yields: str = "delta", **limits: int) -> LocalBackend:
    profile = Profile(name="t", api="local", limits=Limits(**limits))
    return LocalBackend(predictor, target="t:predictor", yields=yields, profile=profile)  # type: ignore[arg-type]


class Counted:
    """A generator of ``count`` pieces of ``size`` characters that records how far it got.

    Delta pieces differ from each other ("aaa", "bbb", ...), so ``yields = "auto"`` does
    not mistake them for cumulative ones; cumulative pieces grow by ``size`` each."""

    def __init__(self, count: int, size: int, cumulative: bool = False) -> None:
        self.count, self.size, self.cumulative = count, size, cumulative
        self.produced = 0
        self.closed = threading.Event()

    def __call__(self) -> Iterator[str]:
        try:
            for n in range(1, self.count + 1):
                self.produced = n
                if self.cumulative:
                    yield "x" * (self.size * n)
                else:
                    yield chr(ord("a") + n % 26) * self.size
        finally:
            self.closed.set()


async def wait_for(flag: threading.Event) -> bool:
    return await asyncio.to_thread(flag.wait, 10.0)


# -- streaming ----------------------------------------------------------------------------


async def test_huge_yields_stop_at_the_limit_and_keep_the_partial() -> None:
    def predictor() -> Iterator[str]:
        for _ in range(100):
            yield "x" * (10 * MB)

    backend = local(predictor, max_event_bytes=20 * MB, max_answer_bytes=15 * MB)
    text: list[str] = []
    with pytest.raises(LimitExceeded, match="passed"):
        async for event in backend.stream(HI):
            if isinstance(event, TextDelta):
                text.append(event.text)
    assert len("".join(text)) == 15 * MB


async def test_one_huge_piece_is_refused_at_once_without_copying_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The generation layer, as the chat app and `tide ask` use it.  The 10 MB piece is
    # built at import (before tracing): what is traced is what tokentide allocates.
    backend = from_profile(
        Profile("t", "local", options={"target": f"{PREDICTORS}/huge_piece.py:generate"}), {}
    )
    loop = asyncio.get_running_loop()
    loop.set_debug(True)  # asyncio logs every step that holds the loop longer than:
    loop.slow_callback_duration = 0.1
    caplog.set_level(logging.WARNING, logger="asyncio")
    tracemalloc.start()
    try:
        generation = Generation(backend, HI).start()
        state = await generation.wait()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        loop.set_debug(False)

    assert state == State.ERROR
    assert isinstance(generation.error, LimitExceeded)
    assert f"more than {MB:,} bytes" in generation.error.message
    assert generation.text == "hello "  # the piece before it is kept, nothing of it shown
    assert peak < 2 * MB, f"{peak:,} bytes allocated for a refused 10 MB piece"
    assert not [r for r in caplog.records if "took" in r.getMessage()]  # the loop stayed free
    assert await wait_for(backend.function.__globals__["closed"])


async def test_a_cumulative_piece_over_the_answer_limit_is_refused_before_comparing() -> None:
    counted = Counted(100, MB // 4, cumulative=True)
    backend = local(counted, "cumulative", max_answer_bytes=MB)
    seen: list[str] = []

    with pytest.raises(LimitExceeded, match="passed"):
        async for event in backend.stream(HI):
            if isinstance(event, TextDelta):
                seen.append(event.text)

    assert len("".join(seen)) == MB  # four pieces fit, the fifth does not
    assert counted.produced == 5
    assert await wait_for(counted.closed)


# -- non-streaming --------------------------------------------------------------------------


@pytest.mark.parametrize("yields", ["delta", "auto"])
async def test_create_stops_at_the_answer_limit_as_pieces_arrive(yields: str) -> None:
    counted = Counted(1000, 1024)
    backend = local(counted, yields, max_answer_bytes=10 * 1024)

    with pytest.raises(LimitExceeded, match=r"passed 10,240 bytes"):
        await backend.create(HI)

    assert counted.produced == 11  # not 1000: the limit is checked per piece
    assert await wait_for(counted.closed)


async def test_create_with_cumulative_pieces_stops_at_the_answer_limit() -> None:
    counted = Counted(1000, 1024, cumulative=True)
    backend = local(counted, "cumulative", max_answer_bytes=10 * 1024)

    with pytest.raises(LimitExceeded, match="passed"):
        await backend.create(HI)

    assert counted.produced == 11
    assert await wait_for(counted.closed)


@pytest.mark.parametrize("yields", ["delta", "cumulative", "auto"])
async def test_create_refuses_a_huge_piece(yields: str) -> None:
    counted = Counted(3, 10 * MB)
    backend = local(counted, yields)  # the default limits: 1 MiB a piece, 64 MiB in all

    with pytest.raises(LimitExceeded, match=f"more than {MB:,} bytes"):
        await backend.create(HI)

    assert counted.produced == 1


async def test_create_refuses_an_eager_answer_over_the_limit() -> None:
    def predictor() -> str:
        return "é" * 600  # 1,200 bytes in UTF-8

    with pytest.raises(LimitExceeded, match=r"passed 1,000 bytes"):
        await local(predictor, max_answer_bytes=1000).create(HI)
    assert (await local(predictor, max_answer_bytes=1200).create(HI)).text == "é" * 600


async def test_pieces_within_the_limits_are_untouched() -> None:
    counted = Counted(64, 1024)
    backend = local(counted, max_event_bytes=1024, max_answer_bytes=64 * 1024)

    expected = [chr(ord("a") + n % 26) * 1024 for n in range(1, 65)]
    assert (await backend.create(HI)).text == "".join(expected)
    assert [e.text async for e in backend.stream(HI) if isinstance(e, TextDelta)] == expected
