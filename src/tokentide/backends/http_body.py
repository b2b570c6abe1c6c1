"""Reading a response body that can never grow past a limit, compressed or not.

httpx's ``aiter_bytes`` inflates each network chunk whole: one 10 KB chunk of a gzip
bomb becomes 10 MB in memory before anyone can count it, and a 10 MB bomb body becomes
10 GB.  :func:`aiter_bounded` reads the *raw* bytes instead and inflates them itself
with ``zlib``'s ``max_length``, at most :data:`STEP` bytes at a time, so nothing is ever
expanded more than one step past the limit.  The same reader serves the streaming path
(SSE/NDJSON lines), the non-streaming ``create`` and error bodies.

Only ``gzip`` and ``deflate`` (and no encoding) are read: the transport asks for nothing
else (``Accept-Encoding: gzip, deflate``), and a body in another encoding is a
:class:`~tokentide.errors.ProtocolError`.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncGenerator, Callable, Iterator
from contextlib import aclosing

import httpx

from tokentide.errors import BackendError, ProtocolError

__all__ = ["ACCEPT_ENCODING", "STEP", "aiter_bounded", "read_bounded"]

ACCEPT_ENCODING = "gzip, deflate"
STEP = 64 * 1024
"""Most bytes one inflate call may produce."""

_AUTO_WBITS = 32 + zlib.MAX_WBITS  # a gzip or a zlib header, detected
_RAW_WBITS = -zlib.MAX_WBITS  # deflate without a header, which some servers send


class _Inflater:
    """Incremental gzip/deflate decoding whose output per call is bounded."""

    __slots__ = ("_decoder", "_encoding", "_fallback", "_server")

    def __init__(self, encoding: str, server: str) -> None:
        self._encoding = encoding
        self._server = server
        self._decoder = zlib.decompressobj(_AUTO_WBITS)
        self._fallback = encoding == "deflate"  # until the header has been read

    def feed(self, data: bytes, room: int) -> Iterator[bytes]:
        """Inflated pieces of ``data``; stops once more than ``room`` bytes came out
        (the caller sees the total pass its limit), never producing more than
        ``room + 1`` bytes in all."""
        decoder = self._decoder
        while True:
            want = min(STEP, room + 1)
            try:
                out = decoder.decompress(data, want)
            except zlib.error as error:
                if self._fallback:  # "deflate" sent as raw deflate: retry without header
                    self._fallback = False
                    self._decoder = decoder = zlib.decompressobj(_RAW_WBITS)
                    continue
                raise ProtocolError(
                    f"{self._server} sent a body that is not valid {self._encoding} ({error}).",
                    server=self._server,
                ) from None
            self._fallback = False
            data = decoder.unconsumed_tail
            if out:
                yield out
                room -= len(out)
                if room < 0:
                    return
            if len(out) < want or decoder.eof:  # all input used, nothing pending
                return


def _encoding_of(response: httpx.Response, server: str) -> str:
    encoding = response.headers.get("content-encoding", "").strip().lower()
    if encoding in ("", "identity"):
        return ""
    if encoding in ("gzip", "x-gzip", "deflate"):
        return "deflate" if encoding == "deflate" else "gzip"
    raise ProtocolError(
        f"{server} sent a body with content-encoding {encoding[:60]!r}, which tokentide "
        f"did not ask for (it asks for {ACCEPT_ENCODING}).",
        server=server,
    )


async def aiter_bounded(
    response: httpx.Response,
    limit: int,
    server: str,
    on_limit: Callable[[], BackendError] | None = None,
) -> AsyncGenerator[bytes, None]:
    """The decoded body in pieces, at most ``limit`` bytes in all.

    When the body is longer, the part up to the limit is yielded and then
    ``on_limit()`` is raised, or, without ``on_limit``, the body is simply cut there.
    """
    encoding = _encoding_of(response, server)
    source: AsyncGenerator[bytes, None] = response.aiter_raw()  # type: ignore[assignment]
    async with aclosing(source) as raw_chunks:
        if not encoding:  # the hot path of streaming: count and pass on
            received = 0
            async for raw in raw_chunks:
                received += len(raw)
                if received > limit:
                    if keep := len(raw) - (received - limit):
                        yield raw[:keep]
                    if on_limit is None:
                        return
                    raise on_limit()
                yield raw
            return
        inflater = _Inflater(encoding, server)
        produced = 0
        async for raw in raw_chunks:
            for piece in inflater.feed(raw, limit - produced):
                produced += len(piece)
                if produced > limit:
                    if keep := len(piece) - (produced - limit):
                        yield piece[:keep]
                    if on_limit is None:
                        return
                    raise on_limit()
                yield piece


async def read_bounded(
    response: httpx.Response,
    limit: int,
    server: str,
    on_limit: Callable[[], BackendError] | None = None,
) -> bytes:
    """The whole decoded body (see :func:`aiter_bounded`).  Without ``on_limit`` a
    transport error ends the body where it broke: a cut error body still says something."""
    pieces: list[bytes] = []
    try:
        async with aclosing(aiter_bounded(response, limit, server, on_limit)) as body:
            async for piece in body:
                pieces.append(piece)
    except (httpx.HTTPError, ProtocolError):
        if on_limit is not None:
            raise
    return b"".join(pieces)
