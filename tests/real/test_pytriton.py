"""A real Triton Inference Server (NVIDIA PyTriton, CPU) over gRPC and HTTP generate_stream.

The module-scoped fixture starts ``tests/real/pytriton_serve.py`` (about 7 s) with the
``LD_LIBRARY_PATH`` fix from ``real-servers.md`` §2, on free ports, and stops it with
SIGTERM.  Its PyTriton workspace lives in pytest's temporary directory; any new
``~/.cache/pytriton`` entry and the Python backend's ``/tmp/folder*`` copy of the model
are removed afterwards.

A PyTriton Python model cannot observe a cancellation (it keeps generating after the
client leaves), so these tests prove the *client* side of a stop (the stream ends within
100 ms and nothing is read after it); the server-side cancellation is proved against the
grpc.aio test server in ``tests/backends/test_triton_grpc.py``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pytriton")

from tokentide.backends.base import Backend, GenerationRequest
from tokentide.backends.events import Event, Finish, TextDelta
from tokentide.backends.registry import create_backend
from tokentide.config.model import Deadlines, Profile
from tokentide.errors import ConfigError, HTTPStatusError
from tokentide.generation import Generation, State

pytestmark = pytest.mark.real_server

SERVE = Path(__file__).with_name("pytriton_serve.py")
MODEL = "toy_stream"
WORDS = [
    "The",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "the",
    "lazy",
    "dog",
    ".",
    "Ça",
    "va",
    "très",
    "bien",
    ",",
    "日本語",
    "✓",
]
STOP_WITHIN = 0.100
READY_LINE = "successfully loaded 'toy_stream'"


def expected(count: int) -> str:
    return "".join(("" if i == 0 else " ") + WORDS[i % len(WORDS)] for i in range(count))


@dataclass(frozen=True)
class PyTriton:
    grpc: str
    http: str


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _cache_entries() -> set[Path]:
    cache = Path.home() / ".cache" / "pytriton"
    return set(cache.iterdir()) if cache.is_dir() else set()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the serve script (it stops tritonserver and the stub), then make sure its
    whole process group (it leads its own session) is gone."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
    pgid = process.pid
    deadline = time.monotonic() + 15
    sig = signal.SIGTERM
    while _group_alive(pgid):  # tritonserver is not our child: nothing to wait() on
        if time.monotonic() > deadline:
            if sig is signal.SIGKILL:
                break
            sig, deadline = signal.SIGKILL, time.monotonic() + 5
        os.killpg(pgid, sig)
        time.sleep(0.1)


def _remove_model_copies(workspace: Path) -> None:
    """Triton's Python backend copies each model to ``/tmp/folderXXXXXX`` (a fixed
    template) and leaves it there; remove the copies of *our* model (their config names
    our workspace)."""
    for copy in Path("/tmp").glob("folder*"):
        try:
            config = (copy / "config.pbtxt").read_text(errors="replace")
        except OSError:
            continue
        if f'"{workspace}"' in config:
            shutil.rmtree(copy, ignore_errors=True)


@pytest.fixture(scope="module")
def pytriton(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PyTriton]:
    folder = tmp_path_factory.mktemp("pytriton")
    http_port, grpc_port, metrics_port = _free_ports(3)
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(
        p for p in (libdir, env.get("LD_LIBRARY_PATH", "")) if p
    )
    before = _cache_entries()
    log_path = folder / "server.log"
    process = subprocess.Popen(
        [
            sys.executable,
            str(SERVE),
            "--http-port",
            str(http_port),
            "--grpc-port",
            str(grpc_port),
            "--metrics-port",
            str(metrics_port),
            "--workspace",
            str(folder / "workspace"),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    ready = threading.Event()

    def copy_log() -> None:  # keeps the pipe drained for the server's whole life
        assert process.stdout is not None
        with log_path.open("wb") as log:
            for line in process.stdout:
                log.write(line)
                log.flush()
                if READY_LINE.encode() in line:
                    ready.set()
        ready.set()  # the server exited: stop waiting

    reader = threading.Thread(target=copy_log, daemon=True)
    reader.start()
    try:
        if not ready.wait(90) or process.poll() is not None:
            pytest.fail(f"PyTriton did not start; log:\n{log_path.read_text()[-3000:]}")
        yield PyTriton(grpc=f"127.0.0.1:{grpc_port}", http=f"http://127.0.0.1:{http_port}")
    finally:
        _stop(process)
        reader.join(10)
        if process.stdout is not None:
            process.stdout.close()
        shutil.rmtree(folder / "workspace", ignore_errors=True)
        _remove_model_copies(folder / "workspace")
        for entry in _cache_entries() - before:
            shutil.rmtree(entry, ignore_errors=True)


@pytest.fixture
async def backends(pytriton: PyTriton) -> AsyncIterator[dict[str, Any]]:
    made: list[Backend] = []

    def grpc_backend(**keys: Any) -> Backend:
        params = keys.pop("params", {})
        profile = Profile(
            name="real-grpc",
            api="triton-grpc",
            url=pytriton.grpc,
            model=keys.pop("model", MODEL),
            max_tokens=keys.pop("max_tokens", None),
            params=params,
            deadlines=Deadlines(connect=5.0, first_token=30.0),
            options={"max_tokens_tensor": "max_tokens", **keys},
        )
        made.append(create_backend(profile, {}))
        return made[-1]

    def http_backend(**params: Any) -> Backend:
        profile = Profile(
            name="real-http",
            api="triton-http",
            url=pytriton.http,
            model=MODEL,
            params=params,
            deadlines=Deadlines(connect=5.0, first_token=30.0),
        )
        made.append(create_backend(profile, {}))
        return made[-1]

    yield {"grpc": grpc_backend, "http": http_backend}
    for backend in made:
        await backend.aclose()


async def events_of(backend: Backend, request: GenerationRequest) -> list[Event]:
    async with aclosing(backend.stream(request)) as stream:  # type: ignore[type-var]
        return [event async for event in stream]


def text_of(events: list[Event]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


async def test_grpc_streams_tokens(backends: dict[str, Any]) -> None:
    backend = backends["grpc"](max_tokens=6)
    events = await events_of(backend, GenerationRequest.from_prompt("Hello"))
    assert events == [
        TextDelta(t) for t in ("The", " quick", " brown", " fox", " jumps", " over")
    ] + [Finish()]
    reply = await backend.create(GenerationRequest.from_prompt("Hello", max_tokens=3))
    assert reply.text == "The quick brown"


async def test_grpc_and_http_return_identical_text(backends: dict[str, Any]) -> None:
    request = GenerationRequest.from_prompt("Tell me something", max_tokens=40)
    over_grpc = text_of(await events_of(backends["grpc"](), request))
    over_http = text_of(
        await events_of(
            backends["http"](max_tokens=40), GenerationRequest.from_prompt("Tell me something")
        )
    )
    assert over_grpc == over_http == expected(40)
    assert "日本語 ✓" in over_grpc  # multibyte UTF-8 crossed both transports intact


@pytest.mark.parametrize("transport", ["grpc", "http"])
async def test_stop_ends_the_stream_within_100_ms(backends: dict[str, Any], transport: str) -> None:
    # 200 tokens, 20 ms apart: the model goes on for 4 s after we stop.
    if transport == "grpc":
        backend = backends["grpc"](max_tokens=200, params={"delay": 0.02})
    else:
        backend = backends["http"](max_tokens=200, delay=0.02)
    generation = Generation(backend, GenerationRequest.from_prompt("Go")).start()
    batches = generation.batches()
    seen: list[Event] = []
    while len(seen) < 3:
        seen.extend(await anext(batches))
    stopped = time.perf_counter()
    generation.cancel()
    assert await generation.wait() is State.STOPPED
    elapsed = time.perf_counter() - stopped
    assert elapsed < STOP_WITHIN, f"the stream took {elapsed * 1000:.1f} ms to end"
    text_at_stop = generation.text
    count_at_stop = generation.stats.tokens
    async for batch in batches:  # a stopped generation ends its batches quietly
        seen.extend(batch)
    # While the model keeps generating on its side, a whole second answer runs on the
    # same backend; the stopped one must not have read anything meanwhile.
    # (A fresh backend: Triton's HTTP generate rejects max_tokens as both a top-level key
    # and a parameter.)
    again = backends[transport](max_tokens=5)
    other = await again.create(GenerationRequest.from_prompt("Again"))
    assert other.text == expected(5)
    assert generation.text == text_at_stop and generation.stats.tokens == count_at_stop
    assert text_at_stop == expected(count_at_stop)


async def test_real_metadata_check_lists_the_model_tensors(backends: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as caught:
        await backends["grpc"](input_tensor="prompt").create(GenerationRequest.from_prompt("x"))
    message = str(caught.value)
    assert "text_input (BYTES [1])" in message and "max_tokens (INT32 [1])" in message


async def test_real_unknown_model(backends: dict[str, Any], pytriton: PyTriton) -> None:
    with pytest.raises(HTTPStatusError) as caught:
        await backends["grpc"](model="nope").create(GenerationRequest.from_prompt("x"))
    assert caught.value.status == 404
    assert "'nope'" in str(caught.value) and pytriton.grpc in str(caught.value)


async def test_real_probe(backends: dict[str, Any]) -> None:
    result = await backends["grpc"]().probe()
    assert result["live"] and result["ready"] and result["model_ready"]
    assert result["problems"] == []
    assert result["metadata"]["platform"] == "python"
