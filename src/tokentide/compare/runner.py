"""Run one prompt through targets × modes, N times, and measure honestly.

A *target* is a profile with its backend; a *mode* is ``"stream"`` (the server's
streaming request) or ``"create"`` (its real non-streaming request).  Every run goes
through :class:`~tokentide.generation.Generation`, so the clocks are the ones every other
consumer uses: time to first token is measured to the first *content* token (not the
first SSE frame or a role-only chunk), from the moment the request is sent; for
``create`` it is the time to the whole answer.

A *round* is every target × mode once.  :func:`prepare_round` builds its generations
(one :class:`Lane` each: a pane on the comparison screen) without sending anything;
:func:`run_round` sends them, at the same moment (``sequential=False``, the default: what
two users of one server see at once) or one after another (``sequential=True``: each mode
has the server to itself), calls its hooks as lanes start, receive events and finish, and
returns the round's :class:`RunResult` rows.  A failing run (a 429 on one side, a
timeout, ...) is recorded with its error type and message; it never fails the other runs.

:class:`Comparison` is ``warmup`` rounds (measured, not counted) and then ``runs`` counted
rounds: the headless ``tide compare``.  The comparison screen runs one round with hooks
that render its panes.  The names of :mod:`~tokentide.compare.stats`, ``.targets``,
``.results`` and ``.report`` are importable from here too.  No Textual, no numpy.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tokentide.backends.events import Event
from tokentide.compare.report import (
    compare_sentence,
    format_ms,
    format_ratio,
    format_table,
    json_report,
    summary_sentences,
)
from tokentide.compare.results import (
    CSV_FIELDS,
    EMPTY_ANSWER,
    MODES,
    Mode,
    RunResult,
    mark_matches,
    result_rows,
)
from tokentide.compare.stats import Summary, median, percentile, summarize
from tokentide.compare.targets import (
    Clock,
    Target,
    build_request,
    close_targets,
    make_targets,
    new_generation,
    start_generation,
    target_labels,
)
from tokentide.errors import BackendError
from tokentide.generation import Generation, State

__all__ = [
    "CSV_FIELDS",
    "MODES",
    "Comparison",
    "Lane",
    "Mode",
    "PreparedRound",
    "RunResult",
    "Summary",
    "Target",
    "build_request",
    "close_targets",
    "compare_sentence",
    "format_ms",
    "format_ratio",
    "format_table",
    "make_targets",
    "mark_matches",
    "median",
    "new_generation",
    "percentile",
    "prepare_round",
    "result_from",
    "result_rows",
    "run_round",
    "start_generation",
    "summarize",
    "summary_sentences",
    "target_labels",
]


# -- one run ----------------------------------------------------------------------------


def result_from(
    gen: Generation, target: str, mode: Mode, run: int, *, origin: float = 0.0
) -> RunResult:
    """Read a finished generation's figures (``origin``: the comparison's start, on the
    generation's clock)."""
    stats = gen.stats
    state = gen.state.value
    error_type = error_message = None
    if gen.error is not None:
        error_type, error_message = type(gen.error).__name__, gen.error.message
    finish_reason = gen.finish.reason if gen.finish is not None else None
    if gen.state is State.DONE and not gen.text and finish_reason is None:
        # A clean end without a single content token and without a finish reason: the
        # server cut the answer off (llama-cpp-python's server does this to a running
        # request when another arrives, its interrupt_requests setting).  Not a success:
        # it has no time to first token and would flatter the totals.
        state, error_type = State.ERROR.value, EMPTY_ANSWER
        error_message = (
            "the server ended the answer without any content or finish reason "
            "(interrupted by the other request? try --sequential)"
        )
    gaps = list(stats.gaps) if mode == "stream" else []
    return RunResult(
        target=target,
        mode=mode,
        run=run,
        state=state,
        start_s=stats.started - origin,
        ttft_s=stats.ttft,
        total_s=stats.total,
        tokens=stats.count,
        unit=stats.unit,
        usage_tokens=stats.usage_tokens,
        events=stats.tokens,
        tokens_per_s=stats.tokens_per_s,
        gap_p50_s=percentile(gaps, 50),
        gap_p99_s=percentile(gaps, 99),
        chars=stats.chars,
        attempts=stats.attempts,
        finish_reason=finish_reason,
        error_type=error_type,
        error_message=error_message,
        text=gen.text,
        gaps_s=gaps,
    )


