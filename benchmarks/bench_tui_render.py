"""Live Markdown rendering: tokentide ``MarkdownMessage`` vs stock Textual ``MarkdownStream``.

Run (full, ~5 min on the 2-core project machine, most of it the stock run)::

    .venv/bin/python benchmarks/bench_tui_render.py
    .venv/bin/python benchmarks/bench_tui_render.py --quick      # reduced, < 60 s

Everything is headless ``App.run_test(size=(120, 40))``, one fresh app per run, the widget
inside a ``VerticalScroll`` with ``anchor()``.  The source is in-process: deterministic
Markdown tokens (≈3.75 characters each; sections, paragraphs with bold/code, lists, python
fences, tables — performance.md §B2) delivered at a fixed rate: before token *i* the
source sleeps until ``t0 + i / rate``, then hands the token over (``msg.append(tok)``, or
``await stream.write(tok)`` for stock) and yields once (``await asyncio.sleep(0)``), as a
network consumer does.

Definitions:

* **painted**: the screen's compositor has produced a frame (``App.post_display_hook``,
  called after every compositor update, headless included) whose composited strips
  contain the text.  The last token is a unique word; after it has been sent, every
  frame's strips are searched for it.  Same test for ours and stock.
* **effective rate** = tokens / (time last token painted − time first token sent).
* **last-token lag** = time last token painted − time it was handed to the widget (no
  ``finish()`` call: the lag of an ordinary token, not of the final flush).
* **worst stall**: largest overshoot of ``await asyncio.sleep(0.005)`` in a side task.
* **CPU/token per fifth**: ``time.process_time`` used while the source emitted each fifth
  of the tokens, divided by the tokens of that fifth; ratio last fifth / first fifth.
* **app** / **history**: the chat screen's own widgets and styles (``app.tcss``): a
  ``ConversationView`` holding ``UserMessage``/``AssistantMessage`` widgets, the stream
  fed through ``AssistantMessage.add``, and after mounting it what
  ``ChatScreen.answer()`` does (``ConversationView.follow_stream()``: follow, then fold);
  empty, and with K earlier long answers (1,000 tokens, each after a short prompt)
  already in the conversation and rendered, spread over branches as the chat shows
  them (every fifth answer and every tenth prompt carry a ``‹ n/m ›`` versions mark).  "ours" is the bare ``MarkdownMessage``, the
  like-for-like comparison with stock ``MarkdownStream``.
* **open conversation**: mount N saved messages (alternating a short user prompt as a
  ``Static`` and a 1,000-token answer) into a running app and wait for the frame that
  shows the end of the last answer.

GC: the app calls :func:`~tokentide.tui.widgets.markdown_view.settle_gc` (full collection,
then ``gc.freeze()``) when its first screen is up and right after mounting a saved
conversation has been painted; the benchmark calls it at the same points
(``BenchApp.on_ready``; ``call_after_refresh`` after ``mount_all`` in *open conversation*),
for ours and stock.  *Open conversation* runs first, before any stream: a stock
``MarkdownStream`` run leaves ~80k objects alive in the process, and every later
``settle_gc`` walks them (measured: 200-message open 772–936 ms after the stream runs,
124–246 ms before).

Medians of ``--runs`` runs of ours (3, ``--quick``: 1); stock ``MarkdownStream`` needs
~3.5 min per 20k-token run, so it runs ``--stock-runs`` times (default 1, interleaved with
the first run of ours), optionally on ``--stock-tokens`` tokens (reported as such).  Every
run line carries the load average.  Numbers are noisy on a shared machine: compare
ratios from the same run; a stall's "CPU" is the CPU this process used during it (≈ the
stall when the event loop was busy, far less when the OS ran other processes).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.markdown import Markdown as RichMarkdown
from textual.app import App, ComposeResult
from textual.containers import VerticalScroll
from textual.widget import Widget
from textual.widgets import Markdown, Static

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_text_helpers import make_answer, make_text
from tokentide import tui
from tokentide.backends.events import TextDelta
from tokentide.tui.chat_screen import ConversationView
from tokentide.tui.widgets.markdown_view import MarkdownMessage, rendering_settled, settle_gc
from tokentide.tui.widgets.messages import AssistantMessage, UserMessage

SIZE = (120, 40)
SENTINEL = "QZXENDTOKEN"


def make_tokens(n_tokens: int, seed: int = 0) -> list[str]:
    """``n_tokens`` tokens; the last one is the unique :data:`SENTINEL` word."""
    text = make_text(n_tokens - 2, seed)
    tokens: list[str] = []
    pos = 0
    lengths = (3, 4, 4, 4)  # mean 3.75
    i = 0
    while pos < len(text):
        step = lengths[i % 4]
        tokens.append(text[pos : pos + step])
        pos += step
        i += 1
    tokens = tokens[: n_tokens - 2]
    return [*tokens, "\n\nDone ", SENTINEL]


class BenchApp(App[None]):
    """Records frames; after :meth:`watch` finds the first frame showing a word."""

    CONV_ID = "conv"

    def __init__(self, children: Callable[[], list[Widget]]) -> None:
        super().__init__()
        self._children = children
        self._watch_for: str | None = None
        self.found_at: float | None = None
        self.frames = 0

    def compose(self) -> ComposeResult:
        with VerticalScroll(id=self.CONV_ID):
            yield from self._children()

    def on_mount(self) -> None:
        self.query_one(f"#{self.CONV_ID}", VerticalScroll).anchor()

    def on_ready(self) -> None:
        # Where tokentide's app calls it: once the first screen (and any conversation
        # composed with it) is up.  Same for ours and stock.
        settle_gc()

    def watch_for(self, word: str) -> None:
        self.found_at = None
        self._watch_for = word
        self._check()

    def post_display_hook(self) -> None:
        self.frames += 1
        if self._watch_for is not None:
            self._check()

    def _check(self) -> None:
        assert self._watch_for is not None
        now = time.perf_counter()
        strips = self.screen._compositor.render_strips()
        if any(self._watch_for in strip.text for strip in strips):
            self.found_at = now
            self._watch_for = None


class AppStructureApp(BenchApp):
    """The chat screen's widget structure and styles: each prompt a ``UserMessage``,
    each answer an ``AssistantMessage`` (a bordered ``Vertical`` holding the
    ``MarkdownMessage``), in a scroll view styled by the app's own ``app.tcss``."""

    CSS_PATH = str(Path(tui.__file__).parent / "app.tcss")
    CONV_ID = "conversation"

    def compose(self) -> ComposeResult:
        with ConversationView(id=self.CONV_ID):
            yield from self._children()


