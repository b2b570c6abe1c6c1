"""A fault-injecting TCP proxy on 127.0.0.1 speaking Toxiproxy's toxic vocabulary.

Toxiproxy itself is a Go binary that the project cannot install (reliability.md §5), so
this is the same idea in asyncio, run in the test's own event loop::

    from tests.servers.fault_proxy import Toxic, fault_proxy

    async with fault_proxy(upstream_url, Toxic("slicer", average_size=3)) as proxy:
        url = proxy.url                      # http://127.0.0.1:PORT, same path as upstream
        ...
        proxy.toxics = [Toxic("reset_peer", bytes=300)]   # change toxics between requests

Toxics (``stream`` is ``"downstream"``, server→client, by default, or ``"upstream"``):

==============  ==========================================================================
``latency``     delay every chunk by ``latency`` ms ± ``jitter`` ms
``bandwidth``   at most ``rate`` KB/s
``slow_close``  after the server closes, wait ``delay`` ms before closing the client side
``timeout``     pass nothing; close both sides after ``timeout`` ms (0: hang until the
                client goes away, bounded by the proxy's lifetime)
``slicer``      cut chunks into ``average_size`` ± ``size_variation`` byte pieces,
                ``delay`` µs apart
``limit_data``  close both sides (FIN) once ``bytes`` bytes have passed
``reset_peer``  send a TCP RST to the client once ``bytes`` bytes have passed
==============  ==========================================================================

Every loop is bounded: a connection lives at most ``lifetime`` seconds (default 30),
and leaving the ``async with`` closes the listener and every connection.
``proxy.connections`` counts accepted connections, ``proxy.open`` the live ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["FaultProxy", "Toxic", "fault_proxy"]

Kind = Literal[
    "latency", "bandwidth", "slow_close", "timeout", "slicer", "limit_data", "reset_peer"
]

_READ = 65536


@dataclass(frozen=True)
class Toxic:
    kind: Kind
    stream: Literal["downstream", "upstream"] = "downstream"
    latency: float = 0.0
    """ms (latency)"""
    jitter: float = 0.0
    """ms (latency)"""
    rate: float = 0.0
    """KB/s (bandwidth)"""
    delay: float = 0.0
    """ms (slow_close), µs (slicer)"""
    timeout: float = 0.0
    """ms (timeout); 0 hangs"""
    average_size: int = 1
    size_variation: int = 0
    bytes: int = 0
    """limit_data / reset_peer threshold"""


class _Reset(Exception):
    pass


class _Close(Exception):
    pass


@dataclass
class FaultProxy:
    upstream: tuple[str, int]
    toxics: list[Toxic] = field(default_factory=list)
    lifetime: float = 30.0
    url: str = ""
    connections: int = 0
    open: int = 0
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def _of(self, stream: str) -> list[Toxic]:
        return [t for t in self.toxics if t.stream == stream]

    async def _pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        toxics: list[Toxic],
        client: asyncio.StreamWriter,
    ) -> None:
        passed = 0
        for toxic in toxics:
            if toxic.kind == "timeout":
                if toxic.timeout > 0:
                    await asyncio.sleep(toxic.timeout / 1000)
                    raise _Close
                await asyncio.Event().wait()  # hang; the lifetime bounds it
        while True:
            data = await reader.read(_READ)
            if not data:
                break
            pieces = [data]
            for toxic in toxics:
                if toxic.kind == "slicer":
                    pieces = [p for piece in pieces for p in self._slice(piece, toxic)]
            for piece in pieces:
                for toxic in toxics:
                    if toxic.kind == "latency":
                        jitter = toxic.jitter * (2 * self.rng.random() - 1)
                        await asyncio.sleep(max(0.0, toxic.latency + jitter) / 1000)
                    elif toxic.kind == "bandwidth" and toxic.rate > 0:
                        await asyncio.sleep(len(piece) / (toxic.rate * 1024))
                    elif toxic.kind == "slicer" and toxic.delay > 0:
                        await asyncio.sleep(toxic.delay / 1e6)
                for toxic in toxics:
                    if (
                        toxic.kind in ("limit_data", "reset_peer")
                        and passed + len(piece) >= toxic.bytes
                    ):
                        piece = piece[: max(0, toxic.bytes - passed)]
                        if piece:
                            writer.write(piece)
                            await writer.drain()
                        if toxic.kind == "reset_peer":
                            _reset(client)
                            raise _Reset
                        raise _Close
                passed += len(piece)
                writer.write(piece)
                await writer.drain()
        for toxic in toxics:
            if toxic.kind == "slow_close":
                await asyncio.sleep(toxic.delay / 1000)
        raise _Close

    def _slice(self, data: bytes, toxic: Toxic) -> list[bytes]:
        out = []
        i = 0
        while i < len(data):
            size = toxic.average_size + self.rng.randint(
                -toxic.size_variation, toxic.size_variation
            )
            size = max(1, size)
            out.append(data[i : i + size])
            i += size
        return out

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        self.open += 1
        server_w: asyncio.StreamWriter | None = None
        reset = False
        try:
            async with asyncio.timeout(self.lifetime):
                server_r, server_w = await asyncio.open_connection(*self.upstream)
                up = asyncio.ensure_future(
                    self._pipe(client_r, server_w, self._of("upstream"), client_w)
                )
                down = asyncio.ensure_future(
                    self._pipe(server_r, client_w, self._of("downstream"), client_w)
                )
                try:
                    done, _ = await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
                    for finished in done:
                        error = finished.exception()
                        reset = reset or isinstance(error, _Reset)
                finally:
                    for pipe in (up, down):
                        pipe.cancel()
                    for pipe in (up, down):
                        with contextlib.suppress(BaseException):
                            await pipe
        except (TimeoutError, ConnectionError, OSError):
            pass
        finally:
            for w in (client_w, server_w):
                if w is None:
                    continue
                if reset and w is client_w:
                    _reset(w)
                w.close()
                with contextlib.suppress(ConnectionError, OSError):
                    await w.wait_closed()
            self.open -= 1
            self._tasks.discard(task)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Make the next close send RST instead of FIN (SO_LINGER 0)."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


@contextlib.asynccontextmanager
async def fault_proxy(
    upstream_url: str, *toxics: Toxic, lifetime: float = 30.0
) -> AsyncIterator[FaultProxy]:
    """Proxy ``upstream_url`` (scheme://host:port/path) through the toxics; ``proxy.url``
    is the same URL with the proxy's host and port."""
    parts = urllib.parse.urlsplit(upstream_url)
    assert parts.hostname is not None and parts.port is not None
    proxy = FaultProxy((parts.hostname, parts.port), list(toxics), lifetime)
    server = await asyncio.start_server(proxy._handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    proxy.url = urllib.parse.urlunsplit(parts._replace(netloc=f"127.0.0.1:{port}"))
    try:
        yield proxy
    finally:
        server.close()
        for task in list(proxy._tasks):
            task.cancel()
        for task in list(proxy._tasks):
            with contextlib.suppress(BaseException):
                await task
        await server.wait_closed()
