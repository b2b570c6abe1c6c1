"""The fault matrix (issue 7, reliability.md §2 S6–S13, §6): every fault a server, a
network or a local function can produce, driven through :class:`Generation` (the path
every consumer uses) with short deadlines, ends in the documented state:

* a *typed* tokentide error (the specific subclass), or the documented success;
* within its deadline + 1 s (and, for deadlines, not before it);
* the partial text kept in ``gen.text``;
* a user-facing message (``str(error)``) without a traceback or raw control bytes,
  naming the server.

Faults come from the loopback LLM server's knobs, a byte-exact raw server, the TCP
fault proxy (Toxiproxy's toxics), the gRPC test server and the example predictors.
A subset runs through the real ``tide ask`` process (exit code, stderr).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
import sys
import time
import tracemalloc
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.servers.fault_proxy import Toxic, fault_proxy
from tests.servers.llm_server import DEFAULT_TEXT, LLMServer, split_tokens
from tests.servers.raw import LAST_CHUNK, _read_request, chunk, head, raw_server
from tests.servers.triton_grpc_server import serve as serve_grpc
from tokentide.backends.base import Backend, GenerationRequest
from tokentide.backends.events import Retrying
from tokentide.backends.registry import create_backend
from tokentide.config.model import Deadlines, Limits, Profile
from tokentide.errors import (
    BackendError,
    BackendTimeout,
    CannotConnect,
    FirstTokenTimeout,
    HTTPStatusError,
    IdleTimeout,
    IncompleteStream,
    LimitExceeded,
    LocalFunctionError,
    Overloaded,
    ProtocolError,
    ServerError,
)
from tokentide.generation import Generation, RetryPolicy, State

ROOT = Path(__file__).resolve().parents[2]
PREDICTORS = ROOT / "examples" / "predictors"
ASK = GenerationRequest.from_prompt("hello")
TOKENS = split_tokens(DEFAULT_TEXT)
FIRST = 1.0
IDLE = 1.0
DEADLINES = Deadlines(connect=2.0, first_token=FIRST, idle=IDLE)
SLACK = 1.0
"""A deadline fires within this much of its limit (issue 7)."""

CONTROL = {chr(c) for c in range(0x20) if c not in (0x0A,)} | {chr(0x7F)}
CONTROL |= {chr(c) for c in range(0x80, 0xA0)}


def upto(k: int) -> str:
    return "".join(TOKENS[:k])


# -- servers ------------------------------------------------------------------------------


def free_port() -> int:
    """A port nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Sequence:
    url: str = ""
    arrivals: list[float] = field(default_factory=list)
    """``loop.time()`` of each request's arrival."""


@contextlib.asynccontextmanager
async def sequence_server(*responses: bytes) -> AsyncIterator[Sequence]:
    """Answer the i-th request with ``responses[i]`` (the last one repeats), then close."""
    seq = Sequence()
    arrivals = seq.arrivals

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await _read_request(reader)  # all of it: unread bytes would turn FIN into RST
            arrivals.append(asyncio.get_running_loop().time())
            writer.write(responses[min(len(seq.arrivals), len(responses)) - 1])
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    seq.url = f"http://127.0.0.1:{port}"
    try:
        yield seq
    finally:
        srv.close()
        await srv.wait_closed()


