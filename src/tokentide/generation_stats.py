"""The figures of one generation, with an honest unit.

A count is in **tokens** only when it is one: the server reported its completion tokens
(``usage``), the backend declares that each of its content events is one token
(:class:`~tokentide.backends.base.TokenEvents`: the in-process llama.cpp model), or every
content event carried a token id (TGI's per-token stream).  Otherwise the events are
whatever pieces the server chose to send, and they are counted as **chunks**.  A
non-streamed answer with no count from the server has no count at all (and no rate):
one reply is not "1 token".

Views use :meth:`Stats.count_label` and :meth:`Stats.rate_label` (``"57 tokens"``,
``"12.3 chunks/s"``); :meth:`Stats.as_dict` carries ``"unit"`` beside the numbers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Mode", "Stats", "Unit"]

Mode = Literal["stream", "create"]
Unit = Literal["tokens", "chunks"]

_RATE_UNIT = {"tokens": "tok/s", "chunks": "chunks/s"}


@dataclass(slots=True)
class Stats:
    """Timings of one generation, in seconds of ``time.perf_counter``."""

    mode: Mode = "stream"
    started: float = 0.0
    """When the request was sent (the last attempt's start is ``attempt_started``)."""
    attempt_started: float = 0.0
    first_token: float | None = None
    last_token: float | None = None
    ended: float | None = None
    tokens: int = 0
    """Content events received (a non-streamed answer is one, or as many as its per-token
    details)."""
    chars: int = 0
    usage_tokens: int | None = None
    """Completion tokens as the server counted them, when it said."""
    token_events: bool = False
    """Each content event is one real token (the backend says so, or the events are a
    non-streamed answer's per-token details)."""
    id_events: int = 0
    """Content events that carried a token id."""
    attempts: int = 0
    gaps: list[float] = field(default_factory=list)
    """Time between consecutive content events."""

    @property
    def ttft(self) -> float | None:
        """Time to first content token, from sending the request (of the first attempt)."""
        return None if self.first_token is None else self.first_token - self.started

    @property
    def total(self) -> float | None:
        return None if self.ended is None else self.ended - self.started

    @property
    def elapsed(self) -> float:
        return (self.ended if self.ended is not None else time.perf_counter()) - self.started

    @property
    def count(self) -> int | None:
        """The best count there is, in :attr:`unit`: the server's tokens, else the
        content events; None for a non-streamed answer nobody counted."""
        if self.usage_tokens is not None:
            return self.usage_tokens
        if self.mode == "create" and not self.token_events:
            return None
        return self.tokens

    @property
    def unit(self) -> Unit | None:
        """What :attr:`count` counts; None when there is no count."""
        if self.count is None:
            return None
        if self.usage_tokens is not None or self.token_events:
            return "tokens"
        return "tokens" if self.tokens and self.id_events == self.tokens else "chunks"

    @property
    def token_count(self) -> int:
        """:attr:`count`, 0 when there is none.  Kept for views that have not moved to
        :meth:`count_label` yet: it says nothing about the unit."""
        return self.count or 0

    @property
    def tokens_per_s(self) -> float | None:
        """Decode rate in :attr:`unit` per second: the count after the first over the
        time since the first; for a non-streamed answer, the count over the total time.
        None without a count."""
        count = self.count
        if count is None:
            return None
        if self.mode == "create":
            total = self.total
            return count / total if total and count else None
        if self.first_token is None or self.last_token is None or count < 2:
            return None
        span = self.last_token - self.first_token
        return (count - 1) / span if span > 0 else None

    def count_label(self) -> str | None:
        """``"57 tokens"``, ``"1 token"``, ``"1,204 chunks"``; None without a count."""
        count, unit = self.count, self.unit
        if count is None or unit is None:
            return None
        return f"{count:,} {unit if count != 1 else unit[:-1]}"

    def rate_label(self) -> str | None:
        """``"12.3 tok/s"`` or ``"12.3 chunks/s"``; None without a rate."""
        rate, unit = self.tokens_per_s, self.unit
        if rate is None or unit is None:
            return None
        return f"{rate:,.1f} {_RATE_UNIT[unit]}"

    def as_dict(self) -> dict[str, Any]:
        """The figures as JSON-ready values: ``tokens`` is :attr:`count` (None without
        one), in ``unit``; ``events`` the content events; ``tokens_per_s`` the rate in
        ``unit`` per second."""
        return {
            "mode": self.mode,
            "ttft_s": self.ttft,
            "total_s": self.total,
            "tokens": self.count,
            "unit": self.unit,
            "events": self.tokens,
            "chars": self.chars,
            "tokens_per_s": self.tokens_per_s,
            "attempts": self.attempts,
        }
