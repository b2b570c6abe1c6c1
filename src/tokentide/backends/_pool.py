"""Work around httpcore 1.0.9 leaking pool connections when a request is cancelled.

A stop (Esc, Ctrl-C, a deadline) cancels the task that is inside httpx.  httpcore
protects its clean-up with anyio's ``CancelScope(shield=True)``, which does not hold
off a native ``asyncio`` ``task.cancel()``.  So when the cancellation lands

* after the TCP connection was made but before httpcore marks it active (its
  ``_state_lock``), the connection stays in the pool as ``NEW`` with no request;
* inside the closing of a response (the connection's own ``_response_closed``), the
  connection stays ``ACTIVE``, and if it landed in the pool's ``PoolByteStream.aclose``
  the finished request also stays registered in the pool, owning it;

never reused, never closed, holding a socket and a pool slot until the client closes
(encode/httpcore#1093; fixes in unreleased PRs #1094/#1099; httpx itself no longer has
releases).

:func:`reclaim` finishes that clean-up after a request of ours ends abnormally: the
request of our own response, if its stream is closed but the pool still lists it, is
dropped; then every connection that is neither idle nor closed and that no pending
request owns is taken out of the pool and closed (the rule of those PRs).  It reads
httpcore's internals defensively: if they change, it does nothing.
"""

from __future__ import annotations

import contextlib
from typing import Any

import httpx


def _pool(client: httpx.AsyncClient) -> Any:
    pool = getattr(getattr(client, "_transport", None), "_pool", None)
    connections = getattr(pool, "_connections", None)
    requests = getattr(pool, "_requests", None)
    if not isinstance(connections, list) or not isinstance(requests, list):
        return None
    return pool


def _orphans(client: httpx.AsyncClient) -> list[Any]:
    """Connections of ``client``'s pool that are busy but owned by no request."""
    pool = _pool(client)
    if pool is None:
        return []
    owned = {id(r.connection) for r in pool._requests if getattr(r, "connection", None)}
    return [
        c for c in pool._connections if id(c) not in owned and not c.is_idle() and not c.is_closed()
    ]


def _forget_closed_request(pool: Any, response: httpx.Response) -> None:
    """Drop ``response``'s pool request if its stream was closed but the pool, whose
    clean-up was interrupted, still lists it."""
    stream = getattr(getattr(response.stream, "_stream", None), "_httpcore_stream", None)
    request = getattr(stream, "_pool_request", None)
    if getattr(stream, "_closed", False) and request is not None and request in pool._requests:
        pool._requests.remove(request)


async def reclaim(client: httpx.AsyncClient, response: httpx.Response | None = None) -> None:
    """Finish the clean-up a cancellation interrupted (see the module docstring)."""
    pool = _pool(client)
    if pool is None:
        return
    if response is not None:
        _forget_closed_request(pool, response)
    found = _orphans(client)
    for connection in found:
        pool._connections.remove(connection)  # synchronously: nothing else can take it
    assign = getattr(pool, "_assign_requests_to_connections", None)
    expired: list[Any] = list(assign()) if found and assign is not None else []
    for connection in [*found, *expired]:
        with contextlib.suppress(Exception):
            await connection.aclose()