def fixed(status: int, body: bytes, ctype: str, *extra: str) -> bytes:
    lines = [f"HTTP/1.1 {status} X", f"content-type: {ctype}", f"content-length: {len(body)}"]
    lines += [*extra, "connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def sse_ok(*texts: str) -> bytes:
    events = b"".join(
        b"data: " + json.dumps({"choices": [{"delta": {"content": t}}]}).encode() + b"\n\n"
        for t in texts
    )
    events += b'data: {"choices":[{"delta":{},"finish_reason":"stop"}]}\n\n' + b"data: [DONE]\n\n"
    return fixed(200, events, "text/event-stream")


# -- profiles per dialect ------------------------------------------------------------------

DIALECTS = ["openai", "tgi", "anthropic", "triton-http", "substrate", "muna", "ollama"]


def profile_for(api: str, url: str, **extra: Any) -> Profile:
    """A profile for ``api`` at the loopback server's ``url`` (knobs already in it)."""
    keys: dict[str, Any] = {"deadlines": DEADLINES, "max_retries": 0}
    if api == "openai":
        url += "/v1"
        keys["model"] = "m"
    elif api == "anthropic":
        keys["model"] = "claude-test"
    elif api == "triton-http":
        keys["model"] = "toy"
    elif api == "ollama":
        keys["model"] = "llama3.2"
    elif api == "muna":
        keys["options"] = {"tag": "@acme/llm"}
    keys.update(extra)
    return Profile(name="fault", api=api, url=url, **keys)


def server_name_of(backend: Backend, profile: Profile) -> list[str]:
    """What a message may say to name the server: its host:port, file or target."""
    names = []
    if profile.url:
        names.append(profile.url.split("/k/")[0].rstrip("/").removesuffix("/v1"))
    if "target" in profile.options:
        names.append(Path(str(profile.options["target"]).split(":")[0]).name)
    return names


# -- running one case ---------------------------------------------------------------------


@dataclass
class Outcome:
    gen: Generation
    error: BackendError | None
    elapsed: float
    retries: list[Retrying] = field(default_factory=list)


async def run_generation(
    backend: Backend, *, retry: RetryPolicy | None = None, timeout: float = 20.0
) -> Outcome:
    gen = Generation(backend, ASK, deadlines=DEADLINES, retry=retry)
    error: BackendError | None = None
    retries: list[Retrying] = []
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout), gen:
            try:
                async for batch in gen.batches():
                    retries += [e for e in batch if isinstance(e, Retrying)]
            except BackendError as raised:
                error = raised
    finally:
        await backend.aclose()
    elapsed = time.perf_counter() - started
    assert gen.error is error, "the raised error must be the generation's error"
    return Outcome(gen, error, elapsed, retries)


def check_message(error: BaseException, names: list[str]) -> None:
    message = str(error)
    assert "Traceback" not in message, message
    assert not set(message) & CONTROL, repr(message)
    assert any(name in message for name in names), f"{message!r} names none of {names}"


@dataclass(frozen=True)
class Expect:
    error: type[BackendError] | None
    """The exact class of the error (None: the answer succeeds)."""
    text: str | None = None
    """``gen.text`` afterwards (None: any prefix of the full answer)."""
    budget: float = FIRST + SLACK
    """Seconds the case may take."""
    at_least: float = 0.0
    """A deadline must not fire before this."""
    says: tuple[str, ...] = ()
    """Substrings of ``str(error)``."""


def verify(out: Outcome, expect: Expect, names: list[str], full: str = DEFAULT_TEXT) -> None:
    gen = out.gen
    if expect.error is None:
        assert out.error is None, f"unexpected {type(out.error).__name__}: {out.error}"
        assert gen.state is State.DONE
    else:
        assert out.error is not None, f"no error; state {gen.state}, text {gen.text!r}"
        assert type(out.error) is expect.error, f"{type(out.error).__name__}: {out.error}"
        assert gen.state is State.ERROR
        check_message(out.error, names)
        for part in expect.says:
            assert part in str(out.error), str(out.error)
    if expect.text is not None:
        assert gen.text == expect.text
    else:
        assert full.startswith(gen.text), gen.text
    assert out.elapsed <= expect.budget, f"took {out.elapsed:.2f} s > {expect.budget} s"
    assert out.elapsed >= expect.at_least, f"fired early: {out.elapsed:.2f} s"
    RESULTS.append((expect.error.__name__ if expect.error else "ok", round(out.elapsed, 3)))


RESULTS: list[tuple[str, float]] = []


# -- 1. loopback server knobs, per dialect -------------------------------------------------

STALL_FIRST = Expect(
    FirstTokenTimeout, "", budget=FIRST + SLACK, at_least=FIRST, says=("first-token",)
)
STALL_IDLE = Expect(IdleTimeout, upto(2), budget=IDLE + SLACK + 0.5, at_least=IDLE, says=("idle",))