# -- one round --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Lane:
    """One target × mode of a round and its generation."""

    target: Target
    mode: Mode
    generation: Generation

    @property
    def label(self) -> str:
        return self.target.label


@dataclass(frozen=True, slots=True)
class PreparedRound:
    """A round's generations, built and not started: every target × mode, targets first."""

    run: int
    """1-based among the counted rounds; warm-up rounds count from -K to -1."""
    lanes: tuple[Lane, ...]

    @property
    def generations(self) -> list[Generation]:
        return [lane.generation for lane in self.lanes]

    @property
    def running(self) -> bool:
        """Some generation has not finished (or not started)."""
        return any(not lane.generation.state.finished for lane in self.lanes)

    def start(self) -> None:
        """Start every generation not started yet, in one go (the clocks start now)."""
        for lane in self.lanes:
            lane.generation.start()

    def cancel(self) -> None:
        """Stop every generation (each closes its stream); returns at once."""
        for lane in self.lanes:
            lane.generation.cancel()

    async def stop(self) -> None:
        """Start what never started (a generation must start to end, as "stopped"),
        cancel everything and wait until every stream is closed."""
        self.start()
        self.cancel()
        for lane in self.lanes:
            await lane.generation.wait()


def prepare_round(
    targets: Sequence[Target],
    modes: Sequence[Mode],
    prompt: str,
    *,
    run: int = 1,
    clock: Clock = time.perf_counter,
) -> PreparedRound:
    """Build the generations of one round of ``prompt``; nothing is sent yet."""
    lanes = tuple(
        Lane(target, mode, new_generation(target, mode, prompt, clock=clock))
        for target in targets
        for mode in dict.fromkeys(modes)
    )
    return PreparedRound(run, lanes)


OnLane = Callable[[Lane], object]
OnBatch = Callable[[Lane, list[Event]], object]
OnFinish = Callable[[Lane, RunResult], Awaitable[None] | None]


async def run_round(
    prepared: PreparedRound,
    *,
    sequential: bool = False,
    origin: float = 0.0,
    stopped: Callable[[], bool] | None = None,
    on_start: OnLane | None = None,
    on_batch: OnBatch | None = None,
    on_finish: OnFinish | None = None,
) -> list[RunResult] | None:
    """Send the round's requests, at once or (``sequential``) one after another.

    Hooks: ``on_start(lane)`` right after a lane's request is sent; ``on_batch(lane,
    events)`` for every batch of its events (only when given: else nothing reads them);
    ``on_finish(lane, result)`` (awaited when it returns an awaitable) when it has ended,
    stopped or not.  ``origin``: the comparison's start on the generations' clock.

    Returns the round's results with ``text_matched`` set, in lane order; None when
    ``stopped()`` says the round was stopped (no lane after the stop is started).
    """
    is_stopped = stopped if stopped is not None else (lambda: False)

    async def follow(lane: Lane) -> RunResult:
        gen = lane.generation
        if on_batch is not None:
            # The error, if any, is the generation's: its result reports it.
            with contextlib.suppress(BackendError):
                async for batch in gen.batches():
                    on_batch(lane, batch)
        await gen.wait()
        result = result_from(gen, lane.label, lane.mode, prepared.run, origin=origin)
        if on_finish is not None:
            pending = on_finish(lane, result)
            if inspect.isawaitable(pending):
                await pending
        return result

    def launch(lanes: Sequence[Lane]) -> None:
        for lane in lanes:
            lane.generation.start()
        if on_start is not None:
            for lane in lanes:
                on_start(lane)

    results: list[RunResult] = []
    if sequential:
        for lane in prepared.lanes:
            if is_stopped():
                return None
            launch([lane])
            results.append(await follow(lane))
    else:
        launch(prepared.lanes)
        results = list(await asyncio.gather(*(follow(lane) for lane in prepared.lanes)))
    if is_stopped():
        return None
    mark_matches(results)
    return results


