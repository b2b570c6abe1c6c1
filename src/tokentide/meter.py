"""What a conversation has used: prompt tokens, context against the model's window, cost.

Figures come only from what the server reported (``usage``) and what the profile says
(``price_in``/``price_out`` per million tokens, ``context_window``); nothing is
estimated from text length.  Where a figure is unknown it is left out, never guessed.

A :class:`Meter` is fed one answer at a time (:meth:`Meter.add`); its :meth:`line` is the
status line's tail: ``prompt 1,234 · context 1,291/8,192 (16%) · cost 0.000345 (chat
0.0123)``.  The same per-answer figures go into the saved stats
(:meth:`AnswerUse.as_dict`), so a reopened conversation adds up the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tokentide.backends.events import Usage
from tokentide.config.model import Profile

__all__ = ["AnswerUse", "Meter", "money"]


def money(amount: float) -> str:
    """``0.000345``, ``0.0123``, ``12.5``: no currency (the profile's prices set it)."""
    if amount == 0:
        return "0"
    text = f"{amount:,.6f}".rstrip("0").rstrip(".")
    return text if text not in ("0", "-0") else f"{amount:.1e}"


@dataclass(frozen=True, slots=True)
class AnswerUse:
    """One answer's use of the model, as far as it is known."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost: float | None = None
    """In the profile's currency; None without prices or without the counts they need."""

    @classmethod
    def of(cls, usage: Usage | None, profile: Profile) -> AnswerUse:
        if usage is None:
            return cls()
        prompt, completion = usage.prompt_tokens, usage.completion_tokens
        cost: float | None = None
        if profile.price_in is not None or profile.price_out is not None:
            needed = [
                (count, price)
                for count, price in ((prompt, profile.price_in), (completion, profile.price_out))
                if price is not None
            ]
            if needed and all(count is not None for count, _ in needed):
                cost = sum((count or 0) * price for count, price in needed) / 1_000_000
        return cls(prompt, completion, cost)

    @classmethod
    def from_saved(cls, stats: Mapping[str, Any]) -> AnswerUse:
        """From the stats saved with an answer (older answers have none of these)."""

        def number(key: str) -> int | None:
            value = stats.get(key)
            return value if isinstance(value, int) and not isinstance(value, bool) else None

        cost = stats.get("cost")
        completion = number("tokens") if stats.get("unit", "tokens") == "tokens" else None
        return cls(
            number("prompt_tokens"),
            completion,
            float(cost) if isinstance(cost, int | float) and not isinstance(cost, bool) else None,
        )

    @property
    def context_used(self) -> int | None:
        """Tokens the conversation fills after this answer (prompt plus answer)."""
        if self.prompt_tokens is None:
            return None
        return self.prompt_tokens + (self.completion_tokens or 0)

    def as_dict(self) -> dict[str, Any]:
        return {"prompt_tokens": self.prompt_tokens, "cost": self.cost}


@dataclass(slots=True)
class Meter:
    """The running totals of one conversation."""

    last: AnswerUse = AnswerUse()
    total_cost: float | None = None
    answers_costed: int = 0

    def add(self, use: AnswerUse) -> None:
        self.last = use
        if use.cost is not None:
            self.total_cost = (self.total_cost or 0.0) + use.cost
            self.answers_costed += 1

    def reset(self) -> None:
        self.last = AnswerUse()
        self.total_cost = None
        self.answers_costed = 0

    def line(self, window: int | None) -> str:
        """The known figures of the last answer and the conversation, ``·``-joined."""
        parts: list[str] = []
        last = self.last
        if last.prompt_tokens is not None:
            parts.append(f"prompt {last.prompt_tokens:,}")
        used = last.context_used
        if used is not None and window:
            parts.append(f"context {used:,}/{window:,} ({used / window:.0%})")
        elif used is not None:
            parts.append(f"context {used:,}")
        if last.cost is not None:
            cost = f"cost {money(last.cost)}"
            if self.total_cost is not None and self.answers_costed > 1:
                cost += f" (chat {money(self.total_cost)})"
            parts.append(cost)
        return " · ".join(parts)