KNOB_CASES: list[tuple[str, str, dict[str, Any], Expect]] = []
NO_TERMINATOR = ("triton-http", "muna")
"""Protocols without an end marker: a clean end after a whole event *is* the end."""
for _api in DIALECTS:
    if _api != "substrate":  # its server has only truncate=1; the proxy cuts it instead
        KNOB_CASES += [
            (
                f"{_api}-truncated-chunked-body",
                _api,
                {"abort_at": 2, "partial": 1},
                Expect(IncompleteStream, upto(2)),
            ),
            (
                f"{_api}-close-without-terminator",
                _api,
                {"truncate_at": 2},
                Expect(None if _api in NO_TERMINATOR else IncompleteStream, upto(2)),
            ),
        ]
    KNOB_CASES += [
        (f"{_api}-in-band-error", _api, {"error_at": 2, "error_message": "GPU on fire"},
         Expect(ServerError, upto(2), says=("GPU on fire",))),
        (f"{_api}-stall-after-first-token", _api, {"stall_at": 2}, STALL_IDLE),
        (f"{_api}-slow-drip", _api, {"delay": 0.25, "tokens": 6},
         Expect(None, "w0 w1 w2 w3 w4 w5", budget=4.0)),
        (f"{_api}-http-500-json", _api, {"status": 500},
         Expect(HTTPStatusError, "", says=("HTTP 500",))),
    ]  # fmt: skip
KNOB_CASES += [
    ("openai-stall-before-first-token", "openai", {"stall_at": 0}, STALL_FIRST),
    ("tgi-stall-before-first-token", "tgi", {"stall_at": 0}, STALL_FIRST),
    ("anthropic-stall-before-first-token", "anthropic", {"stall_at": 0}, STALL_FIRST),
    ("ollama-stall-before-first-token", "ollama", {"stall_at": 0}, STALL_FIRST),
    ("substrate-close-without-graph-result", "substrate", {"truncate": 1},
     Expect(IncompleteStream, DEFAULT_TEXT)),
    ("openai-keepalives-do-not-count", "openai", {"keepalive": 3, "first_delay": 0.2},
     Expect(None, DEFAULT_TEXT)),
    ("openai-stall-headers", "openai", {"delay_headers": 30}, STALL_FIRST),
    ("openai-html-200", "openai", {"html": 1},
     Expect(ProtocolError, "", says=("HTML page",))),
    ("tgi-html-200", "tgi", {"html": 1}, Expect(ProtocolError, "")),
    ("ollama-html-200", "ollama", {"html": 1}, Expect(ProtocolError, "")),
    ("openai-wrong-content-type", "openai", {"ctype": "text/plain"},
     Expect(ProtocolError, "", says=("content type",))),
    ("anthropic-wrong-content-type", "anthropic", {"ctype": "application/octet-stream"},
     Expect(ProtocolError, "")),
    ("openai-400-json", "openai", {"status": 400, "error_message": "bad request body"},
     Expect(HTTPStatusError, "", says=("HTTP 400",))),
    ("openai-401", "openai", {"status": 401}, Expect(HTTPStatusError, "", says=("API key",))),
    ("openai-404", "openai", {"status": 404}, Expect(HTTPStatusError, "", says=("Check the url",))),
    ("openai-502-html", "openai",
     {"status": 502, "status_body": "<html><title>Bad Gateway</title></html>",
      "status_ctype": "text/html"},
     Expect(HTTPStatusError, "", says=("HTTP 502", "Bad Gateway"))),
    ("tgi-504-text", "tgi",
     {"status": 504, "status_body": "upstream timed out", "status_ctype": "text/plain"},
     Expect(HTTPStatusError, "", says=("upstream timed out",))),
    ("openai-422-empty", "openai", {"status": 422, "status_body": "", "status_ctype": "text/plain"},
     Expect(HTTPStatusError, "", says=("empty body",))),
    ("tgi-429-no-retry-after", "tgi", {"status": 429}, Expect(Overloaded, "", says=("busy",))),
    ("anthropic-529", "anthropic", {"status": 529}, Expect(Overloaded, "")),
    ("openai-429-retry-after-too-long", "openai", {"status": 429, "retry_after": 600},
     Expect(Overloaded, "", says=("600",))),
    ("tgi-in-band-overloaded-first", "tgi", {"overloaded": 1}, Expect(ServerError, "")),
    ("anthropic-in-band-overloaded", "anthropic", {"error_at": 1, "error_kind": "overloaded_error"},
     Expect(ServerError, upto(1))),
]  # fmt: skip
for _shape in ("object", "llamacpp", "tgi", "string", "event"):
    KNOB_CASES.append(
        (f"openai-in-band-error-{_shape}", "openai",
         {"error_at": 1, "error_shape": _shape, "error_message": "shape " + _shape},
         Expect(ServerError, upto(1), says=("shape " + _shape,)))
    )  # fmt: skip
