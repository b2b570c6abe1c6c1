"""The stock baseline for bench_tmux_e2e: a minimal Textual app that streams an answer
into Textual's own ``Markdown`` widget through ``MarkdownStream``, one ``write`` per
token as oterm and toad do, inside an anchored ``VerticalScroll``.  Press ``g`` to start.

    python benchmarks/stock_markdown_app.py URL

A one-line status at the bottom says :data:`READY` once the first screen is up, so the
benchmark knows when to press ``g`` (as it waits for ``tide chat``'s Send button), and
nothing else: no timers, no footer, so its idle wakeups are Textual's own.
"""

from __future__ import annotations

import sys

from textual.app import App, ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Markdown, Static

from tokentide.backends.base import GenerationRequest
from tokentide.backends.events import TextDelta
from tokentide.backends.openai import OpenAIChatBackend
from tokentide.config.model import Profile
from tokentide.generation import Generation

READY = "STOCKREADY"


class StockApp(App[None]):
    BINDINGS = [("g", "go", "go")]  # noqa: RUF012
    CSS = "#status { dock: bottom; height: 1; }"

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="view"):
            yield Markdown("")
        yield Static("", id="status")

    def on_mount(self) -> None:
        self.query_one("#view", VerticalScroll).anchor()

    def on_ready(self) -> None:
        self.query_one("#status", Static).update(f"{READY} (g: start)")

    def action_go(self) -> None:
        self.run_worker(self.stream())

    async def stream(self) -> None:
        markdown = self.query_one(Markdown)
        writer = Markdown.get_stream(markdown)
        backend = OpenAIChatBackend(Profile(name="stock", api="openai", url=self.url), {})
        try:
            async with Generation(backend, GenerationRequest.from_prompt("go")) as gen:
                async for batch in gen.batches():
                    for event in batch:
                        if isinstance(event, TextDelta):
                            await writer.write(event.text)
        finally:
            await writer.stop()
            await backend.aclose()


if __name__ == "__main__":
    StockApp(sys.argv[1]).run()
