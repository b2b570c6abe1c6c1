"""The comparison runner against a real loopback server (no mocked HTTP).

The server emits 20 tokens 50 ms apart when streaming; its non-streaming reply arrives
after the same 1 s (see conftest.py).  Tolerances are wide enough for a loaded 2-core
machine and narrow enough to fail if the modes were swapped or timed from the wrong
moment.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import AsyncGenerator, Callable

import pytest

from tests.servers.llm_server import LLMServer
from tokentide.backends.base import Backend, GenerationRequest, Reply
from tokentide.backends.events import Event, Finish, TextDelta
from tokentide.compare.runner import (
    CSV_FIELDS,
    Comparison,
    Mode,
    RunResult,
    Summary,
    Target,
    compare_sentence,
    format_table,
    make_targets,
    median,
    percentile,
    summarize,
    summary_sentences,
)
from tokentide.config.model import Profile
from tokentide.generation import Unit

PROMPT = "Count to twenty."


def profile(
    server: LLMServer, name: str = "loop", max_retries: int = 0, **knobs: object
) -> Profile:
    return Profile(
        name=name, api="openai", url=server.url(**knobs) + "/v1", model="m", max_retries=0
    )


def by(results: list[RunResult], mode: str) -> list[RunResult]:
    return [r for r in results if r.mode == mode]


# -- percentile -------------------------------------------------------------------------


def test_percentile_interpolates_like_numpy_linear() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([4.0, 1.0, 3.0, 2.0], 90) == pytest.approx(3.7)
    assert percentile([1.0, 2.0, 3.0, 4.0], 0) == 1.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 100) == 4.0
    assert percentile(range(101), 99) == pytest.approx(99.0)
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) is None
    assert median([3.0, 1.0, 2.0]) == 2.0
    with pytest.raises(ValueError):
        percentile([1.0], 101)
    with pytest.raises(ValueError):
        percentile([1.0], math.nan)


# -- against the loopback server --------------------------------------------------------


async def test_streaming_first_token_is_20x_sooner_and_totals_match(loopback: LLMServer) -> None:
    targets = make_targets([profile(loopback, tokens=20, delay=0.05)])
    comparison = Comparison(targets, PROMPT, runs=2, warmup=1)
    try:
        results = await comparison.run()
    finally:
        for target in targets:
            await target.backend.aclose()
    assert len(results) == 4 and len(comparison.warmup_results) == 2
    assert [r.run for r in comparison.warmup_results] == [-1, -1]
    assert sorted({r.run for r in results}) == [1, 2]
    assert all(r.ok and r.error_type is None for r in results), results
    for stream, create in zip(by(results, "stream"), by(results, "create"), strict=True):
        assert stream.ttft_s is not None and create.ttft_s is not None
        assert stream.total_s is not None and create.total_s is not None
        assert stream.ttft_s < 0.4, stream  # ≈ 50 ms
        assert create.ttft_s > 0.9, create  # ≈ 1 s: nothing before the whole answer
        # (margins for a loaded 2-core machine: what matters is the order of magnitude)
        assert create.ttft_s == pytest.approx(create.total_s, rel=0.15)
        assert abs(stream.total_s - create.total_s) / create.total_s < 0.3
        assert stream.total_s > 0.9  # 20 tokens 50 ms apart
        assert stream.tokens == create.tokens == 20
        assert stream.events == 20 and create.events == 1
        assert len(stream.gaps_s) == 19 and create.gaps_s == []
        assert stream.gap_p50_s is not None and 0.03 < stream.gap_p50_s < 0.2
        assert stream.text == create.text == " ".join(f"w{i}" for i in range(20))
        assert stream.text_matched is create.text_matched is True
        # Concurrent: both requests sent at the same moment.
        assert abs(stream.start_s - create.start_s) < 0.2
    summaries = comparison.summaries()
    assert [(s.target, s.mode, s.runs, s.ok, s.errors) for s in summaries] == [
        ("loop", "stream", 2, 2, 0),
        ("loop", "create", 2, 2, 0),
    ]
    sentence = summary_sentences(summaries)[0]
    assert sentence.startswith("loop: first token ") and "sooner when streaming" in sentence
    assert "total time within" in sentence and "same text in both modes" in sentence
    assert comparison.ok


async def test_time_to_first_token_ignores_the_role_chunk(loopback: LLMServer) -> None:
    # The role-only chunk arrives at once; the first content token after 0.5 s.
    targets = make_targets([profile(loopback, tokens=3, delay=0.01, first_delay=0.5)])
    comparison = Comparison(targets, PROMPT, modes=["stream"])
    try:
        [result] = await comparison.run()
    finally:
        await targets[0].backend.aclose()
    assert result.ok and result.ttft_s is not None
    assert result.ttft_s >= 0.49


async def test_sequential_runs_do_not_overlap(loopback: LLMServer) -> None:
    targets = make_targets([profile(loopback, tokens=5, delay=0.05)])
    comparison = Comparison(targets, PROMPT, runs=2, sequential=True)
    try:
        results = await comparison.run()
    finally:
        await targets[0].backend.aclose()
    assert [(r.mode, r.run) for r in results] == [
        ("stream", 1),
        ("create", 1),
        ("stream", 2),
        ("create", 2),
    ]
    for before, after in itertools.pairwise(results):
        assert before.total_s is not None
        assert after.start_s >= before.start_s + before.total_s
    assert all(r.ok for r in results)


@pytest.mark.parametrize("failing", ["create", "stream"])
async def test_one_side_429_does_not_fail_the_other(loopback: LLMServer, failing: Mode) -> None:
    knobs: dict[str, object] = {f"{failing}_status": 429, f"{failing}_error_message": "slow"}
    url = loopback.url(tokens=5, delay=0.02, **knobs) + "/v1"
    targets = make_targets([Profile(name="loop", api="openai", url=url, max_retries=0)])
    comparison = Comparison(targets, PROMPT, runs=2)
    try:
        results = await comparison.run()
    finally:
        await targets[0].backend.aclose()
    other: Mode = "stream" if failing == "create" else "create"
    for result in by(results, failing):
        assert not result.ok and result.state == "error"
        assert result.error_type == "Overloaded"
        assert result.error_message is not None and "slow" in result.error_message
        assert result.text_matched is None
    for result in by(results, other):
        assert result.ok and result.error_type is None and result.tokens == 5
        assert result.text == "w0 w1 w2 w3 w4"
    summaries = {s.mode: s for s in comparison.summaries()}
    assert summaries[failing].errors == 2 and summaries[failing].ttft_p50_s is None
    assert summaries[other].errors == 0 and summaries[other].ttft_p50_s is not None
    assert not comparison.ok


async def test_several_targets_run_at_once_with_unique_labels(loopback: LLMServer) -> None:
    fast = profile(loopback, "p", tokens=4, delay=0.01)
    slow = profile(loopback, "p", tokens=4, delay=0.01, first_delay=0.4)
    targets = make_targets([fast, slow])
    comparison = Comparison(targets, PROMPT, modes=["stream"])
    try:
        results = await comparison.run()
    finally:
        for target in targets:
            await target.backend.aclose()
    assert [r.target for r in results] == ["p", "p#2"]
    assert abs(results[0].start_s - results[1].start_s) < 0.05
    sentences = summary_sentences(comparison.summaries())
    assert len(sentences) == 1
    assert sentences[0].startswith("stream: first token soonest from p (")
    assert "p#2" in sentences[0] and "later" in sentences[0]


async def test_cancel_stops_every_generation_and_drops_the_round(
    loopback: LLMServer, wait_request: Callable[..., None]
) -> None:
    targets = make_targets([profile(loopback, tokens=200, delay=0.05, tag="cancel-me")])
    comparison = Comparison(targets, PROMPT, runs=3)
    task = asyncio.create_task(comparison.run())
    try:
        # Both requests reached the server: stop everything.
        await asyncio.to_thread(wait_request, "cancel-me", 2)
        comparison.cancel()
        results = await asyncio.wait_for(task, 5)
    finally:
        await targets[0].backend.aclose()
    assert results == [] and comparison.cancelled
    assert ("loop", "create") in comparison.in_flight
    assert all(gen.state.value == "stopped" for _, _, gen in comparison.active)
    record = next(r for r in loopback.records if r.tag == "cancel-me" and r.body.get("stream"))
    await loopback.wait_disconnect(record)
    assert record.tokens_sent < 200


async def test_task_cancellation_closes_streams(
    loopback: LLMServer, wait_request: Callable[..., None]
) -> None:
    targets = make_targets([profile(loopback, tokens=200, delay=0.05, tag="ctrl-c")])
    comparison = Comparison(targets, PROMPT)
    task = asyncio.create_task(comparison.run())
    try:
        await asyncio.to_thread(wait_request, "ctrl-c", 2)
        task.cancel()  # what asyncio.run does on Ctrl-C
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        await targets[0].backend.aclose()
    assert all(gen.state.value == "stopped" for _, _, gen in comparison.active)
    assert comparison.results == []
    for record in [r for r in loopback.records if r.tag == "ctrl-c"]:
        await loopback.wait_disconnect(record)  # the server saw both requests go away


# -- a backend that is not HTTP, and failures that are not BackendError -----------------


class Broken:
    """A backend whose bug is not a BackendError."""

    name = "broken"

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[Event, None]:
        yield TextDelta("x")
        raise RuntimeError("bug")

    async def create(self, request: GenerationRequest) -> Reply:
        return Reply("x")

    async def aclose(self) -> None:
        pass


async def test_unexpected_backend_failure_is_recorded_not_raised() -> None:
    backend: Backend = Broken()
    target = Target("broken", Profile(name="broken", api="local"), backend)
    comparison = Comparison([target], PROMPT)
    stream, create = await comparison.run()
    assert stream.state == "error" and stream.error_type == "BackendError"
    assert stream.error_message is not None and "RuntimeError: bug" in stream.error_message
    assert create.ok and create.text == "x"


class CutOff:
    """Streams nothing but a reasonless end (what llama-cpp-python's server sends to a
    request it interrupted); ``create`` answers normally."""

    name = "cut off"

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[Event, None]:
        yield Finish(None)

    async def create(self, request: GenerationRequest) -> Reply:
        return Reply("answer", "stop")

    async def aclose(self) -> None:
        pass


async def test_an_empty_reasonless_answer_is_a_failure_not_a_fast_success() -> None:
    backend: Backend = CutOff()
    target = Target("cut", Profile(name="cut", api="local"), backend)
    comparison = Comparison([target], PROMPT)
    stream, create = await comparison.run()
    assert stream.state == "error" and stream.error_type == "EmptyAnswer"
    assert stream.error_message is not None and "--sequential" in stream.error_message
    assert create.ok and stream.text_matched is None
    assert not comparison.ok


# -- summaries and formatting -----------------------------------------------------------


def summary(mode: Mode, ttft: float | None, total: float | None, **kw: int) -> Summary:
    return Summary(
        target="t", mode=mode, runs=1, ok=1, errors=0, ttft_p50_s=ttft, ttft_p90_s=ttft,
        total_p50_s=total, total_p90_s=total, tokens_p50=20, tokens_per_s_p50=20.0,
        unit="tokens", gap_p50_s=None, gap_p99_s=None, texts_matched=kw.get("matched", 0),
        texts_compared=kw.get("compared", 0),
    )  # fmt: skip


def test_compare_sentence_wording() -> None:
    s = compare_sentence(summary("stream", 0.05, 1.04), summary("create", 1.15, 1.0))
    assert s == ("first token 23× sooner when streaming (50 ms vs 1.15 s); total time within 4%")
    s = compare_sentence(
        summary("stream", 0.5, 2.0, matched=2, compared=3), summary("create", 0.25, 1.0)
    )
    assert s == (
        "first token 2.0× later when streaming (500 ms vs 250 ms); "
        "total time 100% longer when streaming; texts differed in 1 of 3 runs"
    )
    assert "nothing to compare" in compare_sentence(
        summary("stream", None, None), summary("create", None, None)
    )


def test_table_is_aligned_plain_text() -> None:
    rows = [
        RunResult("t", "stream", 1, "done", 0.0, 0.05, 1.0, 20, "tokens", 20, 20, 19.0, 0.05,
                  0.06, 60, 1, "stop", None, None, "text", [0.05] * 19),
        RunResult("t", "create", 1, "error", 0.0, None, 0.1, None, None, None, 0, None, None,
                  None, 0, 1, None, "Overloaded", "slow", ""),
    ]  # fmt: skip
    table = format_table(summarize(rows))
    lines = table.splitlines()
    assert lines[0].split() == [
        "target", "mode", "ok/runs", "TTFT", "p50", "ms", "TTFT", "p90", "ms", "total", "p50",
        "ms", "total", "p90", "ms", "tokens", "tok/s", "gap", "p50", "ms", "gap", "p99", "ms",
        "errors",
    ]  # fmt: skip
    assert lines[1].split() == ["t", "stream", "1/1", "50.0", "50.0", "1,000", "1,000", "20",
                                "19.0", "50.0", "50.0", "0"]  # fmt: skip
    assert lines[2].split() == ["t", "create", "0/1"] + ["–"] * 8 + ["1"]
    assert "\x1b" not in table
    # Right-aligned numbers: every row ends at the same column as the header.
    assert len({len(line) for line in lines}) == 1
    assert set(rows[0].as_dict()) == {*CSV_FIELDS, "gaps_s", "text"}


def _run(mode: Mode, tokens: int | None, unit: Unit | None, rate: float | None) -> RunResult:
    return RunResult("t", mode, 1, "done", 0.0, 0.05, 1.0, tokens, unit, None, 1, rate, None,
                     None, 60, 1, "stop", None, None, "text")  # fmt: skip


def test_chunks_say_so_and_an_uncounted_reply_has_no_figure() -> None:
    # A server that reports no usage: the stream counted its chunks, the reply nothing.
    summaries = summarize([_run("stream", 12, "chunks", 11.5), _run("create", None, None, None)])
    stream, create = summaries
    assert (stream.unit, stream.tokens_p50, create.unit, create.tokens_p50) == (
        "chunks", 12, None, None)  # fmt: skip
    assert stream.as_dict()["unit"] == "chunks"
    lines = format_table(summaries).splitlines()
    assert "12 chunks" in lines[1] and "11.5 chunks/s" in lines[1]
    assert lines[2].split()[7:9] == ["–", "–"]  # no count and no rate, not "1"
    assert _run("create", None, None, None).as_dict()["unit"] is None


def test_runs_that_count_different_units_give_no_median() -> None:
    (mixed,) = summarize([_run("stream", 12, "chunks", 11.0), _run("stream", 20, "tokens", 19.0)])
    assert (mixed.unit, mixed.tokens_p50, mixed.tokens_per_s_p50) == (None, None, None)