for _api in ("substrate", "muna", "triton-http"):
    KNOB_CASES.append((f"{_api}-stall-before-first-token", _api, {"stall_at": 0}, STALL_FIRST))


@pytest.mark.timeout(15)
@pytest.mark.parametrize(
    ("api", "knobs", "expect"),
    [pytest.param(api, knobs, expect, id=name) for name, api, knobs, expect in KNOB_CASES],
)
async def test_loopback_fault(
    server: LLMServer, api: str, knobs: dict[str, Any], expect: Expect
) -> None:
    profile = profile_for(api, server.url(**knobs))
    backend = create_backend(profile, {})
    out = await run_generation(backend)
    full = "w0 w1 w2 w3 w4 w5" if "tokens" in knobs else DEFAULT_TEXT
    verify(out, expect, server_name_of(backend, profile), full)


# -- 2. byte-exact faults (raw server) and connection faults -------------------------------

EV1 = chunk(b'data: {"choices":[{"delta":{"content":"Hel"}}]}\n\n')
HALF = chunk(b'data: {"choices":[{"delta":{"con')


@pytest.mark.timeout(15)
@pytest.mark.parametrize(
    ("steps", "expect"),
    [
        pytest.param(("reset",), Expect(CannotConnect, ""), id="reset-before-headers"),
        pytest.param(("close",), Expect(CannotConnect, ""), id="close-before-headers"),
        pytest.param((head(), EV1, HALF, "reset"), Expect(IncompleteStream, "Hel"), id="reset-mid-event"),
        pytest.param((head(), EV1, HALF, "close"), Expect(IncompleteStream, "Hel"), id="fin-mid-chunk"),
        pytest.param(
            (head(chunked=False), b'data: {"choices":[{"delta":{"content":"Hel"}}]}\n\ndata: {"cho', "close"),
            Expect(IncompleteStream, "Hel"), id="close-delimited-cut-mid-event",
        ),
        pytest.param(
            (head(), EV1, LAST_CHUNK, "close"), Expect(IncompleteStream, "Hel"),
            id="clean-end-without-done",
        ),
        pytest.param(
            (head(), chunk(b"data: {\"choices\": [\n\n"), LAST_CHUNK),
            Expect(ProtocolError, "", says=("malformed JSON",)), id="malformed-json",
        ),
        pytest.param(
            (head(), EV1, chunk(b"data: <html>oops</html>\n\n"), LAST_CHUNK),
            Expect(ProtocolError, "Hel"), id="malformed-json-after-text",
        ),
        pytest.param(
            (head(), EV1, *[s for _ in range(12) for s in (0.15, chunk(b": ping\n\n"))], "hang"),
            Expect(IdleTimeout, "Hel", budget=IDLE + SLACK, at_least=IDLE),
            id="keepalives-do-not-reset-idle",
        ),
        pytest.param(
            (head(), *[s for _ in range(12) for s in (0.15, chunk(b": ping\n\n"))], "hang"),
            Expect(FirstTokenTimeout, "", at_least=FIRST), id="keepalives-do-not-count-as-first-token",
        ),
        pytest.param(
            (head(), chunk(b'data: {"choices":[{"delta":{"content":"\\u001b]0;PWN\\u0007"}}]}\n\n'),
             chunk(b'data: {"error":{"message":"bad \\u001b[2J\\u0007 news\\nsecond line"}}\n\n'),
             LAST_CHUNK),
            Expect(ServerError, None), id="hostile-error-message",
        ),
    ],
)  # fmt: skip
async def test_raw_fault(steps: tuple[Any, ...], expect: Expect) -> None:
    async with raw_server(*steps) as raw:
        profile = profile_for("openai", raw.url)
        backend = create_backend(profile, {})
        out = await run_generation(backend)
    full = "Hel" if expect.text is None else DEFAULT_TEXT
    verify(
        out, expect, server_name_of(backend, profile), "\x1b]0;PWN\x07" if full == "Hel" else full
    )


