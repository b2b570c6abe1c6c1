"""A paced OpenAI-style SSE source for end-to-end benchmarks in a real terminal.

Serves ``POST /v1/chat/completions``: the configured tokens as chat chunks at a fixed rate
(every token due by now goes out in one write, so the rate holds whatever the scheduler
does), then a finish chunk and ``[DONE]``.  :attr:`PacedSource.last_sent` is the
``time.monotonic()`` at which the last token's write was handed to the socket.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from benchmarks.sse_source import serve_in_thread

__all__ = ["PacedSource", "serve_paced"]


class PacedSource:
    def __init__(self, tokens: Sequence[str], rate: float) -> None:
        self.events = [
            b"data: "
            + json.dumps({"choices": [{"index": 0, "delta": {"content": t}}]}).encode()
            + b"\n\n"
            for t in tokens
        ]
        self.rate = rate
        self.last_sent: float | None = None
        self.url = ""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.decode("latin-1").split("\r\n")[1:]:
                if line.lower().startswith("content-length:"):
                    length = int(line.split(":", 1)[1])
            if length:
                await reader.readexactly(length)
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"
            )
            start = time.monotonic()
            sent = 0
            total = len(self.events)
            while sent < total:
                due = min(total, int((time.monotonic() - start) * self.rate) + 1)
                if due > sent:
                    writer.write(b"".join(self.events[sent:due]))
                    await writer.drain()
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
def serve_paced(tokens: Sequence[str], rate: float) -> Iterator[PacedSource]:
    source = PacedSource(tokens, rate)
    with serve_in_thread(source.handle) as port:
        source.url = f"http://127.0.0.1:{port}/v1"
        yield source
