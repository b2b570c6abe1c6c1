"""Serve a decoupled toy "LLM" with NVIDIA PyTriton (a real ``tritonserver``), on CPU.

Run by ``tests/real/test_pytriton.py`` and ``benchmarks/bench_grpc.py`` through
:func:`launch` (free ports, the environment fix, SIGTERM, clean-up); by hand::

    LD_LIBRARY_PATH=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_config_var("LIBDIR"))') \\
        .venv/bin/python tests/real/pytriton_serve.py --http-port 8000 --grpc-port 8001

Stop it with SIGTERM (or SIGINT): tritonserver and its model stub stop with it.
(The ``LD_LIBRARY_PATH`` fix is in ``shared/reference/real-servers.md`` §2: the Python
backend stub otherwise loads the system libpython next to this venv's stdlib).

Model ``toy_stream`` (decoupled: one Triton response per ``yield``):

* inputs ``text_input`` BYTES [1] (the prompt, ignored except for its length) and the
  optional ``max_tokens`` INT32 [1] (default 8);
* output ``text_output`` BYTES [1]: one word per response, "The", " quick", ... including
  non-ASCII words so multibyte UTF-8 crosses the wire;
* ``delay`` (float seconds, default 0), as a request parameter (gRPC) or the optional
  FP32 [1] input tensor (HTTP ``generate_stream`` maps top-level keys to tensors): sleep
  before each token.

A Python model cannot observe a client's cancellation (PyTriton's ``infer`` function is
not told), so after a client stops, this model goes on generating on its side.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MODEL = "toy_stream"
WORDS = tuple("The quick brown fox jumps over the lazy dog . Ça va très bien , 日本語 ✓".split(" "))  # noqa: SIM905
READY_LINE = b"successfully loaded 'toy_stream'"


def word(i: int) -> bytes:
    return (("" if i == 0 else " ") + WORDS[i % len(WORDS)]).encode()


def expected(count: int) -> str:
    """The text the model answers for ``max_tokens = count``."""
    return b"".join(word(i) for i in range(count)).decode()


# -- running it (no pytriton import: the launcher runs in the test or benchmark) --------


class LaunchError(RuntimeError):
    pass


@dataclass(frozen=True)
class PyTriton:
    grpc: str
    """``host:port`` of Triton's gRPC endpoint."""
    http: str
    """``http://host:port`` of Triton's HTTP endpoint."""
    log: Path


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
    """SIGTERM this script (it stops tritonserver and the stub), then make sure its whole
    process group (it leads its own session) is gone."""
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


@contextmanager
def launch(folder: Path, *, ready_timeout: float = 90.0) -> Iterator[PyTriton]:
    """Run this script on free loopback ports with its workspace in ``folder``; stop it
    (SIGTERM) and remove what it left (workspace, model copies, new ``~/.cache/pytriton``
    entries) on exit.  Raises :class:`LaunchError` with the log's tail if it does not
    become ready."""
    http_port, grpc_port, metrics_port = _free_ports(3)
    env = dict(os.environ)
    # real-servers.md §2: the backend stub must load this Python's libpython.
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    env["LD_LIBRARY_PATH"] = os.pathsep.join(
        p for p in (libdir, env.get("LD_LIBRARY_PATH", "")) if p
    )
    workspace = folder / "workspace"
    log_path = folder / "server.log"
    before = _cache_entries()
    # fmt: off
    process = subprocess.Popen(
        [sys.executable, __file__, "--http-port", str(http_port), "--grpc-port", str(grpc_port),
         "--metrics-port", str(metrics_port), "--workspace", str(workspace)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    # fmt: on
    ready = threading.Event()

    def copy_log() -> None:  # keeps the pipe drained for the server's whole life
        assert process.stdout is not None
        with log_path.open("wb") as log:
            for line in process.stdout:
                log.write(line)
                log.flush()
                if READY_LINE in line:
                    ready.set()
        ready.set()  # the server exited: stop waiting

    reader = threading.Thread(target=copy_log, daemon=True)
    reader.start()
    try:
        if not ready.wait(ready_timeout) or process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-3000:]
            raise LaunchError(f"PyTriton did not start; log:\n{tail}")
        yield PyTriton(f"127.0.0.1:{grpc_port}", f"http://127.0.0.1:{http_port}", log_path)
    finally:
        _stop(process)
        reader.join(10)
        if process.stdout is not None:
            process.stdout.close()
        shutil.rmtree(workspace, ignore_errors=True)
        _remove_model_copies(workspace)
        for entry in _cache_entries() - before:
            shutil.rmtree(entry, ignore_errors=True)


# -- the server process ----------------------------------------------------------------


def infer(requests: list[Any]) -> Iterator[list[dict[str, Any]]]:
    import numpy as np

    for request in requests:
        count = int(request["max_tokens"][0]) if "max_tokens" in request.data else 8
        delay = float((request.parameters or {}).get("delay", 0.0))
        if "delay" in request.data:
            delay = float(request["delay"][0])
        for i in range(count):
            if delay:
                time.sleep(delay)
            yield [{"text_output": np.array([word(i)], dtype=np.object_)}]


def main() -> None:
    import numpy as np
    from pytriton.model_config import ModelConfig, Tensor
    from pytriton.triton import Triton, TritonConfig

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--grpc-port", type=int, required=True)
    parser.add_argument("--metrics-port", type=int, required=True)
    parser.add_argument("--workspace", default=None, help="PyTriton workspace directory")
    args = parser.parse_args()
    # PyTriton stops cleanly (tritonserver and the Python backend stub too) on SIGINT's
    # KeyboardInterrupt; a background job may have SIGINT ignored, so SIGTERM does the same.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    config = TritonConfig(
        http_address="127.0.0.1",
        http_port=args.http_port,
        grpc_address="127.0.0.1",
        grpc_port=args.grpc_port,
        metrics_address="127.0.0.1",
        metrics_port=args.metrics_port,
        allow_gpu_metrics=False,
    )
    with Triton(config=config, workspace=args.workspace) as triton:
        triton.bind(
            model_name=MODEL,
            infer_func=infer,
            inputs=[
                Tensor(name="text_input", dtype=bytes, shape=(1,)),
                Tensor(name="max_tokens", dtype=np.int32, shape=(1,), optional=True),
                Tensor(name="delay", dtype=np.float32, shape=(1,), optional=True),
            ],
            outputs=[Tensor(name="text_output", dtype=bytes, shape=(1,))],
            config=ModelConfig(batching=False, decoupled=True),
            strict=False,
        )
        triton.serve()


if __name__ == "__main__":
    main()
