"""The loopback server for the comparison tests.

It is the shared deterministic server (:mod:`tests.servers.llm_server`), served through a
thin ASGI layer that adds what a comparison needs and the shared server does not model:

* a non-streaming request answers only after the time the streamed answer would take
  (``first_delay`` or ``delay`` for the first token, ``delay`` for each further one), as
  a real server that generates the whole answer before replying;
* knobs for one mode only: ``stream_<knob>`` applies to streaming requests and
  ``create_<knob>`` to non-streaming ones (e.g. ``create_status=429``), so one side of a
  comparison can fail while the other does not.

Everything else (dialects, knobs, records) is the shared server's.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import uvicorn

from tests.servers.llm_server import LLMServer, split_tokens

Scope = dict[str, Any]


def _knobs(raw_path: str) -> dict[str, str]:
    knobs: dict[str, str] = {}
    path = raw_path
    while path.startswith("/k/"):
        segment, _, rest = path[3:].partition("/")
        knobs.update(urllib.parse.parse_qsl(segment, keep_blank_values=True))
        path = "/" + rest
    return knobs


class ModeAware:
    """ASGI app: per-mode knobs and a realistic non-streaming delay, then the shared app."""

    def __init__(self, server: LLMServer) -> None:
        self.server = server
        self.arrived: list[tuple[str | None, bool]] = []
        """(tag, streaming) of every request, in order of arrival."""
        self.condition = threading.Condition()

    def wait_for(self, tag: str, count: int = 1, timeout: float = 10.0) -> None:
        """Block until ``count`` requests tagged ``tag`` have arrived."""
        with self.condition:
            if not self.condition.wait_for(
                lambda: sum(1 for t, _ in self.arrived if t == tag) >= count, timeout
            ):
                raise TimeoutError(f"{count} request(s) tagged {tag!r} did not arrive")

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.server.app(scope, receive, send)
            return
        messages = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        raw = b"".join(m.get("body", b"") for m in messages)
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {}
        raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        knobs = _knobs(raw_path)
        streaming = bool(isinstance(body, dict) and body.get("stream"))
        prefix = "stream_" if streaming else "create_"
        extra = {k[len(prefix) :]: v for k, v in knobs.items() if k.startswith(prefix)}
        if not streaming and "delay_headers" not in extra and "delay" in knobs:
            extra["delay_headers"] = str(_answer_time(knobs, body))
        if extra:
            segment = "/k/" + urllib.parse.urlencode(extra, quote_via=urllib.parse.quote, safe="")
            scope = {**scope, "raw_path": (segment + raw_path).encode("latin-1")}
        replay = list(messages)
        with self.condition:
            self.arrived.append((knobs.get("tag"), streaming))
            self.condition.notify_all()

        async def receive_again() -> Any:
            return replay.pop(0) if replay else await receive()

        await self.server.app(scope, receive_again, send)


def _answer_time(knobs: dict[str, str], body: Any) -> float:
    """How long the streamed answer takes: first_delay/delay + delay × (tokens − 1)."""
    if "tokens" in knobs:
        count = int(knobs["tokens"])
    else:
        count = len(split_tokens(knobs.get("text", "The quick brown fox jumps over the lazy dog.")))
    limit = body.get("max_tokens") if isinstance(body, dict) else None
    if isinstance(limit, int) and 0 <= limit < count:
        count = limit
    if count == 0:
        return 0.0
    delay = float(knobs.get("delay", 0) or 0)
    first = float(knobs.get("first_delay", delay) or 0)
    return first + delay * (count - 1)


class _Uvicorn(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()


@contextlib.contextmanager
def serve_mode_aware() -> Iterator[tuple[LLMServer, ModeAware]]:
    """The shared server behind :class:`ModeAware`, on 127.0.0.1 in a thread."""
    state = LLMServer()
    front = ModeAware(state)
    config = uvicorn.Config(
        front,
        host="127.0.0.1",
        port=0,
        ws="none",
        lifespan="off",
        interface="asgi3",
        log_level="critical",
        access_log=False,
        timeout_graceful_shutdown=2,
    )
    server = _Uvicorn(config)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"compare-server-{port}", daemon=True
    )
    thread.start()
    try:
        if not server.ready.wait(10):
            raise RuntimeError("the loopback server did not start within 10 s")
        state.base = f"http://127.0.0.1:{port}"
        yield state, front
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture(scope="module")
def _loopback_pair() -> Iterator[tuple[LLMServer, ModeAware]]:
    with serve_mode_aware() as pair:
        yield pair
    assert not pair[0].errors, pair[0].errors[0]


@pytest.fixture
def loopback(_loopback_pair: tuple[LLMServer, ModeAware]) -> LLMServer:
    """The server: ``loopback.url(tokens=20, delay=0.05) + "/v1"`` is an OpenAI base URL."""
    return _loopback_pair[0]


@pytest.fixture
def wait_request(_loopback_pair: tuple[LLMServer, ModeAware]) -> Callable[..., None]:
    """``wait_request(tag, count=1, timeout=10)``: block until that many requests arrived."""
    return _loopback_pair[1].wait_for
