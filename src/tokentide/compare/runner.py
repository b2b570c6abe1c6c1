"""Run one prompt through targets × modes, N times, and measure honestly.

A *target* is a profile with its backend; a *mode* is ``"stream"`` (the server's
streaming request) or ``"create"`` (its real non-streaming request).  Every run goes
through :class:`~tokentide.generation.Generation`, so the clocks are the ones every other
consumer uses: time to first token is measured to the first *content* token (not the
first SSE frame or a role-only chunk), from the moment the request is sent; for
``create`` it is the time to the whole answer.

Rounds: ``warmup`` rounds first (measured, not counted), then ``runs`` counted rounds.  In
each round every target × mode is started at the same moment (``sequential=False``, the
default: what two users of one server see at once) or one after another
(``sequential=True``: each mode has the server to itself).  A failing run (a 429 on one
side, a timeout, ...) is recorded with its error type and message; it never fails the
other runs.

This module imports neither Textual nor numpy: :func:`percentile` is plain Python.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from tokentide.backends.base import Backend, GenerationRequest
from tokentide.config.model import Profile
from tokentide.generation import Generation, RetryPolicy, State, Unit

__all__ = [
    "CSV_FIELDS",
    "MODES",
    "Comparison",
    "Mode",
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
    "result_from",
    "start_generation",
    "summarize",
    "summary_sentences",
    "target_labels",
]

Mode = Literal["stream", "create"]
MODES: tuple[Mode, ...] = ("stream", "create")
Clock = Callable[[], float]


# -- statistics -------------------------------------------------------------------------


def percentile(values: Iterable[float], q: float) -> float | None:
    """The ``q``-th percentile (0–100) of ``values`` by linear interpolation between the
    closest ranks (numpy's default method); None for no values."""
    if not 0 <= q <= 100 or math.isnan(q):
        raise ValueError(f"percentile must be within 0..100, not {q!r}")
    data = sorted(values)
    if not data:
        return None
    rank = (len(data) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(data) - 1)
    fraction = rank - low
    return data[low] + (data[high] - data[low]) * fraction


def median(values: Iterable[float]) -> float | None:
    return percentile(values, 50)


# -- targets ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    """A profile and the backend built from it, under a unique label."""

    label: str
    profile: Profile
    backend: Backend

    def describe(self) -> dict[str, Any]:
        """What the JSON output says about the target (no keys, no query strings)."""
        url = self.profile.url
        if url:
            parts = urllib.parse.urlsplit(url)
            host = parts.hostname or ""
            if parts.port is not None:
                host = f"{host}:{parts.port}"
            url = urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))
        return {
            "label": self.label,
            "profile": self.profile.name,
            "api": self.profile.api,
            "url": url,
            "model": self.profile.model,
            "backend": self.backend.name,
        }


def make_targets(
    profiles: Sequence[Profile], factory: Callable[[Profile], Backend] | None = None
) -> list[Target]:
    """Build each profile's backend (``factory`` defaults to
    :func:`~tokentide.backends.registry.create_backend`).  Labels are the profile names,
    see :func:`target_labels`.  Raises what the factory raises."""
    if factory is None:
        from tokentide.backends.registry import create_backend

        factory = create_backend
    targets: list[Target] = []
    try:
        for label, profile in zip(target_labels(profiles), profiles, strict=True):
            targets.append(Target(label, profile, factory(profile)))
    except BaseException:
        for target in targets:
            _close_soon(target.backend)
        raise
    return targets


AD_HOC = "command line"
"""The name :func:`~tokentide.config.load.profile_from_flags` gives an ad-hoc profile."""


def _label(profile: Profile) -> str:
    """A profile's name; for an ad-hoc one, its model, else its host, else its api."""
    if profile.name != AD_HOC:
        return profile.name
    if profile.model:
        return profile.model
    if profile.url:
        host = urllib.parse.urlsplit(profile.url).netloc.rpartition("@")[2]
        if host:
            return host
    return profile.api


def target_labels(profiles: Sequence[Profile]) -> list[str]:
    """Unique labels: profile names (an ad-hoc profile: model, host or api), with ``#2``,
    ``#3`` … added to repeats."""
    labels = []
    seen: dict[str, int] = {}
    for profile in profiles:
        name = _label(profile)
        seen[name] = seen.get(name, 0) + 1
        labels.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return labels