async def _stall_monitor(state: dict[str, float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        t = time.perf_counter()
        cpu = time.process_time()
        await asyncio.sleep(0.005)
        stall = time.perf_counter() - t - 0.005
        if stall > state["worst"]:
            state["worst"] = stall
            # CPU this process used meanwhile: ≈ the stall when the loop was busy,
            # much less when the OS ran other processes (shared machine).
            state["worst_cpu"] = time.process_time() - cpu


async def _wait_found(app: BenchApp, timeout: float) -> float | None:
    end = time.perf_counter() + timeout
    while app.found_at is None and time.perf_counter() < end:
        await asyncio.sleep(0.001)
    return app.found_at


@dataclass
class StreamResult:
    effective: float  # tok/s, nan when not painted within the timeout
    lag_ms: float
    stall_ms: float
    stall_cpu_ms: float
    fifths_us: list[float] = field(default_factory=list)
    cpu_us_per_token: float = 0.0
    note: str = ""

    @property
    def growth(self) -> float:
        return self.fifths_us[-1] / self.fifths_us[0] if self.fifths_us else float("nan")


async def run_stream(
    kind: str, n_tokens: int, rate: float, history: int, timeout: float
) -> StreamResult:
    """Stream ``n_tokens`` at ``rate`` into ours ("ours": the bare widget, "app": the
    chat screen's message widgets and styles) or stock ("stock")."""
    tokens = make_tokens(n_tokens)

    def children() -> list[Widget]:
        out: list[Widget] = []
        for k in range(history):
            question = f"Question {k}: explain section {k}, please."
            answer = make_answer(1000, seed=k * 13)
            if kind == "app":
                prompt, reply = UserMessage(question), AssistantMessage(answer, label="model")
                # Spread over branches, as the chat shows them: every fifth answer has
                # other versions, every tenth prompt too (issue 12).
                # (hasattr: the same script measures trees from before versions.)
                if k % 5 == 0 and hasattr(reply, "set_versions"):
                    reply.set_versions(f"‹ {1 + k % 3}/3 ›")
                if k % 10 == 0 and hasattr(prompt, "set_versions"):
                    prompt.set_versions("‹ 2/2 ›")
                out.append(prompt)
                out.append(reply)
            else:
                out.append(Static(question))
                out.append(MarkdownMessage(answer))
        return out

    app = (AppStructureApp if kind == "app" else BenchApp)(children)
    async with app.run_test(size=SIZE) as pilot:
        conv = app.query_one(f"#{app.CONV_ID}", VerticalScroll)
        if history:
            # Wait until the earlier answers near the viewport are rendered (the
            # background renderer renders far ones only when they come near).
            deadline = time.perf_counter() + 120
            while not rendering_settled(app):
                if time.perf_counter() > deadline:
                    raise RuntimeError("earlier answers not rendered within 120 s")
                await asyncio.sleep(0.01)
        feed: Callable[[str], Any]
        stream = None
        if kind == "ours":
            msg = MarkdownMessage(streaming=True)
            await conv.mount(msg)

            def feed(tok: str) -> None:
                msg.append(tok)

        elif kind == "app":
            if history:
                await conv.mount(UserMessage("And now the long one, please."))
            answer = AssistantMessage(streaming=True, label="model")
            await conv.mount(answer)
            # What ChatScreen.answer() does once the new answer is mounted.
            assert isinstance(conv, ConversationView)
            conv.follow_stream()

            def feed(tok: str) -> None:
                answer.add([TextDelta(tok)])

        else:
            md = Markdown()
            await conv.mount(md)
            stream = Markdown.get_stream(md)
            feed = stream.write
        await pilot.pause()
        gc.collect()
        stall = {"worst": 0.0, "worst_cpu": 0.0}
        stop = asyncio.Event()
        monitor = asyncio.create_task(_stall_monitor(stall, stop))
        fifth = n_tokens // 5
        cpu_marks: list[float] = []
        t0 = time.perf_counter()
        cpu0 = time.process_time()
        for i, tok in enumerate(tokens):
            delay = t0 + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if i % fifth == 0:
                cpu_marks.append(time.process_time())
            result = feed(tok)
            if result is not None:
                await result
            await asyncio.sleep(0)
        t_last = time.perf_counter()
        cpu_marks.append(time.process_time())
        app.watch_for(SENTINEL)
        found = await _wait_found(app, timeout)
        cpu1 = time.process_time()
        stop.set()
        await monitor
        note = ""
        if found is None:
            note = f"last token not painted {timeout:.0f} s after it was sent"
        if stream is not None:
            if found is None:
                stream._pending.clear()  # give up on the backlog
            await stream.stop()
        fifths = [
            (cpu_marks[j + 1] - cpu_marks[j]) / fifth * 1e6 for j in range(len(cpu_marks) - 1)
        ][:5]
        return StreamResult(
            effective=n_tokens / (found - t0) if found else float("nan"),
            lag_ms=(found - t_last) * 1e3 if found else float("nan"),
            stall_ms=stall["worst"] * 1e3,
            stall_cpu_ms=stall["worst_cpu"] * 1e3,
            fifths_us=fifths,
            cpu_us_per_token=(cpu1 - cpu0) / n_tokens * 1e6,
            note=note,
        )


async def run_open(kind: str, n_messages: int) -> tuple[float, float]:
    """Mount a saved conversation; ms until the end of the last answer is painted.

    Also returns ms until every answer is fully rendered (ours: background renderer).
    """
    app = BenchApp(list)
    answers = n_messages // 2
    texts = [make_answer(1000, seed=k * 13, end=f"END{k}") for k in range(answers)]
    last_word = f"END{answers - 1}"
    async with app.run_test(size=SIZE) as pilot:
        conv = app.query_one("#conv", VerticalScroll)
        await pilot.pause()
        widgets: list[Widget] = []
        for k, text in enumerate(texts):
            widgets.append(Static(f"Question {k}: explain section {k}, please."))
            if kind == "ours":
                widgets.append(MarkdownMessage(text))
            elif kind == "static-rich":
                widgets.append(Static(RichMarkdown(text, hyperlinks=False)))
            else:
                widgets.append(Markdown(text))
        gc.collect()
        t0 = time.perf_counter()
        app.watch_for(last_word)
        await conv.mount_all(widgets)
        # Where the app calls it: after the mounted conversation's first paint.
        app.call_after_refresh(settle_gc)
        found = await _wait_found(app, 120)
        painted = ((found or float("nan")) - t0) * 1e3
        if kind == "ours":
            while not rendering_settled(app):
                await asyncio.sleep(0.005)
            settled = (time.perf_counter() - t0) * 1e3
        else:
            settled = painted
        return painted, settled


def _med(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")  # (--stock-runs 0)


def _fmt(x: float, digits: int = 0) -> str:
    return "n/a" if x != x else f"{x:,.{digits}f}"


def _load() -> str:
    return "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


async def main_async(args: argparse.Namespace) -> None:
    quick = args.quick
    runs = 1 if quick else args.runs
    stock_runs = min(args.stock_runs, runs)
    n = 5000 if quick else 20000
    stock_n = args.stock_tokens or n
    rate = args.rate
    history = 10 if quick else 50
    n_open = 200
    stock_timeout = 30.0 if quick else 60.0
    print(
        f"tokens={n} rate={rate:.0f} tok/s runs={runs} (stock: {stock_runs} run(s) of "
        f"{stock_n} tokens) size={SIZE} history={history}; {_load()}"
    )

    # Opening first, in a fresh process: a stock run leaves ~80k objects alive, which
    # would be walked by the full collection of settle_gc() in every later app.
    opens: dict[str, list[tuple[float, float]]] = {"ours": [], "static-rich": [], "stock-md": []}
    stock_md_messages = 20
    for _ in range(runs):
        opens["ours"].append(await run_open("ours", n_open))
        opens["static-rich"].append(await run_open("static-rich", n_open))
        opens["stock-md"].append(await run_open("stock-md", stock_md_messages))
        print(
            f"  open: {[(k, [round(x) for x in v[-1]]) for k, v in opens.items()]}; {_load()}",
            flush=True,
        )

    results: dict[str, list[StreamResult]] = {
        "ours": [],
        "stock": [],
        "app": [],
        "app+history": [],
    }
    for r in range(runs):
        for label, kind, hist in (
            ("ours", "ours", 0),
            ("stock", "stock", 0),
            ("app", "app", 0),
            ("app+history", "app", history),
        ):
            if kind == "stock" and r >= stock_runs:
                continue
            tokens = stock_n if kind == "stock" else n
            res = await run_stream(
                kind, tokens, rate, hist, stock_timeout if kind == "stock" else 30
            )
            results[label].append(res)
            print(
                f"  run {r + 1} {label:13s} effective {_fmt(res.effective)} tok/s, "
                f"lag {_fmt(res.lag_ms)} ms, stall {_fmt(res.stall_ms)} ms "
                f"(CPU {res.stall_cpu_ms:.0f} ms), "
                f"CPU {res.cpu_us_per_token:.0f} µs/token, fifths "
                f"{[round(f) for f in res.fifths_us]} µs/token; {_load()} {res.note}",
                flush=True,
            )

    def med(label: str, attr: str) -> float:
        return _med([getattr(x, attr) for x in results[label]])

    stock_what = f"median of {stock_runs}" if stock_runs > 1 else "1 run"
    if stock_n != n:
        stock_what += f", {stock_n:,} tokens"
    print()
    print(f"## Streaming {n:,} tokens at {rate:,.0f} tok/s ({_load()} at the end)")
    print()
    print(
        f"| metric | ours (median of {runs}) | stock MarkdownStream ({stock_what}) | ours / stock | goal |"
    )
    print("|---|---|---|---|---|")
    eo, es = med("ours", "effective"), med("stock", "effective")
    print(
        f"| effective rate, tok/s | {_fmt(eo)} ({eo / rate:.0%}) | {_fmt(es)} ({es / rate:.0%}) "
        f"| {eo / es:.1f}× | ≥ {0.95 * rate:,.0f} (95%) |"
    )
    lo, ls = med("ours", "lag_ms"), med("stock", "lag_ms")
    print(f"| last token → painted, ms | {_fmt(lo)} | {_fmt(ls)} | {lo / ls:.3f} | ≤ 50 |")
    so, ss = med("ours", "stall_ms"), med("stock", "stall_ms")
    print(f"| worst event-loop stall, ms | {_fmt(so)} | {_fmt(ss)} | {so / ss:.2f} | ≤ 50 |")
    sco, scs = med("ours", "stall_cpu_ms"), med("stock", "stall_cpu_ms")
    print(f"| CPU used during that stall, ms | {_fmt(sco)} | {_fmt(scs)} | | |")
    go, gs = med("ours", "growth"), med("stock", "growth")
    print(f"| CPU/token last fifth ÷ first fifth | {go:.2f} | {gs:.2f} | | ≤ 1.2 |")
    co, cs = med("ours", "cpu_us_per_token"), med("stock", "cpu_us_per_token")
    print(f"| CPU per token, µs | {co:.0f} | {cs:.0f} | {co / cs:.2f} | |")
    print()
    ea, eh = med("app", "effective"), med("app+history", "effective")
    ca, ch = med("app", "cpu_us_per_token"), med("app+history", "cpu_us_per_token")
    print(
        f"## The chat screen's widgets, empty vs {history} earlier 1,000-token answers "
        f"(median of {runs})"
    )
    print()
    print("| metric | empty | with history | ratio | goal |")
    print("|---|---|---|---|---|")
    print(f"| effective rate, tok/s | {_fmt(ea)} | {_fmt(eh)} | {eh / ea:.0%} | ≥ 90% |")
    print(f"| CPU per token, µs | {ca:.0f} | {ch:.0f} | {ch / ca:.2f} | |")
    la, lh = med("app", "lag_ms"), med("app+history", "lag_ms")
    sa, sh = med("app", "stall_ms"), med("app+history", "stall_ms")
    print(f"| last token → painted, ms | {_fmt(la)} | {_fmt(lh)} | | ≤ 50 |")
    print(f"| worst stall, ms | {_fmt(sa)} | {_fmt(sh)} | | ≤ 50 |")
    ga, gh = med("app", "growth"), med("app+history", "growth")
    print(f"| CPU/token last fifth ÷ first fifth | {ga:.2f} | {gh:.2f} | | ≤ 1.2 |")
    print()
    print(f"## Opening a saved conversation (median of {runs})")
    print()
    print("| widgets | messages | end of last answer painted, ms | rendering settled, ms |")
    print("|---|---|---|---|")
    for key, label, count in (
        ("ours", "MarkdownMessage", n_open),
        ("static-rich", "Static(rich Markdown)", n_open),
        ("stock-md", "stock Textual Markdown", stock_md_messages),
    ):
        painted = _med([p for p, _ in opens[key]])
        settled = _med([s for _, s in opens[key]])
        print(f"| {label} | {count} | {_fmt(painted)} | {_fmt(settled)} |")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="reduced run (< 60 s)")
    parser.add_argument("--runs", type=int, default=3, help="runs of ours (median)")
    parser.add_argument(
        "--stock-runs",
        type=int,
        default=1,
        help="runs of stock MarkdownStream, interleaved with ours (each ~3.5 min at 20k tokens)",
    )
    parser.add_argument(
        "--stock-tokens",
        type=int,
        default=0,
        help="tokens for stock runs (default: as many as ours; fewer is reported as such)",
    )
    parser.add_argument("--rate", type=float, default=5000.0, help="source tokens/s")
    asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
