"""Snapshot of a finished rich Markdown message (pytest-textual-snapshot)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.app import App, ComposeResult
from textual.containers import VerticalScroll

from tokentide.tui.widgets.markdown_view import MarkdownMessage

MESSAGE = """# Streaming Markdown

Some **bold**, some *italic*, `inline code` and a [link](https://example.com/docs).

- a list item
- another with `code`
  - nested

> A block quote.

| tokens | seconds | rate |
|-------:|--------:|------|
| 5,000 | 1.0 | fast |
| 20,000 | 4.0 | steady |

```python
def rate(tokens: int, seconds: float) -> float:
    return tokens / seconds
```

Done.
"""


class FinishedMessageApp(App[None]):
    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield MarkdownMessage(MESSAGE)


class StreamedMessageApp(App[None]):
    """The same message, streamed in small chunks and finished."""

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield MarkdownMessage(streaming=True, id="live")

    def on_mount(self) -> None:
        live = self.query_one("#live", MarkdownMessage)
        for start in range(0, len(MESSAGE), 7):
            live.append(MESSAGE[start : start + 7])
        live.finish()


def test_finished_message(snap_compare: Callable[..., Any]) -> None:
    assert snap_compare(FinishedMessageApp(), terminal_size=(90, 40))


def test_streamed_message_looks_the_same(snap_compare: Callable[..., Any]) -> None:
    assert snap_compare(StreamedMessageApp(), terminal_size=(90, 40))