@pytest.mark.timeout(15)
async def test_connection_refused() -> None:
    profile = profile_for("openai", f"http://127.0.0.1:{free_port()}")
    backend = create_backend(profile, {})
    out = await run_generation(backend)
    verify(out, Expect(CannotConnect, "", budget=1.0), server_name_of(backend, profile))
    assert out.error is not None and out.error.exit_code == 3


@pytest.mark.timeout(15)
async def test_connect_to_blackhole_times_out() -> None:
    """A listener that never accepts (backlog full) is 'connect deadline'; here a server
    that accepts and never answers is the first-token deadline."""
    async with raw_server("hang") as raw:
        profile = profile_for("openai", raw.url)
        backend = create_backend(profile, {})
        out = await run_generation(backend)
    verify(out, STALL_FIRST, server_name_of(backend, profile))


# -- 3. retries -----------------------------------------------------------------------------

RETRY = RetryPolicy(max_retries=2, initial=0.05, cap=0.2)


@pytest.mark.timeout(15)
@pytest.mark.parametrize("status", [429, 503])
async def test_retry_after_then_success(status: int) -> None:
    busy = fixed(status, b'{"error":{"message":"busy"}}', "application/json", "retry-after: 0.3")
    async with sequence_server(busy, busy, sse_ok("Hel", "lo")) as seq:
        profile = profile_for("openai", seq.url, max_retries=2)
        backend = create_backend(profile, {})
        out = await run_generation(backend, retry=RETRY)
    verify(out, Expect(None, "Hello", budget=0.6 + FIRST + SLACK), [])
    assert out.gen.stats.attempts == 3 and len(seq.arrivals) == 3
    assert [r.delay for r in out.retries] == [0.3, 0.3]
    assert seq.arrivals[1] - seq.arrivals[0] >= 0.29 and seq.arrivals[2] - seq.arrivals[1] >= 0.29


@pytest.mark.timeout(15)
@pytest.mark.parametrize("status", [429, 503])
async def test_retry_after_exhausted_is_overloaded(status: int) -> None:
    date = "Wed, 21 Oct 2015 07:28:00 GMT"  # in the past: retry at once
    busy = fixed(status, b"overloaded", "text/plain", f"retry-after: {date}")
    async with sequence_server(busy) as seq:
        profile = profile_for("openai", seq.url, max_retries=2)
        backend = create_backend(profile, {})
        out = await run_generation(backend, retry=RETRY)
    verify(out, Expect(Overloaded, "", says=(f"HTTP {status}",)), server_name_of(backend, profile))
    assert len(seq.arrivals) == 3 and len(out.retries) == 2


@pytest.mark.timeout(15)
async def test_no_retry_after_content() -> None:
    """An overloaded error after the first token is never retried (text would repeat)."""
    broken = fixed(
        200,
        b'data: {"choices":[{"delta":{"content":"Hel"}}]}\n\n'
        b'data: {"error":"overloaded","error_type":"overloaded"}\n\n',
        "text/event-stream",
    )
    async with sequence_server(broken, sse_ok("never")) as seq:
        profile = profile_for("openai", seq.url, max_retries=2)
        out = await run_generation(create_backend(profile, {}), retry=RETRY)
    verify(out, Expect(ServerError, "Hel"), [seq.url])
    assert len(seq.arrivals) == 1


