"""One pane of the comparison screen: a target × mode's title, live stats and answer.

The pane follows one generation of the comparison round at a time
(:meth:`ComparePane.attach`, then :meth:`~ComparePane.show`): the streaming pane renders
the tokens as they arrive (:class:`MarkdownMessage`), the non-streaming pane shows a
waiting clock until the whole answer lands at once.  The stats line and the state in the
border are redrawn from the generation's stats by the screen's 10 Hz timer
(:meth:`~ComparePane.tick`), never per token.  Its structural CSS is in ``compare.tcss``
beside the screen, which ships it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static

from tokentide.backends.events import Event, TextDelta
from tokentide.compare.report import MODE_NAMES, live_figures
from tokentide.compare.runner import Mode, RunResult
from tokentide.errors import BackendError
from tokentide.generation import Generation
from tokentide.sanitize import sanitize
from tokentide.tui.plain import plain
from tokentide.tui.widgets.markdown_view import MarkdownMessage

__all__ = ["SPINNER", "Clock", "ComparePane"]

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
Clock = Callable[[], float]


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
        """Follow ``generation`` from now on (synchronous: events may arrive at once;
        :meth:`show` puts the new widgets on screen)."""
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

    def render_events(self, events: Sequence[Event]) -> None:
        """Show the answer's text in one batch of events (special tokens left out)."""
        text = "".join(e.text for e in events if type(e) is TextDelta and not e.special)
        if text and self.message is not None:
            self._hide_waiting()
            self.message.append(text)

    async def render_result(self, result: RunResult) -> None:
        """The run has ended: finish the answer and say why it failed or stopped."""
        if self.message is not None:
            self.message.finish()
        self._hide_waiting()
        self.error = self.generation.error if self.generation is not None else None
        if self.error is not None:
            hint = f"\n{self.error.hint}" if self.error.hint else ""
            await self._say(f"{type(self.error).__name__}: {self.error.message}{hint}")
        elif result.empty:
            self.empty = True
            await self._say(
                "the server ended this answer without any content or finish reason "
                "(llama-cpp-python's server interrupts a running request when another "
                "arrives: compare with --sequential, or start it with "
                "--interrupt_requests False)"
            )
        elif result.state == "stopped" and self.mode == "create" and not result.text:
            await self._say(
                "stopped before the answer arrived: the server may still be "
                "generating it (a non-streamed request is often only noticed as "
                "abandoned when the server writes the reply)",
                notice=True,
            )

    async def _say(self, text: str, *, notice: bool = False) -> None:
        kind = "pane-notice" if notice else "pane-error"
        await self.body.mount(Static(sanitize(text), classes=kind, markup=False))

    def _hide_waiting(self) -> None:
        for waiting in self.body.query(".pane-waiting"):
            waiting.display = False

    def tick(self, clock: Clock) -> None:
        """Redraw the stats line (and the waiting clock) from the generation's stats."""
        gen = self.generation
        if gen is None:
            self.stats_line.update("ready")
            return
        figures = live_figures(gen, clock())
        self.stats_line.update(figures.line)
        state = gen.state
        shown = "empty" if self.empty else state.value
        self.border_subtitle = plain(shown)
        if state.finished:
            self.set_classes(f"compare-pane -{self.mode} -{'error' if self.empty else shown}")
        if self.mode == "create" and not state.finished:
            elapsed = figures.elapsed_s
            frame = SPINNER[int(elapsed * 10) % len(SPINNER)]
            for waiting in self.body.query(".pane-waiting").results(Static):
                waiting.update(f"{frame} waiting for the whole answer… {elapsed:.1f} s")
