"""The comparison screen: one prompt, every target × mode at the same moment, side by side.

    ╭ local · streaming ───────────╮╭ local · non-streaming ───────╮
    │ 0.62 s · TTFT 52 ms · 12 tok…││ 0.62 s · answer – · 0 tokens │
    │ The quick brown fox jumps…   ││ ⠹ waiting for the whole      │
    │                              ││   answer… 0.6 s              │
    ╰──────────────────────────────╯╰──────────────────────────────╯
    local: first token 19× sooner when streaming (52 ms vs 1.01 s); total time within 1%
    local gaps ms: p50 50.2 · p99 61.0 · max 64.1  ▂▃▂▇▂▂▃▂▂▂ …

The streaming pane renders tokens as they arrive (:mod:`tokentide.tui.compare_pane`); the
non-streaming pane shows a waiting clock until the whole answer lands at once.  Each pane
shows, live: its state (in the border), elapsed time, time to first token (for non-streaming: the time to
the whole answer), tokens and tokens/s.  When every pane has finished, the summary row
gives the ratios and a chart of the streaming side's inter-token gaps.

Several targets make a grid: one row per target, one column per mode.  Esc stops every
pane (each generation is cancelled, so streams are closed); a non-streaming pane stopped
while waiting says the server may still be generating (reliability C5: some servers only
notice a dead connection when they write the reply).

The screen is a view of the comparison engine's round: it prepares one with
:func:`~tokentide.compare.runner.prepare_round`, drives it with
:func:`~tokentide.compare.runner.run_round` and renders what the hooks report (batches of
events, finished runs); its texts (live figures, summary sentences, gap charts) come from
:mod:`tokentide.compare.report`.  The live figures are read from each generation's stats
on a 10 Hz timer (nothing per token), with the clock given to the screen (tests freeze it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import ClassVar

from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container, Horizontal, Vertical
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Input, Label, Sparkline, Static

from tokentide.backends.events import Event
from tokentide.compare.report import MODE_NAMES, gap_charts, round_summary
from tokentide.compare.runner import (
    MODES,
    Lane,
    Mode,
    PreparedRound,
    RunResult,
    Target,
    close_targets,
    make_targets,
    prepare_round,
    run_round,
    target_labels,
)
from tokentide.config.model import Profile
from tokentide.errors import TideError
from tokentide.generation import Generation, State
from tokentide.sanitize import sanitize
from tokentide.tui.compare_pane import Clock, ComparePane
from tokentide.tui.plain import PlainNotifications, SafeClipboard

__all__ = ["MODE_NAMES", "CompareApp", "ComparePane", "CompareScreen", "run_compare_app"]


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
        self.round: PreparedRound | None = None
        """The current round (None before the first prompt)."""
        self.results: list[RunResult] = []
        """The current round's results once every pane has finished, in pane order."""
        self._timer: Timer | None = None
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
    def generations(self) -> list[Generation]:
        """The current round's generations, in pane order."""
        return self.round.generations if self.round is not None else []

    @property
    def running(self) -> bool:
        return self.round is not None and self.round.running

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
        prepared = prepare_round(self.targets, self.modes, prompt, clock=self.clock)
        self.round = prepared
        self._launched = False
        panes = list(self.query(ComparePane))
        for pane, lane in zip(panes, prepared.lanes, strict=True):
            pane.attach(lane.generation)
        for pane in panes:
            await pane.show()
        # Start every request in one go once the panes are painted, so the clocks do
        # not include mounting and the first paint of the screen.
        self.call_after_refresh(self._launch)

    def _launch(self) -> None:
        if self._launched or self.round is None:
            return
        self._launched = True
        self.round.start()
        self.run_worker(self._run(self.round), group="compare")
        if self._timer is None:
            self._timer = self.set_interval(0.1, self.refresh_stats)
        else:
            self._timer.resume()
        self.refresh_stats()

    async def _run(self, prepared: PreparedRound) -> None:
        """Drive the runner's round; the hooks render each pane."""
        panes = {
            id(pane.generation): pane
            for pane in self.query(ComparePane)
            if pane.generation is not None
        }

        def pane_of(lane: Lane) -> ComparePane | None:
            pane = panes.get(id(lane.generation))
            return pane if pane is not None and pane.generation is lane.generation else None

        def on_batch(lane: Lane, events: list[Event]) -> None:
            if (pane := pane_of(lane)) is not None:
                pane.render_events(events)

        async def on_finish(lane: Lane, result: RunResult) -> None:
            if (pane := pane_of(lane)) is not None:
                await pane.render_result(result)
                pane.tick(self.clock)

        results = await run_round(
            prepared,
            stopped=lambda: self.stopped or self.round is not prepared,
            on_batch=on_batch,
            on_finish=on_finish,
        )
        if self.round is prepared:  # not replaced by a newer round meanwhile
            self._finished(results)

    def refresh_stats(self) -> None:
        """Redraw every pane's live figures now."""
        for pane in self.query(ComparePane):
            pane.tick(self.clock)

    def _finished(self, results: list[RunResult] | None) -> None:
        try:
            if self._timer is not None:
                self._timer.pause()
            self.refresh_stats()
            self.results = list(results or [])
            self._show_summary(round_summary(results))
            if results is None or self.targets is None:
                return
            charts = gap_charts(results)
            for row, target in enumerate(self.targets):
                chart = charts.get(target.label)
                if chart is None:
                    continue
                box = self.query_one(f"#gaps-{row}", Horizontal)
                box.query_one(".gaps-label", Label).update(chart.caption)
                box.query_one(".gaps-chart", Sparkline).data = list(chart.values_ms)
        finally:
            self.finished.set()

    def _show_summary(self, text: str) -> None:
        self.query_one("#compare-sentence", Static).update(text)
        self.query_one("#compare-summary").display = True

    async def stop_all(self) -> None:
        """Cancel every generation and wait until each has closed its stream."""
        if self.running:
            self.stopped = True
        self._launch()  # a generation must have started to end (as "stopped")
        if self.round is not None:
            await self.round.stop()

    async def action_stop(self) -> None:
        await self.stop_all()
        self.refresh_stats()

    @on(Input.Submitted, "#compare-prompt")
    async def _submitted(self, event: Input.Submitted) -> None:
        if event.value.strip():
            await self.start(event.value)

    async def on_unmount(self) -> None:
        self._launched = True  # never launch now
        if self.round is not None:
            await self.round.stop()
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
