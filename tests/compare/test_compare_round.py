"""The comparison engine's round, as its two views use it: ``prepare_round`` builds the
generations (a pane each) without sending anything; ``run_round`` sends them and reports
through hooks; one row definition feeds the CSV.  A scripted backend double (real
generations, no HTTP) keeps the order of events exact; the screen test uses the loopback
server.
"""

from __future__ import annotations

import asyncio
import csv
import io
import subprocess
import sys
from collections.abc import AsyncGenerator

from textual.widgets import Static

from tests.servers.llm_server import LLMServer
from tokentide.backends.base import GenerationRequest, Reply
from tokentide.backends.events import Event, Finish, TextDelta, Usage
from tokentide.compare.report import csv_report, round_summary
from tokentide.compare.results import CSV_FIELDS, RunResult, result_rows
from tokentide.compare.runner import Lane, Target, prepare_round, run_round
from tokentide.config.model import Profile
from tokentide.tui.compare_screen import CompareApp

TOKENS = ("Streaming", " is", " quick", ".")


class Scripted:
    """Streams TOKENS (yielding to the loop between them); ``create`` answers the same
    text.  With ``hang=True`` both sides wait until cancelled."""

    name = "scripted test double"

    def __init__(self, *, hang: bool = False) -> None:
        self.hang = hang
        self.calls: list[str] = []
        self.entered = asyncio.Event()

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[Event, None]:
        self.calls.append("stream")
        self.entered.set()
        if self.hang:
            await asyncio.Event().wait()
        for token in TOKENS:
            await asyncio.sleep(0)
            yield TextDelta(token)
        yield Finish("stop", Usage(3, len(TOKENS)))

    async def create(self, request: GenerationRequest) -> Reply:
        self.calls.append("create")
        if self.hang:
            await asyncio.Event().wait()
        await asyncio.sleep(0)
        return Reply("".join(TOKENS), "stop", Usage(3, len(TOKENS)))

    async def aclose(self) -> None:
        pass


def target(backend: Scripted, label: str = "demo") -> Target:
    profile = Profile(name=label, api="openai", url="http://127.0.0.1:9/v1", model="m")
    return Target(label, profile, backend)


async def test_prepare_round_builds_a_lane_per_target_and_mode_and_sends_nothing() -> None:
    first, second = Scripted(), Scripted()
    prepared = prepare_round([target(first, "a"), target(second, "b")], ("stream", "create"), "Hi")
    assert [(lane.label, lane.mode) for lane in prepared.lanes] == [
        ("a", "stream"), ("a", "create"), ("b", "stream"), ("b", "create"),
    ]  # fmt: skip
    assert all(gen.state.value == "waiting" for gen in prepared.generations)
    before = prepared.running
    for _ in range(20):  # turns of the loop: anything started would have run by now
        await asyncio.sleep(0)
    assert first.calls == second.calls == []
    await prepared.stop()
    assert (before, prepared.running) == (True, False)
    assert all(gen.state.value == "stopped" for gen in prepared.generations)


async def test_run_round_reports_every_lane_through_its_hooks() -> None:
    prepared = prepare_round([target(Scripted())], ("stream", "create"), "Hi")
    log: list[tuple[str, str]] = []
    texts: dict[str, str] = {"stream": "", "create": ""}
    finished: list[RunResult] = []

    def on_start(lane: Lane) -> None:
        log.append(("start", lane.mode))

    def on_batch(lane: Lane, events: list[Event]) -> None:
        texts[lane.mode] += "".join(e.text for e in events if isinstance(e, TextDelta))

    async def on_finish(lane: Lane, result: RunResult) -> None:
        await asyncio.sleep(0)  # an awaitable hook is awaited
        log.append(("finish", lane.mode))
        finished.append(result)

    results = await run_round(prepared, on_start=on_start, on_batch=on_batch, on_finish=on_finish)
    assert results is not None
    # Sent at the same moment: every lane starts before any finishes.
    assert log[:2] == [("start", "stream"), ("start", "create")]
    assert sorted(log[2:]) == [("finish", "create"), ("finish", "stream")]
    assert texts == {"stream": "".join(TOKENS), "create": "".join(TOKENS)}
    assert [r.mode for r in results] == ["stream", "create"]
    assert sorted(map(id, finished)) == sorted(map(id, results))
    assert all(r.ok and r.text_matched for r in results)
    assert results[0].events == len(TOKENS) and results[0].gaps_s
    assert round_summary(results).startswith("demo: first token")


