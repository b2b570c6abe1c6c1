"""A paced OpenAI-style SSE source for end-to-end benchmarks in a real terminal.

Serves ``POST /v1/chat/completions``: the configured tokens as chat chunks at a fixed rate
(every token due by now goes out in one write, so the rate holds whatever the scheduler
does), then a finish chunk and ``[DONE]``.  Times are ``time.monotonic()``:

* :attr:`PacedSource.first_sent`: the first token's write (``on_start`` is called just
  before it, in the server's thread: a benchmark samples the client's CPU there);
* :attr:`PacedSource.sent_at`: for each index in ``marks``, when the write holding that
  token was handed to the socket (mid-stream markers);
* :attr:`PacedSource.last_sent`: when the last token's write was handed to the socket.

One source serves one request; a second request is streamed again (times overwritten).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager

from benchmarks.sse_source import serve_in_thread

__all__ = ["PacedSource", "serve_paced"]


class PacedSource:
    def __init__(
        self,
        tokens: Sequence[str],
        rate: float,
        *,
        marks: Iterable[int] = (),
        on_start: Callable[[], None] | None = None,
    ) -> None:
        self.events = [
            b"data: "
            + json.dumps({"choices": [{"index": 0, "delta": {"content": t}}]}).encode()
            + b"\n\n"
            for t in tokens
        ]
        self.rate = rate
        self.marks = sorted(set(marks))
        self.on_start = on_start
        self.first_sent: float | None = None
        self.sent_at: dict[int, float] = {}
        self.last_sent: float | None = None
        self.url = ""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line = head.split(b"\r\n", 1)[0]
            length = 0
            for line in head.decode("latin-1").split("\r\n")[1:]:
                if line.lower().startswith("content-length:"):
                    length = int(line.split(":", 1)[1])
            if length:
                await reader.readexactly(length)
            if not request_line.startswith(b"POST ") or b"/chat/completions" not in request_line:
                # Anything else (a model list, say) must not count as the answer.
                writer.write(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
                return
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"
            )
            if self.on_start is not None:
                self.on_start()
            start = self.first_sent = time.monotonic()
            sent = 0
            total = len(self.events)
            pending = list(self.marks)
            while sent < total:
                due = min(total, int((time.monotonic() - start) * self.rate) + 1)
                if due > sent:
                    writer.write(b"".join(self.events[sent:due]))
                    await writer.drain()
                    now = time.monotonic()
                    while pending and pending[0] < due:
                        self.sent_at[pending.pop(0)] = now
                    sent = due
                await asyncio.sleep(0.001)
            self.last_sent = time.monotonic()
            done = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
            writer.write(b"data: " + json.dumps(done).encode() + b"\n\ndata: [DONE]\n\n")
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


@contextmanager
def serve_paced(
    tokens: Sequence[str],
    rate: float,
    *,
    marks: Iterable[int] = (),
    on_start: Callable[[], None] | None = None,
) -> Iterator[PacedSource]:
    source = PacedSource(tokens, rate, marks=marks, on_start=on_start)
    with serve_in_thread(source.handle) as port:
        source.url = f"http://127.0.0.1:{port}/v1"
        yield source