# -- 4. the fault proxy (Toxiproxy's toxics) -------------------------------------------------


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    ("api", "toxics", "knobs", "expect"),
    [
        pytest.param("openai", (Toxic("slicer", average_size=1, size_variation=0),), {},
                     Expect(None, DEFAULT_TEXT), id="openai-slicer-1-byte"),
        pytest.param("anthropic", (Toxic("slicer", average_size=3, size_variation=2, delay=200),), {},
                     Expect(None, DEFAULT_TEXT, budget=4.0), id="anthropic-slicer-delay"),
        pytest.param("tgi", (Toxic("latency", latency=150, jitter=50),), {},
                     Expect(None, DEFAULT_TEXT), id="tgi-latency-jitter"),
        pytest.param("ollama", (Toxic("bandwidth", rate=2),), {"tokens": 6},
                     Expect(None, "w0 w1 w2 w3 w4 w5", budget=4.0), id="ollama-bandwidth-2kbs"),
        pytest.param("openai", (Toxic("slow_close", delay=500),), {},
                     Expect(None, DEFAULT_TEXT), id="openai-slow-close"),
        pytest.param("openai", (Toxic("timeout", timeout=0),), {}, STALL_FIRST, id="openai-timeout-hang"),
        pytest.param("tgi", (Toxic("timeout", timeout=200),), {},
                     Expect(CannotConnect, ""), id="tgi-timeout-close"),
        pytest.param("openai", (Toxic("limit_data", bytes=700),), {"tokens": 30},
                     Expect(IncompleteStream, None), id="openai-limit-data"),
        pytest.param("substrate", (Toxic("reset_peer", bytes=600),), {"tokens": 30},
                     Expect(IncompleteStream, None), id="substrate-reset-peer-mid-stream"),
        pytest.param("substrate", (Toxic("limit_data", bytes=500),), {"tokens": 30},
                     Expect(IncompleteStream, None), id="substrate-limit-data"),
        pytest.param("ollama", (Toxic("reset_peer", bytes=400),), {"tokens": 30},
                     Expect(IncompleteStream, None), id="ollama-reset-peer-mid-stream"),
        pytest.param("openai", (Toxic("reset_peer", bytes=0),), {},
                     Expect(CannotConnect, ""), id="openai-reset-peer-before-headers"),
        pytest.param("openai", (Toxic("timeout", timeout=0, stream="upstream"),), {},
                     STALL_FIRST, id="openai-request-never-arrives"),
    ],
)  # fmt: skip
async def test_proxy_fault(
    server: LLMServer, api: str, toxics: tuple[Toxic, ...], knobs: dict[str, Any], expect: Expect
) -> None:
    async with fault_proxy(server.url(**knobs), *toxics) as proxy:
        profile = profile_for(api, proxy.url)
        backend = create_backend(profile, {})
        out = await run_generation(backend)
    full = " ".join(f"w{i}" for i in range(knobs["tokens"])) if "tokens" in knobs else DEFAULT_TEXT
    verify(out, expect, server_name_of(backend, profile), full)
    if expect.error is IncompleteStream:
        assert out.gen.text, "some text arrived before the break"


# -- 5. size limits, with bounded memory ----------------------------------------------------


@pytest.mark.timeout(30)
async def test_huge_event_is_limited_with_bounded_memory() -> None:
    """An 8 MiB single line against the default 1 MiB event limit."""
    piece = b"x" * (256 * 1024)
    steps = [head(), EV1, chunk(b'data: {"choices":[{"delta":{"content":"')]
    steps += [chunk(piece)] * 32
    async with raw_server(*steps, LAST_CHUNK) as raw:
        profile = profile_for("openai", raw.url, limits=Limits())
        backend = create_backend(profile, {})
        tracemalloc.start()
        try:
            out = await run_generation(backend)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    verify(out, Expect(LimitExceeded, "Hel", says=("1,048,576",)), server_name_of(backend, profile))
    assert peak < 3 * (1 << 20) + (2 << 20), f"peak {peak / 2**20:.1f} MiB"


