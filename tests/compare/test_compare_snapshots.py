"""Snapshots of the comparison screen, during and after a run, plus its behaviour.

Deterministic: a scripted backend double (not HTTP: what is pictured is the screen) sets
a frozen clock to fixed times before each token, and the test holds the clock while the
picture is taken, so every figure on screen (elapsed, TTFT, tokens/s, gaps) is the same
on every run.  The live HTTP path of the same screen is exercised by the last test.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Sparkline, Static

from tests.servers.llm_server import LLMServer
from tokentide.backends.base import GenerationRequest, Reply
from tokentide.backends.events import Event, Finish, TextDelta, Usage
from tokentide.compare.runner import Target
from tokentide.config.model import Profile
from tokentide.errors import Overloaded
from tokentide.tui.compare_screen import CompareApp, ComparePane
from tokentide.tui.widgets.markdown_view import MarkdownMessage

SnapCompare = Callable[..., bool]

TOKENS = (
    "Streaming", " shows", " each", " token", " as", " soon", " as", " the", " model",
    " makes", " it", ":", " you", " start", " reading", " at", " once", ".", " Without",
    " it", " you", " wait", " for", " the", " **whole**", " answer", ".",
)  # fmt: skip
# Arrival times of the tokens (irregular, so the gap chart has a shape).
TIMES = [0.05 + sum(0.03 + 0.02 * ((i * 7) % 5) for i in range(n)) for n in range(len(TOKENS))]
CREATE_AT = round(TIMES[-1] + 0.03, 2)  # the whole answer lands just after the last token


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def at(self, seconds: float) -> None:
        self.now = 100.0 + seconds


class Scripted:
    """Streams TOKENS at TIMES; ``create`` answers at ``create_at`` once released."""

    name = "scripted test double"

    def __init__(self, clock: Clock, *, hold_at: int | None, create_at: float) -> None:
        self.clock = clock
        self.hold_at = hold_at
        self.create_at = create_at
        self.held = asyncio.Event()
        self.release_stream = asyncio.Event()
        self.release_create = asyncio.Event()
        self.streamed = asyncio.Event()
        self.fail_create = False

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[Event, None]:
        for i, token in enumerate(TOKENS):
            if i == self.hold_at:
                self.held.set()
                await self.release_stream.wait()
            self.clock.at(TIMES[i])
            yield TextDelta(token)
        yield Finish("stop", Usage(5, len(TOKENS)))
        self.streamed.set()

    async def create(self, request: GenerationRequest) -> Reply:
        await self.release_create.wait()
        self.clock.at(self.create_at)
        if self.fail_create:
            raise Overloaded("Rate limit reached, slow down", status=429, server="scripted")
        return Reply("".join(TOKENS), "stop", Usage(5, len(TOKENS)))

    async def aclose(self) -> None:
        pass


def make_app(
    *, hold_at: int | None = 9, create_at: float = CREATE_AT
) -> tuple[CompareApp, Scripted]:
    clock = Clock()
    clock.at(0.0)
    backend = Scripted(clock, hold_at=hold_at, create_at=create_at)
    profile = Profile(name="demo", api="openai", url="http://127.0.0.1:9/v1", model="m")
    app = CompareApp(
        [profile],
        "Why does streaming matter?",
        targets=[Target("demo", profile, backend)],
        clock=clock,
    )
    return app, backend


async def settle(pilot: Pilot[Any]) -> None:
    """Let the screen catch up: live figures redrawn, Markdown frames painted."""
    app = pilot.app
    assert isinstance(app, CompareApp)
    app.compare_screen.refresh_stats()
    # MarkdownMessage paints on a frame timer (30 Hz, slower when frames are slow):
    # wait until no frame is pending, then for the screen to repaint.
    for _ in range(200):
        await pilot.pause(0.02)
        if not any(m._frame_pending for m in app.query(MarkdownMessage)):
            break
    await pilot.pause()


def during(backend: Scripted) -> Callable[[Pilot[Any]], Awaitable[None]]:
    async def run_before(pilot: Pilot[Any]) -> None:
        await backend.held.wait()  # 9 tokens streamed; the non-streaming side still waits
        await settle(pilot)

    return run_before


def after(backend: Scripted) -> Callable[[Pilot[Any]], Awaitable[None]]:
    async def run_before(pilot: Pilot[Any]) -> None:
        await backend.held.wait()
        backend.release_stream.set()
        await backend.streamed.wait()
        backend.release_create.set()
        app = pilot.app
        assert isinstance(app, CompareApp)
        await app.compare_screen.finished.wait()
        await settle(pilot)

    return run_before


def test_snapshot_during_a_run(snap_compare: SnapCompare) -> None:
    app, backend = make_app()
    assert snap_compare(app, terminal_size=(110, 30), run_before=during(backend))


def test_snapshot_after_a_run(snap_compare: SnapCompare) -> None:
    app, backend = make_app()
    assert snap_compare(app, terminal_size=(110, 30), run_before=after(backend))


# -- behaviour --------------------------------------------------------------------------


async def test_figures_and_summary_after_a_run() -> None:
    app, backend = make_app()
    async with app.run_test(size=(110, 30)) as pilot:
        await after(backend)(pilot)
        screen = app.compare_screen
        stream, create = screen.query(ComparePane)
        assert str(stream.stats_line.render()).startswith(
            f"{TIMES[-1]:.2f} s · TTFT 50 ms · 27 tokens"
        )
        assert str(create.stats_line.render()).startswith(
            f"{CREATE_AT:.2f} s · answer {CREATE_AT:.2f} s · 27 tokens"
        )
        assert stream.border_subtitle == create.border_subtitle == "done"
        sentence = str(screen.query_one("#compare-sentence", Static).render())
        ratio = round(CREATE_AT / 0.05)
        assert sentence.startswith(
            f"demo: first token {ratio}× sooner when streaming (50 ms vs {CREATE_AT:.2f} s); "
            "total time within 2%; same text in both modes."
        ), sentence
        chart = screen.query_one(".gaps-chart", Sparkline)
        assert chart.data is not None and len(chart.data) == len(TOKENS) - 1
        assert screen.exit_code == 0
        await pilot.press("ctrl+c")
    assert app.return_code == 0


async def test_escape_stops_every_pane_and_warns_about_the_non_streaming_side() -> None:
    app, backend = make_app()
    async with app.run_test(size=(110, 30)) as pilot:
        await backend.held.wait()
        await pilot.press("escape")
        screen = app.compare_screen
        for gen in screen.generations:
            assert gen.state.value == "stopped"
        await pilot.pause()
        stream, create = screen.query(ComparePane)
        assert stream.border_subtitle == create.border_subtitle == "stopped"
        notice = create.query_one(".pane-notice", Static)
        assert "server may still be generating" in str(notice.render())
        assert screen.exit_code == 130
        await pilot.press("ctrl+c")
    assert app.return_code == 130


async def test_one_pane_failing_leaves_the_other_running() -> None:
    app, backend = make_app(hold_at=None)
    backend.fail_create = True
    backend.release_create.set()
    async with app.run_test(size=(110, 30)) as pilot:
        screen = app.compare_screen
        await screen.finished.wait()
        await settle(pilot)
        stream, create = screen.query(ComparePane)
        assert stream.border_subtitle == "done" and create.border_subtitle == "error"
        error = create.query_one(".pane-error", Static)
        assert str(error.render()).startswith("Overloaded: Rate limit reached")
        assert screen.generations[0].text == "".join(TOKENS)
        sentence = str(screen.query_one("#compare-sentence", Static).render())
        assert "failed: demo non-streaming" in sentence
        await pilot.press("ctrl+c")
    assert app.return_code == 4


async def test_prompt_input_starts_a_run_against_the_loopback_server(loopback: LLMServer) -> None:
    url = loopback.url(tokens=8, delay=0.02) + "/v1"
    profile = Profile(name="loop", api="openai", url=url, model="m", max_retries=0)
    app = CompareApp([profile], None)
    async with app.run_test(size=(110, 30)) as pilot:
        screen = app.compare_screen
        assert not screen.generations
        await pilot.press(*"Hi", "enter")
        await screen.finished.wait()
        await settle(pilot)
        stream, create = screen.generations
        assert stream.text == create.text == " ".join(f"w{i}" for i in range(8))
        assert stream.stats.ttft is not None and create.stats.ttft is not None
        assert stream.stats.ttft < create.stats.ttft
        sentence = str(screen.query_one("#compare-sentence", Static).render())
        assert sentence.startswith("loop: first token") and "same text" in sentence
        await pilot.press("ctrl+c")
    assert app.return_code == 0


async def test_escape_right_after_submitting_stops_cleanly() -> None:
    app, backend = make_app()
    async with app.run_test(size=(110, 30)) as pilot:
        screen = app.compare_screen
        await pilot.press("escape")  # possibly before the requests were even sent
        await pilot.pause()
        for gen in screen.generations:
            assert gen.state.value in ("stopped", "streaming")
        await pilot.press("escape")
        assert all(gen.state.finished for gen in screen.generations)
        await pilot.press("ctrl+c")
    assert app.return_code in (0, 130)
    assert not backend.streamed.is_set()
