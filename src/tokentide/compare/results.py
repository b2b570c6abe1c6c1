"""The figures of one run (:class:`RunResult`) and its row: one definition, read by the
JSON document, the CSV file and the comparison screen alike.

A run's figures are read from its finished generation by
:func:`tokentide.compare.runner.result_from`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from tokentide.generation import State, Unit

__all__ = [
    "CSV_FIELDS",
    "EMPTY_ANSWER",
    "MODES",
    "Mode",
    "RunResult",
    "mark_matches",
    "result_rows",
]

Mode = Literal["stream", "create"]
MODES: tuple[Mode, ...] = ("stream", "create")

EMPTY_ANSWER = "EmptyAnswer"
"""The error type of a run that ended "cleanly" without content or finish reason."""

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

    @property
    def empty(self) -> bool:
        """The server ended the answer without content or finish reason (a failure)."""
        return self.error_type == EMPTY_ANSWER

    def row(self) -> dict[str, Any]:
        """The run's row: the ``--csv`` columns, in order."""
        return {name: getattr(self, name) for name in CSV_FIELDS}

    def as_dict(self, *, text: bool = True) -> dict[str, Any]:
        """The row, the gaps and (unless ``text=False``) the answer: ``--json``'s run."""
        row = self.row()
        row["gaps_s"] = list(self.gaps_s)
        if text:
            row["text"] = self.text
        return row


def mark_matches(results: Sequence[RunResult]) -> None:
    """Set ``text_matched`` on the stream/create pairs of one round."""
    by_target: dict[str, dict[str, RunResult]] = {}
    for result in results:
        by_target.setdefault(result.target, {})[result.mode] = result
    for pair in by_target.values():
        stream, create = pair.get("stream"), pair.get("create")
        if stream is not None and create is not None and stream.ok and create.ok:
            stream.text_matched = create.text_matched = stream.text == create.text


def result_rows(results: Iterable[RunResult]) -> list[dict[str, Any]]:
    """One row per run (:meth:`RunResult.row`): what ``--csv`` writes."""
    return [result.row() for result in results]
