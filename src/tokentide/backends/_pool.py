"""Work around httpcore 1.0.9 leaking pool connections when a request is cancelled.

A stop (Esc, Ctrl-C, a deadline) cancels the task that is inside httpx.  If the
cancellation lands after the TCP connection was made but before httpcore marks it
active (its ``_state_lock``), or while a response is being closed, the connection stays
in the pool as ``NEW``/``ACTIVE`` with no request that owns it: never reused, never
closed, holding a socket and a pool slot until the client closes (encode/httpcore#1093,
fixed upstream only in unreleased PRs #1094/#1099; httpx itself no longer has releases).

:func:`reclaim_orphans` applies the rule of those PRs after a request of ours ends
abnormally: a connection that is neither idle nor closed and that no pending request
owns is taken out of the pool and closed.  It reads httpcore's internals defensively: if
they change, it does nothing.
"""

from __future__ import annotations

import contextlib
from typing import Any

import httpx


def orphans(client: httpx.AsyncClient) -> list[Any]:
    """Connections of ``client``'s pool that are busy but owned by no request."""
    pool = getattr(getattr(client, "_transport", None), "_pool", None)
    connections = getattr(pool, "_connections", None)
    requests = getattr(pool, "_requests", None)
    if not isinstance(connections, list) or not isinstance(requests, list):
        return []
    owned = {id(r.connection) for r in requests if getattr(r, "connection", None) is not None}
    return [c for c in connections if id(c) not in owned and not c.is_idle() and not c.is_closed()]


async def reclaim_orphans(client: httpx.AsyncClient) -> int:
    """Remove and close the orphaned connections; returns how many there were."""
    found = orphans(client)
    if not found:
        return 0
    pool = client._transport._pool  # type: ignore[attr-defined]
    for connection in found:
        pool._connections.remove(connection)  # synchronously: nothing else can take it
    for connection in found:
        with contextlib.suppress(Exception):
            await connection.aclose()
    return len(found)