async def test_a_sequential_round_starts_each_lane_after_the_last_finished() -> None:
    prepared = prepare_round([target(Scripted())], ("stream", "create"), "Hi")
    log: list[tuple[str, str]] = []
    results = await run_round(
        prepared,
        sequential=True,
        on_start=lambda lane: log.append(("start", lane.mode)),
        on_finish=lambda lane, result: log.append(("finish", lane.mode)),
    )
    assert log == [("start", "stream"), ("finish", "stream"), ("start", "create"),
                   ("finish", "create")]  # fmt: skip
    assert results is not None and all(r.ok for r in results)


async def test_a_stopped_round_returns_none_and_still_finishes_every_lane() -> None:
    backend = Scripted(hang=True)
    prepared = prepare_round([target(backend)], ("stream", "create"), "Hi")
    stopped = False
    finished: list[RunResult] = []
    task = asyncio.create_task(
        run_round(
            prepared,
            stopped=lambda: stopped,
            on_finish=lambda lane, result: finished.append(result),
        )
    )
    await backend.entered.wait()
    stopped = True
    prepared.cancel()
    assert await asyncio.wait_for(task, 5) is None
    assert sorted(r.state for r in finished) == ["stopped", "stopped"]
    assert round_summary(None) == "stopped: no summary for an interrupted comparison"


def test_the_csv_rows_are_the_result_rows_with_text_sanitised() -> None:
    hostile = RunResult("t\x1b]0;owned\x07", "create", 1, "error", 0.0, None, 0.1, None, None,
                        None, 0, None, None, None, 0, 1, None, "Overloaded",
                        "slow \x1b[31mdown\x1b[0m", "")  # fmt: skip
    good = RunResult("t", "stream", 1, "done", 0.0, 0.05, 1.0, 20, "tokens", 20, 20, 19.0,
                     0.05, 0.06, 60, 1, "stop", None, None, "text", [0.05] * 19)  # fmt: skip
    text = csv_report([good, hostile])
    assert "\x1b" not in text and "\x07" not in text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == list(CSV_FIELDS)
    assert result_rows([good])[0] == good.row() == {n: getattr(good, n) for n in CSV_FIELDS}
    assert rows[0] == {k: "" if v is None else str(v) for k, v in good.row().items()}
    assert rows[1]["tokens"] == "" and rows[1]["error_message"].startswith("slow ")
    assert rows[1]["error_message"].endswith("down")
    assert list(good.as_dict())[: len(CSV_FIELDS)] == list(CSV_FIELDS)


def test_the_comparison_engine_imports_no_view() -> None:
    code = (
        "import sys\n"
        "import tokentide.compare.runner, tokentide.compare.report\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'textual'"
        " or m.startswith('tokentide.tui')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout  # fmt: skip
    assert out.strip() == "[]"


async def test_a_new_prompt_during_a_round_replaces_it_on_the_screen(loopback: LLMServer) -> None:
    url = loopback.url(tokens=40, delay=0.05) + "/v1"
    profile = Profile(name="loop", api="openai", url=url, model="m", max_retries=0)
    app = CompareApp([profile], None)
    async with app.run_test(size=(110, 30)) as pilot:
        screen = app.compare_screen
        await pilot.press(*"Hi", "enter")
        while not screen.generations or screen.generations[0].stats.tokens < 2:
            await pilot.pause(0.02)
        first = screen.generations
        assert not any(gen.state.finished for gen in first)
        await pilot.press("enter")  # the same prompt again, while the first round runs
        while screen.generations == first:
            await pilot.pause(0.02)
        await screen.finished.wait()
        assert [gen.state.value for gen in first] == ["stopped", "stopped"]
        assert [r.text for r in screen.results] == [g.text for g in screen.generations]
        assert all(r.ok for r in screen.results)
        sentence = str(screen.query_one("#compare-sentence", Static).render())
        assert sentence.startswith("loop: first token") and "same text" in sentence
        assert screen.exit_code == 0
        await pilot.press("ctrl+c")
    assert app.return_code == 0
