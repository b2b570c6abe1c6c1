"""A raw asyncio HTTP server that streams a pre-built OpenAI-style SSE body as fast as the
socket takes it (64 KiB writes), so benchmarks measure the client, not the server.

    POST /n/<N>/v1/chat/completions      N tokens (the count rides in the base URL)

Each token is one ``data: {"choices":[{"index":0,"delta":{"content":"tok "}}]}`` event;
a finish chunk and ``data: [DONE]`` end the stream.  The body is close-delimited.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

__all__ = ["body_for", "serve_in_thread", "serve_source"]

_cache: dict[int, bytes] = {}


def body_for(tokens: int) -> bytes:
    if tokens not in _cache:
        words = ["tok", " en", " stream", "ing", " fast", ",", " and", " more", "\n"]
        parts = []
        for index in range(tokens):
            chunk = {"choices": [{"index": 0, "delta": {"content": words[index % len(words)]}}]}
            parts.append(b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n")
        done = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        parts.append(b"data: " + json.dumps(done).encode() + b"\n\ndata: [DONE]\n\n")
        _cache[tokens] = b"".join(parts)
    return _cache[tokens]


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        path = lines[0].split(" ")[1] if " " in lines[0] else "/"
        parts = path.split("/")
        tokens = int(parts[2]) if len(parts) > 2 and parts[1] == "n" else 100_000
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                key, value = line.split(":", 1)
                headers[key.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        if length:
            await reader.readexactly(length)
        body = body_for(tokens)
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"cache-control: no-cache\r\nconnection: close\r\n\r\n"
        )
        view = memoryview(body)
        for start in range(0, len(body), 65536):
            writer.write(view[start : start + 65536])
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


@contextmanager
def serve_in_thread(
    handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> Iterator[int]:
    """Run an asyncio TCP server for ``handler`` on 127.0.0.1 in a thread; yields its port."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    servers: list[asyncio.Server] = []

    async def start() -> None:
        servers.append(await asyncio.start_server(handler, "127.0.0.1", 0))
        ready.set()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield int(servers[0].sockets[0].getsockname()[1])
    finally:
        loop.call_soon_threadsafe(servers[0].close)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


@contextmanager
def serve_source() -> Iterator[str]:
    """Run the server in a thread; yields ``http://127.0.0.1:PORT`` (append ``/n/N/v1``)."""
    with serve_in_thread(_handle) as port:
        yield f"http://127.0.0.1:{port}"
