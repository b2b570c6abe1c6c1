"""Soak (issue 7, reliability.md §3 C4): many start/cancel cycles through
:class:`Generation` against the loopback LLM server, cancelling at varied moments —
before the producer runs, while connecting, before the first byte, after k tokens,
during keep-alive gaps, twice in a row (the httpx #3782 pattern), on a broken
connection — then:

* no connection of the backend's httpx pool is left active;
* file descriptors back to the baseline ±2 (``/proc/self/fd``);
* no ``ResourceWarning`` (recorded explicitly, and warnings are errors anyway);
* RSS growth under 5 MB (``/proc/self/statm``).

The server runs in a subprocess so its sockets do not count in our descriptors.
``TIDE_LONG_TESTS=1`` runs 1,000 cycles; otherwise 250.
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tokentide.backends.base import GenerationRequest
from tokentide.backends.registry import create_backend
from tokentide.config.model import Deadlines, Profile
from tokentide.generation import Generation, State

ROOT = Path(__file__).resolve().parents[2]
LONG = os.environ.get("TIDE_LONG_TESTS") == "1"
CYCLES = 1000 if LONG else 250
ASK = GenerationRequest.from_prompt("hello")
SERVER = (
    "import sys\n"
    "from tests.servers.llm_server import serve\n"
    "with serve() as s:\n"
    "    print(s.base, flush=True)\n"
    "    sys.stdin.read()\n"
)

if not sys.platform.startswith("linux"):
    pytest.skip("reads /proc/self", allow_module_level=True)


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdin is not None
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("http://127.0.0.1:"), line
        yield line
    finally:
        proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def url_with(base: str, **knobs: Any) -> str:
    return base + "/k/" + "&".join(f"{k}={v}" for k, v in knobs.items()) + "/v1"


KINDS = [
    "before-start",
    "while-connecting",
    "before-first-byte",
    "after-k-tokens",
    "keepalive-gap",
    "twice",
    "complete",
    "broken",
]


async def cycle(kind: str, base: str, rng: random.Random, backends: dict[str, Any]) -> str:
    """One start/cancel cycle; returns the generation's final state."""
    if kind == "before-first-byte":
        knobs: dict[str, Any] = {"first_delay": 5}
    elif kind == "keepalive-gap":
        knobs = {"tokens": 50, "keepalive": 2, "delay": 0.003}
    elif kind == "broken":
        knobs = {"abort_at": 2, "partial": 1}
    elif kind == "complete":
        knobs = {"tokens": 5}
    else:
        knobs = {"tokens": 200, "delay": 0.001}
    key = "&".join(f"{k}={v}" for k, v in knobs.items())
    backend = backends.get(key)
    if backend is None:
        profile = Profile(
            name="soak", api="openai", url=url_with(base, **knobs), model="m",
            deadlines=Deadlines(connect=5, first_token=None, idle=None), max_retries=0,
        )  # fmt: skip
        backend = backends[key] = create_backend(profile, {})
    gen = Generation(backend, ASK)
    gen.start()
    if kind == "before-start":
        gen.cancel()
    elif kind == "while-connecting":
        for _ in range(rng.randint(1, 4)):
            await asyncio.sleep(0)
        gen.cancel()
    elif kind == "before-first-byte":
        await asyncio.sleep(rng.uniform(0.001, 0.01))
        gen.cancel()
    elif kind in ("after-k-tokens", "keepalive-gap"):
        k = rng.randint(1, 8)
        async for _ in gen.batches():
            if gen.stats.tokens >= k:
                break
        gen.cancel()
    elif kind == "twice":
        for _ in range(rng.randint(0, 3)):
            await asyncio.sleep(0)
        gen.cancel()
        await asyncio.sleep(0)
        gen.cancel()
    async with asyncio.timeout(10):
        state = await gen.wait()
    return state.value


def pool_connections(backends: dict[str, Any]) -> tuple[int, int]:
    """(active, idle) connections over every backend's httpx pool."""
    active = idle = 0
    for backend in backends.values():
        client = backend._client
        if client is None:
            continue
        pool = client._transport._pool
        for connection in pool.connections:
            if connection.is_idle():
                idle += 1
            else:
                active += 1
    return active, idle


@pytest.mark.timeout(300 if LONG else 90)
async def test_start_cancel_soak(server_url: str) -> None:
    rng = random.Random(1234)
    backends: dict[str, Any] = {}
    states: dict[str, int] = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # Warm up: imports, the loop's selectors, the first pools.
        for kind in KINDS * 3:
            await cycle(kind, server_url, rng, backends)
        for backend in backends.values():
            await backend.aclose()
        backends.clear()
        gc.collect()
        fds, rss = open_fds(), rss_bytes()
        started = time.perf_counter()
        for i in range(CYCLES):
            kind = KINDS[i % len(KINDS)] if i % 3 else rng.choice(KINDS)
            state = await cycle(kind, server_url, rng, backends)
            states[state] = states.get(state, 0) + 1
        elapsed = time.perf_counter() - started
        active, idle = pool_connections(backends)
        for backend in backends.values():
            await backend.aclose()
        backends.clear()
        gc.collect()
        await asyncio.sleep(0)
        fds_after, rss_after = open_fds(), rss_bytes()
    resource = [w for w in caught if issubclass(w.category, ResourceWarning)]
    report = (
        f"{CYCLES} cycles in {elapsed:.1f} s; states {states}; pool active {active} idle "
        f"{idle}; fds {fds} -> {fds_after}; rss {rss / 2**20:.1f} -> {rss_after / 2**20:.1f} MiB"
    )
    print(report)
    assert active == 0, report
    assert abs(fds_after - fds) <= 2, report
    assert rss_after - rss < 5_000_000, report
    assert not resource, [str(w.message) for w in resource]
    assert not caught, [str(w.message) for w in caught]
    assert states.get(State.STOPPED.value, 0) > CYCLES // 2, report


async def test_a_stop_at_any_step_leaves_no_orphaned_connection(server_url: str) -> None:
    """Stop (once, or twice in a row) after every number of event-loop steps from the
    start, on a long and a short answer: whichever point inside httpx/httpcore the
    cancellation lands on, the pool ends with no busy connection (httpcore #1093 leaves
    one ``NEW`` or ``ACTIVE``, sometimes still owned by the finished request;
    ``backends/_pool.py`` reclaims it)."""
    found: list[str] = []
    for knobs in ({"tokens": 200, "delay": 0.001}, {"tokens": 5}):
        profile = Profile(
            name="soak", api="openai", url=url_with(server_url, **knobs), model="m",
            deadlines=Deadlines(connect=5, first_token=None, idle=None), max_retries=0,
        )  # fmt: skip
        backend: Any = create_backend(profile, {})
        try:
            for steps in range(40):
                for twice in (False, True):
                    gen = Generation(backend, ASK).start()
                    for _ in range(steps):
                        await asyncio.sleep(0)
                    gen.cancel()
                    if twice:
                        # What a raw second task.cancel() does; Generation.cancel itself
                        # is idempotent, so go around it.
                        await asyncio.sleep(0)
                        if gen._producer is not None:
                            gen._producer.cancel()
                    async with asyncio.timeout(10):
                        await gen.wait()
                    active, _ = pool_connections({"b": backend})
                    if active:
                        found.append(f"{knobs} after {steps} steps (twice={twice})")
                        await backend.aclose()
        finally:
            await backend.aclose()
    assert not found, found
