"""Statistics: percentiles in plain Python (no numpy) and the summary of a target × mode
over its counted runs."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tokentide.compare.results import Mode, RunResult
from tokentide.generation import Unit

__all__ = ["Summary", "median", "percentile", "summarize"]


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
