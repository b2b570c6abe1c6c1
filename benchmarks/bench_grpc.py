"""Triton over gRPC (``triton-grpc``) vs Triton's HTTP ``generate_stream`` (``triton-http``).

    .venv/bin/python benchmarks/bench_grpc.py [--tokens 2000] [--runs 5] [--cpu-tokens 20000]

One run measures, for the same PyTriton model (``tests/real/pytriton_serve.py``, no sleep
in the model, ``--tokens`` one-word responses per answer) over both transports, read with
tokentide's own backends, interleaved run by run, medians of ``--runs`` (one uncounted
warm-up each):

* TTFT: from calling ``stream()`` to the first non-empty ``TextDelta``;
* tokens/s: (n - 1) / (t_last - t_first) over the n ``TextDelta``s;
* client CPU per token: ``time.process_time()`` over the whole stream / n (the server is
  another process, so this is the client alone).

Then the client CPU per token of the gRPC path alone, against the grpc.aio test server in
a subprocess (``tests/servers/triton_grpc_server.py``, ``--cpu-tokens`` tokens with no
delay, so the client is the bottleneck): tokentide's ``triton-grpc`` backend, and beside it
a bare ``grpc.aio`` read loop (``call.read()`` and nothing else) over the same stream, so
the difference is what the backend adds.  Goal (issue 4): the gRPC path adds no more than
20 µs of client CPU per token.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import grpc
import grpc.aio
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc import service_pb2_grpc as pb_grpc

from tests.real.pytriton_serve import MODEL, expected, launch
from tokentide.backends.base import Backend, GenerationRequest
from tokentide.backends.events import TextDelta
from tokentide.backends.registry import create_backend
from tokentide.backends.triton_grpc import TritonGRPCBackend, encode_bytes_tensor
from tokentide.config.model import Deadlines, Limits, Profile

DEADLINES = Deadlines(connect=10.0, first_token=60.0, idle=60.0)
LIMITS = Limits(max_event_bytes=1 << 20, max_answer_bytes=256 << 20)


@dataclass
class Sample:
    ttft: float
    rate: float
    cpu_per_token: float
    tokens: int
    text: str


async def measure(backend: Backend, request: GenerationRequest) -> Sample:
    times: list[float] = []
    parts: list[str] = []
    cpu0 = time.process_time()
    started = time.perf_counter()
    async with aclosing(backend.stream(request)) as stream:
        async for event in stream:
            if isinstance(event, TextDelta) and event.text:
                times.append(time.perf_counter())
                parts.append(event.text)
    cpu = time.process_time() - cpu0
    n = len(times)
    span = times[-1] - times[0] if n > 1 else 0.0
    return Sample(
        ttft=times[0] - started,
        rate=(n - 1) / span if span > 0 else float("nan"),
        cpu_per_token=cpu / n,
        tokens=n,
        text="".join(parts),
    )


def profile(api: str, url: str, tokens: int, **options: object) -> Profile:
    return Profile(
        name=f"bench-{api}",
        api=api,
        url=url,
        model=MODEL,
        params={"max_tokens": tokens} if api == "triton-http" else {},
        max_tokens=tokens if api == "triton-grpc" else None,
        deadlines=DEADLINES,
        limits=LIMITS,
        options=options,
    )


async def transports(grpc_target: str, http_url: str, tokens: int, runs: int) -> None:
    grpc_backend = create_backend(
        profile("triton-grpc", grpc_target, tokens, max_tokens_tensor="max_tokens"), {}
    )
    http_backend = create_backend(profile("triton-http", http_url, tokens), {})
    request_grpc = GenerationRequest.from_prompt("Benchmark")
    request_http = GenerationRequest.from_prompt("Benchmark")
    samples: dict[str, list[Sample]] = {"gRPC (triton-grpc)": [], "HTTP (triton-http)": []}
    sides = [
        ("gRPC (triton-grpc)", grpc_backend, request_grpc),
        ("HTTP (triton-http)", http_backend, request_http),
    ]
    try:
        for name, backend, request in sides:  # warm-up, not counted
            sample = await measure(backend, request)
            assert sample.text == expected(tokens), f"{name} answered differently"
        for run in range(runs):
            order = sides if run % 2 == 0 else sides[::-1]
            for name, backend, request in order:
                sample = await measure(backend, request)
                assert sample.text == expected(tokens), f"{name} answered differently"
                samples[name].append(sample)
    finally:
        await grpc_backend.aclose()
        await http_backend.aclose()
    print(f"\nPyTriton {MODEL!r}, {tokens} tokens per answer, {runs} runs (medians):")
    print(f"{'':22} {'TTFT':>9} {'tokens/s':>10} {'client CPU/token':>17}")
    medians = {}
    for name, got in samples.items():
        ttft = statistics.median(s.ttft for s in got)
        rate = statistics.median(s.rate for s in got)
        cpu = statistics.median(s.cpu_per_token for s in got)
        medians[name] = (ttft, rate, cpu)
        print(f"{name:22} {ttft * 1000:7.2f} ms {rate:10.0f} {cpu * 1e6:14.1f} µs")
    (g_ttft, g_rate, g_cpu), (h_ttft, h_rate, h_cpu) = medians.values()
    print(
        f"{'ratio gRPC / HTTP':22} {g_ttft / h_ttft:9.2f} {g_rate / h_rate:10.2f} "
        f"{g_cpu / h_cpu:17.2f}"
    )
    print("identical text on both transports in every run: yes")


async def bare_grpc_loop(target: str, tokens: int) -> tuple[float, int]:
    """CPU seconds and responses of a bare grpc.aio read loop over the same stream."""
    async with grpc.aio.insecure_channel(target) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        await channel.channel_ready()
        message = pb.ModelInferRequest(model_name="toy", id="bare")
        tensor = message.inputs.add()
        tensor.name, tensor.datatype = "text_input", "BYTES"
        tensor.shape.append(1)
        message.raw_input_contents.append(encode_bytes_tensor(b"Benchmark"))
        message.parameters["tokens"].int64_param = tokens
        message.parameters["triton_enable_empty_final_response"].bool_param = True
        cpu0 = time.process_time()
        call = stub.ModelStreamInfer()
        await call.write(message)
        await call.done_writing()
        count = 0
        while (response := await call.read()) is not grpc.aio.EOF:
            count += 1
            if response.infer_response.parameters["triton_final_response"].bool_param:
                break
        call.cancel()
        return time.process_time() - cpu0, count - 1


async def client_cpu(target: str, tokens: int, runs: int) -> None:
    backend = create_backend(
        Profile(
            name="bench-cpu",
            api="triton-grpc",
            url=target,
            model="toy",
            params={"tokens": tokens},
            deadlines=DEADLINES,
            limits=LIMITS,
        ),
        {},
    )
    assert isinstance(backend, TritonGRPCBackend)
    request = GenerationRequest.from_prompt("Benchmark")
    ours: list[float] = []
    bare: list[float] = []
    try:
        await measure(backend, request)  # warm-up (and the one metadata read)
        await bare_grpc_loop(target, tokens)
        for _ in range(runs):
            sample = await measure(backend, request)
            assert sample.tokens == tokens
            ours.append(sample.cpu_per_token)
            cpu, count = await bare_grpc_loop(target, tokens)
            assert count == tokens
            bare.append(cpu / count)
    finally:
        await backend.aclose()
    o, b = statistics.median(ours), statistics.median(bare)
    print(f"\ngrpc.aio test server (subprocess), {tokens} tokens per answer, {runs} runs:")
    print(f"  triton-grpc backend, whole client      {o * 1e6:6.1f} µs CPU/token")
    print(f"  bare grpc.aio read loop (same stream)  {b * 1e6:6.1f} µs CPU/token")
    print(f"  added by the backend                   {(o - b) * 1e6:6.1f} µs CPU/token")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cpu-tokens", type=int, default=20000)
    args = parser.parse_args()
    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory(prefix="bench-grpc-") as folder:
        started = time.perf_counter()
        with launch(Path(folder)) as server:
            print(f"PyTriton ready in {time.perf_counter() - started:.1f} s")
            asyncio.run(transports(server.grpc, server.http, args.tokens, args.runs))
    test_server = subprocess.Popen(
        [sys.executable, "-m", "tests.servers.triton_grpc_server", "--port", "0"],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert test_server.stdout is not None
        line = test_server.stdout.readline()
        if not line.startswith("PORT "):
            raise SystemExit(f"the test server did not start: {line!r}")
        target = f"127.0.0.1:{int(line.split()[1])}"
        asyncio.run(client_cpu(target, args.cpu_tokens, args.runs))
    finally:
        test_server.terminate()
        test_server.wait(10)
        if test_server.stdout is not None:
            test_server.stdout.close()


if __name__ == "__main__":
    main()