@pytest.mark.timeout(30)
@pytest.mark.parametrize("api", ["openai", "ollama"])
async def test_huge_answer_is_limited(server: LLMServer, api: str) -> None:
    cap = 64 * 1024
    profile = profile_for(
        api, server.url(tokens=3000), limits=Limits(max_event_bytes=4096, max_answer_bytes=cap)
    )
    backend = create_backend(profile, {})
    tracemalloc.start()
    try:
        out = await run_generation(backend)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    verify(out, Expect(LimitExceeded, None, says=("65,536",)), server_name_of(backend, profile),
           " ".join(f"w{i}" for i in range(3000)))  # fmt: skip
    assert 0 < len(out.gen.text) <= cap
    assert peak < 4 << 20, f"peak {peak / 2**20:.1f} MiB"


@pytest.mark.timeout(15)
async def test_huge_token_over_event_limit(server: LLMServer) -> None:
    profile = profile_for(
        "tgi", server.url(text="ok " + "y" * 20_000), limits=Limits(max_event_bytes=4096)
    )
    backend = create_backend(profile, {})
    out = await run_generation(backend)
    verify(out, Expect(LimitExceeded, "ok"), server_name_of(backend, profile), "ok " + "y" * 20_000)


# -- 6. gRPC (triton-grpc) -------------------------------------------------------------------


@pytest.mark.timeout(15)
@pytest.mark.parametrize(
    ("params", "expect"),
    [
        pytest.param({"status": "UNAVAILABLE"}, Expect(CannotConnect, ""), id="unavailable"),
        pytest.param({"status": "RESOURCE_EXHAUSTED"}, Expect(Overloaded, ""), id="resource-exhausted"),
        pytest.param({"status": "DEADLINE_EXCEEDED", "status_at": 1}, Expect(BackendTimeout, "w0"),
                     id="deadline-exceeded"),
        pytest.param({"status": "UNAVAILABLE", "status_at": 2}, Expect(IncompleteStream, "w0 w1"),
                     id="unavailable-mid-stream"),
        pytest.param({"error_at": 2, "error_message": "model exploded"},
                     Expect(ServerError, "w0 w1", says=("model exploded",)), id="in-stream-error"),
        pytest.param({"hang": True}, STALL_FIRST, id="hang"),
        pytest.param({"stall_at": 2}, STALL_IDLE.__class__(IdleTimeout, "w0 w1", IDLE + SLACK, IDLE),
                     id="stall-after-first-token"),
        pytest.param({"delay": 0.25, "tokens": 5}, Expect(None, "w0 w1 w2 w3 w4", budget=4.0),
                     id="slow-drip"),
    ],
)  # fmt: skip
async def test_grpc_fault(params: dict[str, Any], expect: Expect) -> None:
    async with serve_grpc() as grpc_server:
        profile = Profile(
            name="fault", api="triton-grpc", url=grpc_server.target, model="toy",
            params={"tokens": 5, **params}, deadlines=DEADLINES, max_retries=0,
        )  # fmt: skip
        backend = create_backend(profile, {})
        out = await run_generation(backend)
    verify(out, expect, [grpc_server.target], "w0 w1 w2 w3 w4")


@pytest.mark.timeout(15)
async def test_grpc_connection_refused() -> None:
    target = f"127.0.0.1:{free_port()}"
    profile = Profile(
        name="fault", api="triton-grpc", url=target, model="toy", deadlines=DEADLINES, max_retries=0
    )
    out = await run_generation(create_backend(profile, {}))
    verify(out, Expect(CannotConnect, "", budget=DEADLINES.connect + SLACK), [target])  # type: ignore[operator]


# -- 7. local backends -----------------------------------------------------------------------