def _close_soon(backend: Backend) -> None:
    """Close a backend from synchronous code (best effort)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        with contextlib.suppress(Exception):
            asyncio.run(backend.aclose())
    else:
        task = loop.create_task(backend.aclose())
        _PENDING.add(task)
        task.add_done_callback(_PENDING.discard)


_PENDING: set[asyncio.Task[None]] = set()


async def close_targets(targets: Iterable[Target]) -> None:
    """Close every distinct backend once."""
    seen: set[int] = set()
    for target in targets:
        if id(target.backend) not in seen:
            seen.add(id(target.backend))
            with contextlib.suppress(Exception):
                await target.backend.aclose()


def build_request(profile: Profile, prompt: str) -> GenerationRequest:
    """The request ``tide ask`` would send for ``prompt`` with this profile."""
    return GenerationRequest.from_prompt(
        prompt,
        system=profile.system,
        model=profile.model,
        max_tokens=profile.max_tokens,
        temperature=profile.temperature,
        seed=profile.seed,
        top_p=profile.top_p,
    )


def new_generation(
    target: Target, mode: Mode, prompt: str, *, clock: Clock = time.perf_counter
) -> Generation:
    """A generation of ``prompt`` on ``target`` in ``mode``, not started yet."""
    profile = target.profile
    return Generation(
        target.backend,
        build_request(profile, prompt),
        mode=mode,
        deadlines=profile.deadlines,
        retry=RetryPolicy(max_retries=profile.max_retries),
        clock=clock,
    )


def start_generation(
    target: Target, mode: Mode, prompt: str, *, clock: Clock = time.perf_counter
) -> Generation:
    """Start one generation of ``prompt`` on ``target`` in ``mode`` (the clock starts now)."""
    return new_generation(target, mode, prompt, clock=clock).start()


# -- one run ----------------------------------------------------------------------------

CSV_FIELDS: tuple[str, ...] = (
    "target",
    "mode",
    "run",
    "state",
    "start_s",
    "ttft_s",
    "total_s",
    "tokens",
    "unit",
    "usage_tokens",
    "events",
    "tokens_per_s",
    "gap_p50_s",
    "gap_p99_s",
    "chars",
    "attempts",
    "finish_reason",
    "text_matched",
    "error_type",
    "error_message",
)
"""The per-run columns of ``--csv`` (``--json`` has these plus ``gaps_s`` and ``text``)."""


@dataclass(slots=True)
class RunResult:
    """The figures of one generation."""

    target: str
    mode: Mode
    run: int
    """1-based index among the counted runs (warm-up runs count from -K to -1)."""
    state: str
    start_s: float
    """When the request was sent, in seconds from the start of the comparison."""
    ttft_s: float | None
    """Time to the first content token from sending the request; for ``create``, the
    time to the whole answer."""
    total_s: float | None
    tokens: int | None
    """The count in ``unit``: the server's completion tokens when it reported them, else
    content events; None for a non-streamed answer nobody counted."""
    unit: Unit | None
    """``tokens`` or ``chunks`` (what ``tokens`` and ``tokens_per_s`` count)."""
    usage_tokens: int | None
    events: int
    """Content events received (one per streamed token on most servers; 1 for create)."""
    tokens_per_s: float | None
    gap_p50_s: float | None
    gap_p99_s: float | None
    chars: int
    attempts: int
    finish_reason: str | None
    error_type: str | None
    error_message: str | None
    text: str
    gaps_s: list[float] = field(default_factory=list)
    text_matched: bool | None = None
    """Whether this run's text equals the other mode's text in the same round (None when
    there is no other mode or either run failed)."""

    @property
    def ok(self) -> bool:
        return self.state == State.DONE.value

    def as_dict(self, *, text: bool = True) -> dict[str, Any]:
        row: dict[str, Any] = {name: getattr(self, name) for name in CSV_FIELDS}
        row["gaps_s"] = list(self.gaps_s)
        if text:
            row["text"] = self.text
        return row


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
        state, error_type = State.ERROR.value, "EmptyAnswer"
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


def mark_matches(results: Sequence[RunResult]) -> None:
    """Set ``text_matched`` on the stream/create pairs of one round."""
    by_target: dict[str, dict[str, RunResult]] = {}
    for result in results:
        by_target.setdefault(result.target, {})[result.mode] = result
    for pair in by_target.values():
        stream, create = pair.get("stream"), pair.get("create")
        if stream is not None and create is not None and stream.ok and create.ok:
            stream.text_matched = create.text_matched = stream.text == create.text


# -- summaries --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Summary:
    """One target × mode over the counted runs (timings of successful runs only)."""

    target: str
    mode: Mode
    runs: int
    ok: int
    errors: int
    ttft_p50_s: float | None
    ttft_p90_s: float | None
    total_p50_s: float | None
    total_p90_s: float | None
    tokens_p50: float | None
    tokens_per_s_p50: float | None
    unit: Unit | None
    """What ``tokens_p50`` and ``tokens_per_s_p50`` count (None: no run was counted, or
    the runs counted different things, so no figure is given)."""
    gap_p50_s: float | None
    gap_p99_s: float | None
    """Over every inter-token gap of every successful run, pooled."""
    texts_matched: int
    texts_compared: int

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


def _values(results: Iterable[RunResult], name: str) -> list[float]:
    return [v for r in results if (v := getattr(r, name)) is not None]


def summarize(results: Iterable[RunResult]) -> list[Summary]:
    """One :class:`Summary` per target × mode, in order of first appearance."""
    groups: dict[tuple[str, Mode], list[RunResult]] = {}
    for result in results:
        groups.setdefault((result.target, result.mode), []).append(result)
    summaries = []
    for (target, mode), group in groups.items():
        good = [r for r in group if r.ok]
        gaps = [gap for r in good for gap in r.gaps_s]
        compared = [r for r in group if r.text_matched is not None]
        counted = [r for r in good if r.tokens is not None]
        units = {r.unit for r in counted}
        unit = units.pop() if len(units) == 1 else None
        counted = counted if unit is not None else []
        summaries.append(
            Summary(
                target=target,
                mode=mode,
                runs=len(group),
                ok=len(good),
                errors=len(group) - len(good),
                ttft_p50_s=median(_values(good, "ttft_s")),
                ttft_p90_s=percentile(_values(good, "ttft_s"), 90),
                total_p50_s=median(_values(good, "total_s")),
                total_p90_s=percentile(_values(good, "total_s"), 90),
                tokens_p50=median(_values(counted, "tokens")),
                tokens_per_s_p50=median(_values(counted, "tokens_per_s")),
                unit=unit,
                gap_p50_s=percentile(gaps, 50),
                gap_p99_s=percentile(gaps, 99),
                texts_matched=sum(1 for r in compared if r.text_matched),
                texts_compared=len(compared),
            )
        )
    return summaries


def format_ratio(ratio: float) -> str:
    """``23×``, ``2.4×``, ``1.05×``."""
    if ratio >= 10:
        return f"{ratio:,.0f}×"
    if ratio >= 1.995:
        return f"{ratio:.1f}×"
    return f"{ratio:.2f}×"


def format_ms(seconds: float | None) -> str:
    """Milliseconds for a table: ``52.3``, ``1,004``; ``–`` when unknown."""
    if seconds is None:
        return "–"
    ms = seconds * 1000
    return f"{ms:,.0f}" if ms >= 100 else f"{ms:.1f}"


def _seconds(value: float) -> str:
    return f"{value * 1000:,.0f} ms" if value < 1 else f"{value:,.2f} s"


def compare_sentence(stream: Summary, create: Summary) -> str:
    """``first token 23× sooner when streaming (52 ms vs 1.20 s); total time within 4%``."""
    parts: list[str] = []
    s_ttft, c_ttft = stream.ttft_p50_s, create.ttft_p50_s
    if s_ttft is not None and c_ttft is not None and s_ttft > 0 and c_ttft > 0:
        ratio = c_ttft / s_ttft
        figures = f"({_seconds(s_ttft)} vs {_seconds(c_ttft)})"
        if ratio >= 1:
            parts.append(f"first token {format_ratio(ratio)} sooner when streaming {figures}")
        else:
            parts.append(f"first token {format_ratio(1 / ratio)} later when streaming {figures}")
    s_total, c_total = stream.total_p50_s, create.total_p50_s
    if s_total is not None and c_total is not None and c_total > 0:
        diff = (s_total - c_total) / c_total
        if abs(diff) < 0.1:
            parts.append(f"total time within {max(1, round(abs(diff) * 100))}%")
        else:
            word = "longer" if diff > 0 else "shorter"
            parts.append(f"total time {abs(diff) * 100:.0f}% {word} when streaming")
    if stream.texts_compared:
        if stream.texts_matched == stream.texts_compared:
            parts.append("same text in both modes")
        else:
            parts.append(
                f"texts differed in {stream.texts_compared - stream.texts_matched} "
                f"of {stream.texts_compared} runs"
            )
    if not parts:
        return "no successful run in one of the modes: nothing to compare"
    return "; ".join(parts)


def summary_sentences(summaries: Sequence[Summary]) -> list[str]:
    """One sentence per target that ran both modes, and one per mode across targets."""
    sentences: list[str] = []
    by_key = {(s.target, s.mode): s for s in summaries}
    targets = list(dict.fromkeys(s.target for s in summaries))
    for target in targets:
        stream, create = by_key.get((target, "stream")), by_key.get((target, "create"))
        if stream is not None and create is not None:
            sentences.append(f"{target}: {compare_sentence(stream, create)}.")
    if len(targets) > 1:
        for mode in MODES:
            timed = [
                (s.ttft_p50_s, s.target)
                for s in summaries
                if s.mode == mode and s.ttft_p50_s is not None and s.ttft_p50_s > 0
            ]
            if len(timed) < 2:
                continue
            timed.sort()
            best, best_name = timed[0]
            others = ", ".join(f"{name} {format_ratio(t / best)} later" for t, name in timed[1:])
            what = "first token" if mode == "stream" else "whole answer"
            sentences.append(
                f"{mode}: {what} soonest from {best_name} ({_seconds(best)}); {others}."
            )
    return sentences


def _unit_suffix(summary: Summary, per: str) -> str:
    """`` chunks`` / `` chunks/s`` after a figure that counts chunks (tokens: nothing)."""
    return f" chunks{per}" if summary.unit == "chunks" else ""


def format_table(summaries: Sequence[Summary]) -> str:
    """The summary as plain, aligned text (no colour), one row per target × mode; a
    count of chunks says so in its cell (the columns are headed in tokens)."""
    header = (
        "target", "mode", "ok/runs", "TTFT p50 ms", "TTFT p90 ms", "total p50 ms",
        "total p90 ms", "tokens", "tok/s", "gap p50 ms", "gap p99 ms", "errors",
    )  # fmt: skip
    rows = [header]
    for s in summaries:
        rows.append(
            (
                s.target,
                s.mode,
                f"{s.ok}/{s.runs}",
                format_ms(s.ttft_p50_s),
                format_ms(s.ttft_p90_s),
                format_ms(s.total_p50_s),
                format_ms(s.total_p90_s),
                "–" if s.tokens_p50 is None else f"{s.tokens_p50:,.0f}{_unit_suffix(s, '')}",
                "–"
                if s.tokens_per_s_p50 is None
                else f"{s.tokens_per_s_p50:,.1f}{_unit_suffix(s, '/s')}",
                format_ms(s.gap_p50_s),
                format_ms(s.gap_p99_s),
                str(s.errors),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = []
    for row in rows:
        cells = [
            cell.ljust(width) if i < 2 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


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
        self.cancelled = False
        self.origin = 0.0
        """When :meth:`run` started, on ``clock``."""
        self.in_flight: list[tuple[str, Mode]] = []
        """Which target × mode were still running when the comparison was stopped."""

    @property
    def ok(self) -> bool:
        return bool(self.results) and all(r.ok for r in self.results)

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
                round_results = await self._round(index + 1 if index >= 0 else index)
                if round_results is None:
                    break
                mark_matches(round_results)
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

    async def _settle(self) -> None:
        """Wait (shielded) until every generation in flight has closed its stream."""
        pending = [gen for _, _, gen in self.active if not gen.state.finished]
        if pending:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(asyncio.gather(*(gen.wait() for gen in pending)))

    def _stopped(self) -> bool:
        return self.cancelled

    async def _round(self, run: int) -> list[RunResult] | None:
        pairs = [(target, mode) for target in self.targets for mode in self.modes]
        results: list[RunResult] = []
        if self.sequential:
            for target, mode in pairs:
                if self._stopped():
                    return None
                gens = await self._start_and_wait([(target, mode)])
                if self._stopped():
                    return None
                results.append(result_from(gens[0], target.label, mode, run, origin=self.origin))
        else:
            gens = await self._start_and_wait(pairs)
            if self._stopped():
                return None
            for (target, mode), gen in zip(pairs, gens, strict=True):
                results.append(result_from(gen, target.label, mode, run, origin=self.origin))
        return results

    async def _start_and_wait(self, pairs: Sequence[tuple[Target, Mode]]) -> list[Generation]:
        gens = [start_generation(t, m, self.prompt, clock=self.clock) for t, m in pairs]
        self.active = [(t.label, m, gen) for (t, m), gen in zip(pairs, gens, strict=True)]
        await asyncio.gather(*(gen.wait() for gen in gens))
        return gens

    def summaries(self) -> list[Summary]:
        return summarize(self.results)

    def to_json(self) -> dict[str, Any]:
        """Everything: configuration, every counted run (and the warm-ups), summaries."""
        summaries = self.summaries()
        return {
            "prompt": self.prompt,
            "modes": list(self.modes),
            "runs": self.runs,
            "warmup": self.warmup,
            "sequential": self.sequential,
            "completed": not self.cancelled and len(self.results) == self._expected(),
            "targets": [target.describe() for target in self.targets],
            "results": [result.as_dict() for result in self.results],
            "warmup_results": [result.as_dict() for result in self.warmup_results],
            "summaries": [summary.as_dict() for summary in summaries],
            "sentences": summary_sentences(summaries),
        }

    def _expected(self) -> int:
        return self.runs * len(self.targets) * len(self.modes)


def result_rows(results: Iterable[RunResult]) -> list[Mapping[str, Any]]:
    """``--csv`` rows."""
    return [{name: getattr(r, name) for name in CSV_FIELDS} for r in results]
