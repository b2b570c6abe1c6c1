"""The live status line of the answer being generated.

waiting (spinner, seconds since the request) → streaming (tokens, tokens/s, time to
first token) → done (finish reason) / stopped / error; a retry countdown in between.
It reads the :class:`~tokentide.generation.Generation`'s ``state`` and ``stats`` on a
10 Hz timer while an answer is running, so streaming costs it nothing per token.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from rich.text import Text
from textual.timer import Timer
from textual.widgets import Static

from tokentide.backends.events import Retrying
from tokentide.generation import Generation, State, Stats
from tokentide.sanitize import sanitize

__all__ = ["StatusLine", "describe_stats"]

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


def describe_stats(stats: Stats) -> str:
    """``12 tokens · 45.0 tok/s · TTFT 0.31 s · 1.2 s`` (whatever is known; chunks where
    the count is not of tokens, no count where nobody counted)."""
    return _describe(stats.count_label(), stats.rate_label(), stats.ttft, stats.total)


def describe_saved_stats(stats: Mapping[str, float | int | str | None]) -> str | None:
    """The same line from the stats the history saved with an answer (None: none).
    Answers saved before units were recorded counted tokens."""

    def number(key: str) -> float | None:
        value = stats.get(key)
        return float(value) if isinstance(value, int | float) else None

    tokens = stats.get("tokens")
    unit = stats.get("unit") or "tokens"
    if unit not in ("tokens", "chunks"):
        unit = "tokens"
    count = rate = None
    if isinstance(tokens, int):
        count = f"{tokens:,} {unit if tokens != 1 else unit[:-1]}"
        if (value := number("tokens_per_s")) is not None:
            rate = f"{value:,.1f} {'tok/s' if unit == 'tokens' else 'chunks/s'}"
    if count is None and number("total_s") is None:
        return None
    return _describe(count, rate, number("ttft_s"), number("total_s"))


def _describe(count: str | None, rate: str | None, ttft: float | None, total: float | None) -> str:
    parts = [part for part in (count, rate) if part]
    if ttft is not None:
        parts.append(f"TTFT {ttft:.2f} s")
    if total is not None:
        parts.append(f"{total:.1f} s")
    return " · ".join(parts)


class StatusLine(Static):
    """One line under the conversation.  Its height is fixed (one line, ``DEFAULT_CSS``),
    so its 10 Hz updates repaint that line without a layout of the whole screen.  The
    classes ``-active``, ``-error`` and ``-stopped`` say the state, for the app's colours."""

    DEFAULT_CSS = """
    StatusLine {
        height: 1;
        padding: 0 1;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id, markup=False)
        self._generation: Generation | None = None
        self._retry_until: float | None = None
        self._retry: Retrying | None = None
        self._timer: Timer | None = None
        self._clock: Callable[[], float] = time.perf_counter
        self._tail = ""
        self._stop_key = "esc"
        self._retry_key = "^r"

    def set_keys(self, *, stop: str, retry: str) -> None:
        """The keys the line names for stopping and retrying, as the app shows keys
        (``App.get_key_display``; the defaults are the chat's, "esc" and "^r")."""
        self._stop_key, self._retry_key = sanitize(stop), sanitize(retry)
        self._tick()

    @property
    def generation(self) -> Generation | None:
        return self._generation

    def track(self, generation: Generation, clock: Callable[[], float] = time.perf_counter) -> None:
        """Show ``generation`` (whose timing source is ``clock``) until :meth:`track` is
        called again or :meth:`clear`."""
        self._generation = generation
        self._clock = clock
        self._retry = self._retry_until = None
        self._tail = ""
        self.set_class(True, "-active")
        self.set_class(False, "-error")
        self.set_class(False, "-stopped")
        if self._timer is None:
            self._timer = self.set_interval(0.1, self._tick)
        else:
            self._timer.resume()
        self._tick()

    def retrying(self, event: Retrying) -> None:
        self._retry = event
        self._retry_until = time.monotonic() + event.delay
        self._tick()

    def clear(self) -> None:
        self._generation = None
        self._tail = ""
        if self._timer is not None:
            self._timer.pause()
        self.set_classes("")
        self.update("")

    def show_use(self, tail: str) -> None:
        """Put ``tail`` (context, prompt tokens, cost: :meth:`tokentide.meter.Meter.line`)
        after the finished answer's figures."""
        self._tail = tail
        if self._generation is None:
            self.update(Text(tail, no_wrap=True, overflow="ellipsis"), layout=False)
        else:
            self._tick()

    def refresh_now(self) -> None:
        """Redraw from the generation's current state (e.g. right after it finished)."""
        self._tick()

    def _tick(self) -> None:
        generation = self._generation
        if generation is None:
            return
        stats = generation.stats
        elapsed = (stats.ended if stats.ended is not None else self._clock()) - stats.started
        spin = SPINNER[int(elapsed * 10) % len(SPINNER)]
        state = generation.state
        if state is State.WAITING:
            text = f"{spin} waiting for the first token · {elapsed:.1f} s · {self._stop_key} stops"
        elif state is State.RETRYING and self._retry is not None and self._retry_until:
            left = max(0.0, self._retry_until - time.monotonic())
            text = (
                f"{spin} retrying in {left:.0f} s (attempt {self._retry.attempt}): "
                f"{sanitize(self._retry.reason)} · {self._stop_key} stops"
            )
        elif state is State.RETRYING:
            text = f"{spin} retrying · {self._stop_key} stops"
        elif state is State.STREAMING:
            text = f"{spin} streaming · {describe_stats(stats)} · {self._stop_key} stops"
        else:
            text = " · ".join(part for part in (self._final(generation), self._tail) if part)
            if self._timer is not None:
                self._timer.pause()
            self.set_class(False, "-active")
            self.set_class(state is State.ERROR, "-error")
            self.set_class(state is State.STOPPED, "-stopped")
        self.update(Text(text, no_wrap=True, overflow="ellipsis"), layout=False)

    def _final(self, generation: Generation) -> str:
        stats = describe_stats(generation.stats)
        if generation.state is State.DONE:
            reason = generation.finish.reason if generation.finish else None
            return " · ".join(
                part for part in (f"done ({sanitize(reason or 'end')})", stats) if part
            )
        if generation.state is State.STOPPED:
            return " · ".join(part for part in ("stopped", stats) if part)
        error = generation.error
        message = sanitize(error.message) if error is not None else "failed"
        return f"error: {message} · {self._retry_key} retries"
