"""Reports of a comparison: the summary sentences and table, the text, JSON and CSV
documents of the headless command, and the texts the comparison screen shows (its live
figures, the round's summary, the gap charts).  Everything here is plain text: no colour,
no Textual; text from a server or a config file passes the terminal sanitiser where it
leaves as a document.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from tokentide.compare.results import CSV_FIELDS, MODES, Mode, RunResult, result_rows
from tokentide.compare.stats import Summary, summarize
from tokentide.compare.targets import Target
from tokentide.generation import Generation
from tokentide.sanitize import sanitize

__all__ = [
    "MODE_NAMES",
    "GapChart",
    "LiveFigures",
    "Record",
    "compare_sentence",
    "csv_report",
    "format_ms",
    "format_ratio",
    "format_seconds",
    "format_table",
    "gap_charts",
    "json_report",
    "live_figures",
    "round_summary",
    "summary_sentences",
    "text_report",
]

MODE_NAMES: dict[Mode, str] = {"stream": "streaming", "create": "non-streaming"}


class Record(Protocol):
    """What a report reads from a comparison (:class:`~tokentide.compare.runner.Comparison`
    is one)."""

    @property
    def prompt(self) -> str: ...
    @property
    def modes(self) -> Sequence[Mode]: ...
    @property
    def runs(self) -> int: ...
    @property
    def warmup(self) -> int: ...
    @property
    def sequential(self) -> bool: ...
    @property
    def completed(self) -> bool: ...
    @property
    def targets(self) -> Sequence[Target]: ...
    @property
    def results(self) -> Sequence[RunResult]: ...
    @property
    def warmup_results(self) -> Sequence[RunResult]: ...


# -- figures and sentences --------------------------------------------------------------


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


def format_seconds(value: float) -> str:
    """``52 ms`` below a second, else ``1.20 s``."""
    return f"{value * 1000:,.0f} ms" if value < 1 else f"{value:,.2f} s"


def compare_sentence(stream: Summary, create: Summary) -> str:
    """``first token 23× sooner when streaming (52 ms vs 1.20 s); total time within 4%``."""
    parts: list[str] = []
    s_ttft, c_ttft = stream.ttft_p50_s, create.ttft_p50_s
    if s_ttft is not None and c_ttft is not None and s_ttft > 0 and c_ttft > 0:
        ratio = c_ttft / s_ttft
        figures = f"({format_seconds(s_ttft)} vs {format_seconds(c_ttft)})"
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
                f"{mode}: {what} soonest from {best_name} ({format_seconds(best)}); {others}."
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


# -- the headless command's documents ---------------------------------------------------


def json_report(record: Record, *, interrupted: bool | None = None) -> dict[str, Any]:
    """Everything: configuration, every counted run (and the warm-ups), summaries;
    ``interrupted`` is added when given."""
    summaries = summarize(record.results)
    document: dict[str, Any] = {
        "prompt": record.prompt,
        "modes": list(record.modes),
        "runs": record.runs,
        "warmup": record.warmup,
        "sequential": record.sequential,
        "completed": record.completed,
        "targets": [target.describe() for target in record.targets],
        "results": [result.as_dict() for result in record.results],
        "warmup_results": [result.as_dict() for result in record.warmup_results],
        "summaries": [summary.as_dict() for summary in summaries],
        "sentences": summary_sentences(summaries),
    }
    if interrupted is not None:
        document["interrupted"] = interrupted
    return document


def csv_report(results: Iterable[RunResult]) -> str:
    """A header and one row per run (:func:`~tokentide.compare.results.result_rows`);
    unknown figures are empty cells, text is sanitised."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in result_rows(results):
        writer.writerow({k: _cell(v) for k, v in row.items()})
    return buffer.getvalue()


def _cell(value: object) -> object:
    return "" if value is None else sanitize(value) if isinstance(value, str) else value


def text_report(record: Record, *, interrupted: bool = False) -> str:
    """What the command prints in a pipe: how it ran, the table, the sentences, every
    failed run and what each target is (sanitised, no trailing newline)."""
    lines = [_describe_run(record, interrupted=interrupted), ""]
    summaries = summarize(record.results)
    if summaries:
        lines.append(format_table(summaries))
    else:
        lines.append("(no completed run)")
    sentences = summary_sentences(summaries)
    if sentences:
        lines.append("")
        lines.extend(sentences)
    failed = [r for r in record.results if not r.ok]
    if failed:
        lines.append("")
        lines.append("errors:")
        for r in failed:
            lines.append(f"  {r.target} {r.mode} run {r.run}: {r.error_type}: {r.error_message}")
    lines.append("")
    for target in record.targets:
        lines.append(f"{target.label}: {target.backend.name}")
    return sanitize("\n".join(lines))


def _describe_run(record: Record, *, interrupted: bool) -> str:
    runs = record.runs
    text = f"{runs} run{'s' if runs != 1 else ''} per target × mode"
    if record.warmup:
        text += f" after {record.warmup} warm-up"
    text += (
        ", one request at a time"
        if record.sequential
        else ", all requests of a run at the same moment"
    )
    if interrupted:
        text += f" (stopped after {len({r.run for r in record.results})} complete runs)"
    return text


# -- what the comparison screen shows ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class LiveFigures:
    """A generation's figures right now."""

    elapsed_s: float
    line: str
    """``0.62 s · TTFT 52 ms · 12 tokens · 19.4 tok/s`` (for create: ``answer …``)."""


def live_figures(generation: Generation, now: float) -> LiveFigures:
    """Read ``generation``'s stats at ``now`` (its clock): nothing is computed per token."""
    stats = generation.stats
    finished = generation.state.finished
    elapsed = (stats.ended if stats.ended is not None else now) - stats.started
    ttft = "–" if stats.ttft is None else format_seconds(stats.ttft)
    parts = [
        f"{elapsed:.2f} s",
        f"TTFT {ttft}" if generation.mode == "stream" else f"answer {ttft}",
        # tokens where they are tokens, chunks where not, nothing where nobody counted
        stats.count_label() or ("not counted" if finished else "–"),
        stats.rate_label() or "– /s",
    ]
    return LiveFigures(elapsed, " · ".join(parts))


def round_summary(results: Sequence[RunResult] | None) -> str:
    """The sentences under the panes after one round (None: the round was stopped)."""
    if results is None:
        return "stopped: no summary for an interrupted comparison"
    sentences = summary_sentences(summarize(results))
    errors = [r for r in results if not r.ok]
    if errors:
        sentences.append("failed: " + ", ".join(f"{r.target} {MODE_NAMES[r.mode]}" for r in errors))
    return sanitize("\n".join(sentences) or "nothing to compare")


@dataclass(frozen=True, slots=True)
class GapChart:
    """A streamed run's inter-token gaps: a caption and the bars (milliseconds)."""

    caption: str
    values_ms: tuple[float, ...]


def gap_charts(results: Iterable[RunResult]) -> dict[str, GapChart]:
    """The gap chart of each target's streamed run in one round, by target label."""
    charts: dict[str, GapChart] = {}
    for r in results:
        if r.mode != "stream" or r.target in charts:
            continue
        longest = format_ms(max(r.gaps_s) if r.gaps_s else None)
        caption = (
            f"{r.target} gaps ms: p50 {format_ms(r.gap_p50_s)}"
            f" · p99 {format_ms(r.gap_p99_s)} · max {longest} "
        )
        charts[r.target] = GapChart(sanitize(caption), tuple(g * 1000 for g in r.gaps_s))
    return charts
