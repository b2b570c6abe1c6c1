"""The stock baseline for bench_tmux_e2e: a minimal Textual app that streams an answer
into Textual's own ``Markdown`` widget through ``MarkdownStream``, one ``write`` per
token as oterm and toad do, inside an anchored ``VerticalScroll``.  Press ``g`` to start.

    python benchmarks/stock_markdown_app.py URL
"""

from __future__ import annotations

import sys

from textual.app import App, ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Markdown

from tokentide.backends.base import GenerationRequest
from tokentide.backends.events import TextDelta
from tokentide.backends.openai import OpenAIChatBackend
from tokentide.config.model import Profile
from tokentide.generation import Generation


class StockApp(App[None]):
    BINDINGS = [("g", "go", "go")]  # noqa: RUF012

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="view"):
            yield Markdown("")

    def on_mount(self) -> None:
        self.query_one("#view", VerticalScroll).anchor()

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
