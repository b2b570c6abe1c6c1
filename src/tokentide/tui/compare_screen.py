"""The comparison screen: one prompt, every target × mode at the same moment, side by side.

    ╭ local · streaming ───────────╮╭ local · non-streaming ───────╮
    │ 0.62 s · TTFT 52 ms · 12 tok…││ 0.62 s · answer – · 0 tokens │
    │ The quick brown fox jumps…   ││ ⠹ waiting for the whole      │
    │                              ││   answer… 0.6 s              │
    ╰──────────────────────────────╯╰──────────────────────────────╯
    local: first token 19× sooner when streaming (52 ms vs 1.01 s); total time within 1%
    local gaps ms: p50 50.2 · p99 61.0 · max 64.1  ▂▃▂▇▂▂▃▂▂▂ …

The streaming pane renders tokens as they arrive (:class:`MarkdownMessage`); the
non-streaming pane shows a waiting clock until the whole answer lands at once.  Each pane
shows, live: its state (in the border), elapsed time, time to first token (for non-streaming: the time to
the whole answer), tokens and tokens/s.  When every pane has finished, the summary row
gives the ratios and a chart of the streaming side's inter-token gaps.

Several targets make a grid: one row per target, one column per mode.  Esc stops every
pane (each generation is cancelled, so streams are closed); a non-streaming pane stopped
while waiting says the server may still be generating (reliability C5: some servers only
notice a dead connection when they write the reply).

The numbers come from :class:`~tokentide.generation.Generation`'s stats, read on a 10 Hz
timer (nothing per token), with the clock given to the screen (tests freeze it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import ClassVar

from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container, Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Input, Label, Sparkline, Static

from tokentide.backends.events import TextDelta
from tokentide.compare.runner import (
    MODES,
    Mode,
    RunResult,
    Target,
    close_targets,
    format_ms,
    make_targets,
    mark_matches,
    new_generation,
    result_from,
    summarize,
    summary_sentences,
    target_labels,
)
from tokentide.config.model import Profile
from tokentide.errors import BackendError, TideError
from tokentide.generation import Generation, State
from tokentide.sanitize import sanitize
from tokentide.tui.plain import PlainNotifications, SafeClipboard, plain
from tokentide.tui.widgets.markdown_view import MarkdownMessage

__all__ = ["CompareApp", "ComparePane", "CompareScreen", "run_compare_app"]

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
MODE_NAMES: dict[Mode, str] = {"stream": "streaming", "create": "non-streaming"}
Clock = Callable[[], float]


def _seconds(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _no_reason(gen: Generation) -> bool:
    return gen.finish is None or gen.finish.reason is None


class ComparePane(Vertical):
    """One target × mode: a title, a live stats line and the answer."""

    def __init__(self, label: str, mode: Mode, *, id: str | None = None) -> None:
        super().__init__(id=id, classes=f"compare-pane -{mode}")
        self.label = label
        self.mode: Mode = mode
        self.generation: Generation | None = None
        self.message: MarkdownMessage | None = None
        self.error: BackendError | None = None
        self.empty = False
        """The answer ended cleanly but without content (counted as a failure)."""
        self.border_title = plain(f"{label} · {MODE_NAMES[mode]}")

    def compose(self) -> ComposeResult:
        yield Static("", classes="pane-stats", markup=False)
        yield VerticalScroll(classes="pane-body")

    @property
    def stats_line(self) -> Static:
        return self.query_one(".pane-stats", Static)

    @property
    def body(self) -> VerticalScroll:
        return self.query_one(".pane-body", VerticalScroll)

    def attach(self, generation: Generation) -> None:
        """Follow ``generation`` from now on (synchronous: :meth:`consume` may start at
        once; :meth:`show` puts the new widgets on screen)."""
        self.generation = generation
        self.error = None
        self.empty = False
        self.set_classes(f"compare-pane -{self.mode} -running")
        self.border_subtitle = ""
        self.message = MarkdownMessage(streaming=True, classes="pane-answer")

    async def show(self) -> None:
        """Replace what an earlier run showed with the attached generation's widgets."""
        await self.body.remove_children()
        if self.message is None:
            return
        widgets: list[Static | MarkdownMessage] = [self.message]
        if self.mode == "create":
            widgets.insert(0, Static("", classes="pane-waiting", markup=False))
        await self.body.mount_all(widgets)

    async def consume(self) -> None:
        """Render the generation's text as it arrives, until it ends."""
        gen, message = self.generation, self.message
        if gen is None or message is None:
            return
        try:
            async for batch in gen.batches():
                text = "".join(e.text for e in batch if type(e) is TextDelta and not e.special)
                if text:
                    self._hide_waiting()
                    message.append(text)
        except BackendError as error:
            self.error = error
        message.finish()
        self._hide_waiting()
        if self.error is not None:
            hint = f"\n{self.error.hint}" if self.error.hint else ""
            await self.body.mount(
                Static(
                    sanitize(f"{type(self.error).__name__}: {self.error.message}{hint}"),
                    classes="pane-error",
                    markup=False,
                )
            )
        elif gen.state is State.DONE and not gen.text and _no_reason(gen):
            self.empty = True
            await self.body.mount(
                Static(
                    "the server ended this answer without any content or finish reason "
                    "(llama-cpp-python's server interrupts a running request when another "
                    "arrives: compare with --sequential, or start it with "
                    "--interrupt_requests False)",
                    classes="pane-error",
                    markup=False,
                )
            )
        elif gen.state is State.STOPPED and self.mode == "create" and not gen.text:
            await self.body.mount(
                Static(
                    "stopped before the answer arrived: the server may still be "
                    "generating it (a non-streamed request is often only noticed as "
                    "abandoned when the server writes the reply)",
                    classes="pane-notice",
                    markup=False,
                )
            )

    def _hide_waiting(self) -> None:
        for waiting in self.body.query(".pane-waiting"):
            waiting.display = False

    def tick(self, clock: Clock) -> None:
        """Redraw the stats line (and the waiting clock) from the generation's stats."""
        gen = self.generation
        if gen is None:
            self.stats_line.update("ready")
            return
        stats = gen.stats
        state = gen.state
        elapsed = (stats.ended if stats.ended is not None else clock()) - stats.started
        parts = [f"{elapsed:.2f} s"]
        ttft = stats.ttft
        if self.mode == "stream":
            parts.append(f"TTFT {_seconds(ttft)}" if ttft is not None else "TTFT –")
        else:
            parts.append(f"answer {_seconds(ttft)}" if ttft is not None else "answer –")
        # tokens where they are tokens, chunks where not, nothing where nobody counted
        parts.append(stats.count_label() or ("not counted" if state.finished else "–"))
        parts.append(stats.rate_label() or "– /s")
        self.stats_line.update(" · ".join(parts))
        shown = "empty" if self.empty else state.value
        self.border_subtitle = plain(shown)
        if state.finished:
            self.set_classes(f"compare-pane -{self.mode} -{'error' if self.empty else shown}")
        if self.mode == "create" and not state.finished:
            frame = SPINNER[int(elapsed * 10) % len(SPINNER)]
            for waiting in self.body.query(".pane-waiting").results(Static):
                waiting.update(f"{frame} waiting for the whole answer… {elapsed:.1f} s")