@pytest.mark.timeout(15)
async def test_local_generator_that_raises() -> None:
    profile = Profile(
        name="fault", api="local", options={"target": f"{PREDICTORS / 'flaky.py'}:generate"},
        deadlines=DEADLINES, max_retries=0,
    )  # fmt: skip
    backend = create_backend(profile, {})
    out = await run_generation(backend)
    expect = Expect(LocalFunctionError, "I was going to say something clever",
                    says=("the model ran out of ideas",))  # fmt: skip
    verify(out, expect, ["flaky.py"], expect.text or "")


@pytest.mark.timeout(15)
async def test_local_generator_that_hangs() -> None:
    profile = Profile(
        name="fault", api="local", options={"target": f"{PREDICTORS / 'hang.py'}:generate"},
        deadlines=DEADLINES, max_retries=0,
    )  # fmt: skip
    backend = create_backend(profile, {})
    namespace = backend.function.__globals__  # type: ignore[attr-defined]
    try:
        out = await run_generation(backend)
    finally:
        namespace["resume"].set()  # let the stalled thread finish
    verify(
        out, Expect(IdleTimeout, "Thinking", IDLE + SLACK, IDLE), ["hang.py"], "Thinking ... done."
    )
    assert await asyncio.to_thread(namespace["closed"].wait, 5), "the generator was never closed"


# -- 8. the real `tide ask` process ---------------------------------------------------------


def write_config(env: dict[str, str], url: str, retries: int) -> None:
    Path(env["TIDE_CONFIG"]).write_text(
        f'[profiles.f]\napi = "openai"\nurl = "{url}"\nmodel = "m"\nmax_retries = {retries}\n'
        f"connect_timeout = 2\nfirst_token_timeout = {FIRST}\nidle_timeout = {IDLE}\n"
    )


async def tide_ask(env: dict[str, str], url: str, *, retries: int = 0) -> tuple[int, bytes, str]:
    write_config(env, url, retries)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tokentide", "ask", "hello", "-P", "f",
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    async with asyncio.timeout(30):
        stdout, stderr = await proc.communicate()
    assert proc.returncode is not None
    text = stderr.decode("utf-8", "replace")
    assert "Traceback" not in text, text
    assert not set(text) & (CONTROL - {"\r"}), repr(text)
    return proc.returncode, stdout, text


@pytest.mark.timeout(40)
async def test_tide_ask_exit_codes(server: LLMServer, env: dict[str, str]) -> None:
    code, out, err = await tide_ask(env, f"http://127.0.0.1:{free_port()}/v1")
    assert (code, out) == (3, b"") and "Cannot connect" in err
    code, out, err = await tide_ask(env, server.url(status=500) + "/v1")
    assert (code, out) == (4, b"") and "HTTP 500" in err
    code, out, err = await tide_ask(env, server.url(stall_at=2) + "/v1")
    assert (code, out) == (5, b"The quick\n") and "idle" in err
    code, out, err = await tide_ask(env, server.url(stall_at=0) + "/v1")
    assert (code, out) == (5, b"") and "first-token" in err
    code, out, err = await tide_ask(env, server.url(abort_at=3, partial=1) + "/v1")
    assert (code, out) == (4, b"The quick brown\n") and "broke" in err
    code, out, err = await tide_ask(env, server.url(html=1) + "/v1")
    assert code == 4 and "HTML page" in err
    for message in (err,):
        assert "127.0.0.1" in message


@pytest.mark.timeout(40)
@pytest.mark.parametrize("status", [429, 503])
async def test_tide_ask_says_it_retries(env: dict[str, str], status: int) -> None:
    busy = fixed(status, b'{"error":{"message":"busy"}}', "application/json", "retry-after: 0.2")
    async with sequence_server(busy, sse_ok("Hel", "lo")) as seq:
        code, out, err = await tide_ask(env, seq.url + "/v1", retries=2)
    assert (code, out) == (0, b"Hello\n"), err
    assert "retrying in 0.2 s (attempt 2)" in err and "busy" in err
    assert len(seq.arrivals) == 2
    async with sequence_server(busy) as seq:
        code, out, err = await tide_ask(env, seq.url + "/v1", retries=1)
    assert code == 4 and out == b"" and err.count("retrying") == 1, err
    assert f"HTTP {status}" in err and len(seq.arrivals) == 2
