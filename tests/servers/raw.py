"""A byte-exact HTTP/1.1 server for broken framing: it answers every request with a fixed
script of bytes, pauses and connection endings, in the test's own event loop.

    from tests.servers.raw import chunk, head, raw_server

    async with raw_server(
        head(ctype="text/event-stream"),          # status line + headers (chunked body)
        chunk(b'data: {"a":1}\\n\\n'),              # one HTTP chunk
        0.01,                                     # a float: pause that many seconds
        chunk(b'data: {"b"'),                     # half an event ...
        "reset",                                  # ... then a TCP RST
    ) as server:
        url = server.url                          # http://127.0.0.1:PORT
        ...
        await server.disconnected.wait()          # the client closed its end ("hang")

Steps: ``bytes`` are written as they are (use :func:`chunk` for chunked bodies and
:data:`LAST_CHUNK` to end one properly); a ``float`` sleeps; the strings ``"reset"``
(RST: SO_LINGER 0), ``"close"`` (FIN, also the default after the last step), and
``"hang"`` (send nothing more until the client goes away) end the response.
``server.requests`` holds each raw request (head and body bytes) and
``server.disconnected_at`` the ``loop.time()`` at which a hanging response saw the
client leave.  ``raw_server(..., tls=context)`` serves HTTPS with that server-side
``ssl.SSLContext`` (``tests/servers/hostile.py`` makes a self-signed one); a client that
refuses the certificate never gets as far as sending a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

__all__ = ["LAST_CHUNK", "RawServer", "chunk", "head", "raw_server"]

LAST_CHUNK = b"0\r\n\r\n"

Step = bytes | float | str


def head(
    status: int = 200,
    *,
    ctype: str | None = "text/event-stream",
    chunked: bool = True,
    headers: tuple[tuple[str, str], ...] = (),
    reason: str = "OK",
) -> bytes:
    """A response head.  ``chunked=False`` gives a body delimited by connection close."""
    lines = [f"HTTP/1.1 {status} {reason}"]
    if ctype is not None:
        lines.append(f"content-type: {ctype}")
    if chunked:
        lines.append("transfer-encoding: chunked")
    else:
        lines.append("connection: close")
    lines.extend(f"{k}: {v}" for k, v in headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def chunk(data: bytes) -> bytes:
    """``data`` as one HTTP/1.1 chunk."""
    return b"%x\r\n%s\r\n" % (len(data), data)


@dataclass
class RawServer:
    url: str = ""
    requests: list[bytes] = field(default_factory=list)
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)
    disconnected_at: float | None = None


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    data = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in data.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    return data + (await reader.readexactly(length) if length else b"")


@contextlib.asynccontextmanager
async def raw_server(*steps: Step, tls: ssl.SSLContext | None = None) -> AsyncIterator[RawServer]:
    state = RawServer()
    tasks: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        ending = "close"
        try:
            try:
                state.requests.append(await _read_request(reader))
            except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
                return
            for step in steps:
                if isinstance(step, bytes):
                    writer.write(step)
                    await writer.drain()
                elif isinstance(step, float | int):
                    await asyncio.sleep(step)
                else:
                    ending = step
                    break
            if ending == "hang":
                with contextlib.suppress(ConnectionError):
                    while await reader.read(65536):
                        pass
                state.disconnected_at = asyncio.get_running_loop().time()
                state.disconnected.set()
            elif ending == "reset":
                sock = writer.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except ConnectionError:
            state.disconnected.set()
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            tasks.discard(task)

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=tls)
    port = server.sockets[0].getsockname()[1]
    state.url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    try:
        yield state
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        for task in list(tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await server.wait_closed()