class CompareScreen(Screen[None]):
    """See the module docstring.

    Args:
        profiles: The targets (one grid row each).
        prompt: Run it at once; None shows only the prompt input.
        modes: The columns.
        targets: Already-built targets for ``profiles`` (the command builds them to
            report configuration errors before the screen opens); else built here.
        clock: The clock for the generations and the live figures (tests freeze it).
    """

    CSS_PATH = "compare.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "stop", "Stop all", id="compare-stop"),
    ]

    def __init__(
        self,
        profiles: Sequence[Profile],
        prompt: str | None = None,
        *,
        modes: Sequence[Mode] = MODES,
        targets: Sequence[Target] | None = None,
        clock: Clock = time.perf_counter,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        self.profiles = list(profiles)
        self.prompt = prompt
        self.modes: tuple[Mode, ...] = tuple(dict.fromkeys(modes)) or MODES
        self.targets: list[Target] | None = list(targets) if targets is not None else None
        self.clock = clock
        self.generations: list[Generation] = []
        self.results: list[RunResult] = []
        self._timer: Timer | None = None
        self._open = 0
        self.stopped = False
        self._launched = True
        """False between building a run's generations and starting them."""
        self.finished = asyncio.Event()
        """Set when every pane of the current run has finished and the summary is shown."""

    # -- layout ---------------------------------------------------------------------------

    def _labels(self) -> list[str]:
        if self.targets is not None:
            return [t.label for t in self.targets]
        return target_labels(self.profiles)

    def compose(self) -> ComposeResult:
        yield Label(self._title(), id="compare-title", markup=False)
        with Container(id="compare-panes"):
            for row, label in enumerate(self._labels()):
                for mode in self.modes:
                    yield ComparePane(label, mode, id=f"pane-{row}-{mode}")
        with Vertical(id="compare-summary"):
            yield Static("", id="compare-sentence", markup=False)
            if "stream" in self.modes:
                for row in range(len(self._labels())):
                    with Horizontal(classes="compare-gaps", id=f"gaps-{row}"):
                        yield Label("", classes="gaps-label", markup=False)
                        yield Sparkline([], summary_function=max, classes="gaps-chart")
        yield Input(
            value=self.prompt or "",
            placeholder="Prompt — Enter sends it to every pane at the same moment",
            id="compare-prompt",
        )
        yield Footer()

    def _title(self) -> str:
        what = " vs ".join(MODE_NAMES[m] for m in self.modes)
        count = len(self.profiles)
        targets = f" · {count} targets" if count > 1 else ""
        return sanitize(f"tide compare · {what}{targets} · sent at the same moment")

    def on_mount(self) -> None:
        panes = self.query_one("#compare-panes", Container)
        panes.styles.grid_size_columns = len(self.modes)
        panes.styles.grid_size_rows = max(1, len(self.profiles))
        self.query_one("#compare-summary").display = False
        for pane in self.query(ComparePane):
            pane.tick(self.clock)
        if self.prompt and self.prompt.strip():
            self.run_worker(self.start(self.prompt), group="compare-start")
        else:
            self.query_one("#compare-prompt", Input).focus()

    # -- running --------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return any(not gen.state.finished for gen in self.generations)

    @property
    def exit_code(self) -> int:
        """0 every pane succeeded (or nothing ran), 4 some failed, 130 stopped/running."""
        if self.stopped or self.running:
            return 130
        if any(gen.state is State.ERROR or gen.error is not None for gen in self.generations):
            return 4
        return 0

    async def start(self, prompt: str) -> None:
        """Send ``prompt`` to every target × mode at the same moment."""
        await self.stop_all()
        self.prompt = prompt
        if self.targets is None:
            try:
                self.targets = make_targets(self.profiles)
            except TideError as error:
                self._show_summary(sanitize(f"cannot start: {error}"))
                return
        self.stopped = False
        self.results = []
        self.finished.clear()
        self.query_one("#compare-summary").display = False
        panes = list(self.query(ComparePane))
        pairs = [(t, m) for t in self.targets for m in self.modes]
        gens = [new_generation(target, mode, prompt, clock=self.clock) for target, mode in pairs]
        self.generations = gens
        self._open = len(gens)
        self._launched = False
        for pane, gen in zip(panes, gens, strict=True):
            pane.attach(gen)
        for pane in panes:
            await pane.show()
        # Start every request in one go once the panes are painted, so the clocks do
        # not include mounting and the first paint of the screen.
        self.call_after_refresh(self._launch)

    def _launch(self) -> None:
        if self._launched:
            return
        self._launched = True
        for gen in self.generations:
            gen.start()
        for pane in self.query(ComparePane):
            self.run_worker(self._follow(pane), group="compare")
        if self._timer is None:
            self._timer = self.set_interval(0.1, self.refresh_stats)
        else:
            self._timer.resume()
        self.refresh_stats()

    async def _follow(self, pane: ComparePane) -> None:
        await pane.consume()
        pane.tick(self.clock)
        self._open -= 1
        if self._open == 0:
            self._finished()

    def refresh_stats(self) -> None:
        """Redraw every pane's live figures now."""
        for pane in self.query(ComparePane):
            pane.tick(self.clock)

    def _finished(self) -> None:
        try:
            self._summarize()
        finally:
            self.finished.set()

    def _summarize(self) -> None:
        if self._timer is not None:
            self._timer.pause()
        self.refresh_stats()
        if self.targets is None:
            return
        pairs = [(t.label, m) for t in self.targets for m in self.modes]
        self.results = [
            result_from(gen, label, mode, 1)
            for (label, mode), gen in zip(pairs, self.generations, strict=True)
        ]
        if self.stopped:
            self._show_summary("stopped: no summary for an interrupted comparison")
            return
        mark_matches(self.results)
        summaries = summarize(self.results)
        sentences = summary_sentences(summaries)
        errors = [r for r in self.results if not r.ok]
        if errors:
            sentences.append(
                "failed: " + ", ".join(f"{r.target} {MODE_NAMES[r.mode]}" for r in errors)
            )
        self._show_summary("\n".join(sentences) or "nothing to compare")
        for row, target in enumerate(self.targets):
            stream = next(
                (r for r in self.results if r.target == target.label and r.mode == "stream"),
                None,
            )
            if stream is None:
                continue
            box = self.query_one(f"#gaps-{row}", Horizontal)
            box.query_one(".gaps-label", Label).update(
                sanitize(
                    f"{target.label} gaps ms: p50 {format_ms(stream.gap_p50_s)}"
                    f" · p99 {format_ms(stream.gap_p99_s)}"
                    f" · max {format_ms(max(stream.gaps_s) if stream.gaps_s else None)} "
                )
            )
            box.query_one(".gaps-chart", Sparkline).data = [g * 1000 for g in stream.gaps_s]

    def _show_summary(self, text: str) -> None:
        self.query_one("#compare-sentence", Static).update(text)
        self.query_one("#compare-summary").display = True

    async def stop_all(self) -> None:
        """Cancel every generation and wait until each has closed its stream."""
        if self.running:
            self.stopped = True
        self._launch()  # a generation must have started to end (as "stopped")
        for gen in self.generations:
            gen.cancel()
        for gen in self.generations:
            await gen.wait()

    async def action_stop(self) -> None:
        await self.stop_all()
        self.refresh_stats()

    @on(Input.Submitted, "#compare-prompt")
    async def _submitted(self, event: Input.Submitted) -> None:
        if event.value.strip():
            await self.start(event.value)

    async def on_unmount(self) -> None:
        self._launched = True  # never launch now; a generation must start to end
        for gen in self.generations:
            gen.start()
        for gen in self.generations:
            gen.cancel()
        for gen in self.generations:
            await gen.wait()
        if self.targets is not None:
            await close_targets(self.targets)


class CompareApp(PlainNotifications, SafeClipboard, App[int]):
    """``tide compare`` on a terminal: just the comparison screen."""

    TITLE = "tide compare"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+c,ctrl+q", "quit_compare", "Quit", priority=True, id="compare-quit"),
    ]

    def __init__(
        self,
        profiles: Sequence[Profile],
        prompt: str | None = None,
        *,
        modes: Sequence[Mode] = MODES,
        targets: Sequence[Target] | None = None,
        clock: Clock = time.perf_counter,
    ) -> None:
        super().__init__()
        self.compare_screen = CompareScreen(
            profiles, prompt, modes=modes, targets=targets, clock=clock
        )

    def on_mount(self) -> None:
        self.push_screen(self.compare_screen)

    async def action_quit_compare(self) -> None:
        screen = self.compare_screen
        code = 130 if screen.running else screen.exit_code
        await screen.stop_all()
        self.exit(code, return_code=code)


def run_compare_app(
    profiles: Sequence[Profile],
    prompt: str | None,
    *,
    modes: Sequence[Mode] = MODES,
    targets: Sequence[Target] | None = None,
) -> int:
    """Run :class:`CompareApp`; return the exit code."""
    app = CompareApp(profiles, prompt, modes=modes, targets=targets)
    code = app.run()
    return app.compare_screen.exit_code if code is None else code