# -- the comparison ---------------------------------------------------------------------


class Comparison:
    """``warmup`` + ``runs`` rounds of every target × mode.

    :meth:`run` returns the counted results (also in :attr:`results` as they complete, so a
    caller interrupted by Ctrl-C still has the finished rounds).  :meth:`cancel` stops
    every generation in flight; the interrupted round is not recorded.
    """

    def __init__(
        self,
        targets: Sequence[Target],
        prompt: str,
        *,
        modes: Sequence[Mode] = MODES,
        runs: int = 1,
        warmup: int = 0,
        sequential: bool = False,
        clock: Clock = time.perf_counter,
        on_result: Callable[[RunResult], None] | None = None,
    ) -> None:
        if runs < 1:
            raise ValueError("runs must be at least 1")
        if warmup < 0:
            raise ValueError("warmup must not be negative")
        if not modes:
            raise ValueError("at least one mode")
        self.targets = list(targets)
        self.prompt = prompt
        self.modes: tuple[Mode, ...] = tuple(dict.fromkeys(modes))
        self.runs = runs
        self.warmup = warmup
        self.sequential = sequential
        self.clock = clock
        self.on_result = on_result
        self.results: list[RunResult] = []
        self.warmup_results: list[RunResult] = []
        self.active: list[tuple[str, Mode, Generation]] = []
        """The current round's target label, mode and generation of each sent request."""
        self.cancelled = False
        self.origin = 0.0
        """When :meth:`run` started, on ``clock``."""
        self.in_flight: list[tuple[str, Mode]] = []
        """Which target × mode were still running when the comparison was stopped."""

    @property
    def ok(self) -> bool:
        return bool(self.results) and all(r.ok for r in self.results)

    @property
    def completed(self) -> bool:
        """Every counted run was recorded and nothing was cancelled."""
        expected = self.runs * len(self.targets) * len(self.modes)
        return not self.cancelled and len(self.results) == expected

    def cancel(self) -> None:
        if not self.cancelled:
            self.in_flight = [
                (label, mode) for label, mode, gen in self.active if not gen.state.finished
            ]
        self.cancelled = True
        for _, _, gen in self.active:
            gen.cancel()

    async def run(self) -> list[RunResult]:
        self.origin = self.clock()
        try:
            for index in range(-self.warmup, self.runs):
                if self.cancelled:
                    break
                prepared = prepare_round(
                    self.targets,
                    self.modes,
                    self.prompt,
                    run=index + 1 if index >= 0 else index,
                    clock=self.clock,
                )
                self.active = []
                round_results = await run_round(
                    prepared,
                    sequential=self.sequential,
                    origin=self.origin,
                    stopped=lambda: self.cancelled,
                    on_start=self._sent,
                )
                if round_results is None:
                    break
                if index < 0:
                    self.warmup_results.extend(round_results)
                else:
                    self.results.extend(round_results)
                    if self.on_result is not None:
                        for result in round_results:
                            self.on_result(result)
        except asyncio.CancelledError:
            self.cancel()
            await self._settle()
            raise
        return self.results

    def _sent(self, lane: Lane) -> None:
        self.active.append((lane.label, lane.mode, lane.generation))

    async def _settle(self) -> None:
        """Wait (shielded) until every generation in flight has closed its stream."""
        pending = [gen for _, _, gen in self.active if not gen.state.finished]
        if pending:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(asyncio.gather(*(gen.wait() for gen in pending)))

    def summaries(self) -> list[Summary]:
        return summarize(self.results)

    def to_json(self) -> dict[str, Any]:
        """Everything: configuration, every counted run (and the warm-ups), summaries."""
        return json_report(self)
