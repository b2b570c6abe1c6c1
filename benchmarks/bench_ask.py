"""``tide ask`` throughput and start-up, beside ``curl -N`` and the ``llm`` CLI, in one run.

    .venv/bin/python benchmarks/bench_ask.py [--tokens 100000] [--runs 5]

Prints, for 100,000 tokens streamed from a loopback server into a pipe: tokens/s, CPU
time and peak RSS of each client, and the ratios; the rate of the generation/queue path
alone, in-process (no process start-up); and the wall time of a trivial one-shot answer
(process start to exit), tide vs llm and vs the floor: a bare script that only imports
asyncio and httpx and streams the same answer.  Medians of ``--runs``, all in one run so
the machine's load affects every client alike.

Bytecode: a regular install (``pip install .``, a wheel) compiles every module at install
time; an editable install compiles on first import and caches the result, unless
``PYTHONDONTWRITEBYTECODE`` is set (as on some CI machines), when every start compiles
tokentide's sources again (~15 ms measured).  The benchmark compiles them first
(``compileall``), so it measures what an installed ``tide`` does.
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.sse_source import serve_source

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent

FLOOR = """
import sys
sys.modules["httpx._main"] = None  # as tide does: httpx's CLI is never needed
import asyncio, httpx
async def main(url):
    async with httpx.AsyncClient(verify=False) as client:  # no TLS on http://, as tide
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
        async with client.stream("POST", url + "/chat/completions", json=body) as response:
            async for chunk in response.aiter_bytes():
                sys.stdout.buffer.write(chunk)
asyncio.run(main(sys.argv[1]))
"""


def run_child(argv: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """(wall s, CPU s, peak RSS MB) of one child process whose stdout is a pipe.

    Measured by GNU time around the child: ``wait4`` on a child forked from this Python
    process would report this process's RSS as the child's peak.
    """
    with tempfile.NamedTemporaryFile("r") as report:
        started = time.perf_counter()
        process = subprocess.Popen(
            ["/usr/bin/time", "-o", report.name, "-f", "%U %S %M", *argv],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        )  # fmt: skip
        assert process.stdout is not None
        while process.stdout.read(1 << 16):
            pass
        _, stderr = process.communicate()
        wall = time.perf_counter() - started
        if process.returncode != 0:
            raise SystemExit(f"{argv[0]} failed ({process.returncode}): {stderr.decode()[-500:]}")
        user, system, rss_kb = report.read().split()[-3:]
    return wall, float(user) + float(system), int(rss_kb) / 1024


async def in_process(base: str, tokens: int) -> float:
    """Tokens/s through the OpenAI backend + Generation + batch draining."""
    from tokentide.backends.base import GenerationRequest
    from tokentide.backends.openai import OpenAIChatBackend
    from tokentide.config.model import Profile
    from tokentide.generation import Generation

    backend = OpenAIChatBackend(
        Profile(name="bench", api="openai", url=f"{base}/n/{tokens}/v1"), {}
    )
    started = time.perf_counter()
    async with Generation(backend, GenerationRequest.from_prompt("hi")) as gen:
        async for _batch in gen.batches():
            pass
    elapsed = time.perf_counter() - started
    await backend.aclose()
    assert gen.stats.tokens == tokens, (gen.stats.tokens, gen.error)
    return tokens / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tokens", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    n = args.tokens
    compileall.compile_dir(ROOT / "src" / "tokentide", quiet=1)
    llm = BIN / "llm"
    curl = shutil.which("curl")
    with serve_source() as base, tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, TIDE_CONFIG=str(Path(tmp) / "none.toml"))
        llm_home = Path(tmp) / "llm"
        llm_home.mkdir()
        (llm_home / "extra-openai-models.yaml").write_text(
            f'- model_id: bench\n  model_name: bench\n  api_base: "{base}/n/{n}/v1"\n'
            f'- model_id: tiny\n  model_name: tiny\n  api_base: "{base}/n/5/v1"\n'
        )
        llm_env = dict(os.environ, LLM_USER_PATH=str(llm_home), OPENAI_API_KEY="sk-bench")

        def tide(tokens: int) -> list[str]:
            return [
                str(BIN / "tide"),
                "ask",
                "hi",
                "--api",
                "openai",
                "--url",
                f"{base}/n/{tokens}/v1",
            ]

        clients: dict[str, tuple[list[str], dict[str, str]]] = {"tide ask": (tide(n), env)}
        if curl:
            clients["curl -N"] = ([curl, "-sN", "-X", "POST", "-H", "content-type: application/json",
                                   "-d", "{}", f"{base}/n/{n}/v1/chat/completions"], env)  # fmt: skip
        if llm.exists():
            clients["llm"] = ([str(llm), "-m", "bench", "hi"], llm_env)
        rows: dict[str, list[tuple[float, float, float]]] = {name: [] for name in clients}
        for _ in range(args.runs):
            for name, (argv, child_env) in clients.items():
                rows[name].append(run_child(argv, child_env))
        print(f"{n:,} tokens from a loopback SSE server into a pipe (median of {args.runs}):\n")
        print("| client | tokens/s | wall s | CPU s | peak RSS MB |\n|---|---|---|---|---|")
        rate: dict[str, float] = {}
        for name, runs in rows.items():
            wall = statistics.median(r[0] for r in runs)
            rate[name] = n / wall
            print(f"| {name} | {n / wall:,.0f} | {wall:.3f} | "
                  f"{statistics.median(r[1] for r in runs):.3f} | {statistics.median(r[2] for r in runs):.1f} |")  # fmt: skip
        print()
        if "llm" in rate:
            print(f"tide ask vs llm throughput: {rate['tide ask'] / rate['llm']:.1f}x")
        if "curl -N" in rate:
            print(f"tide ask vs curl -N throughput: {rate['tide ask'] / rate['curl -N']:.2f}x")
        rates = [asyncio.run(in_process(base, n)) for _ in range(args.runs)]
        print(f"generation/queue path, in-process: {statistics.median(rates):,.0f} tokens/s")
        trivial: dict[str, list[float]] = {"tide ask": [], "floor": [], "llm": []}
        floor = [sys.executable, "-c", FLOOR, f"{base}/n/5/v1"]
        for _ in range(max(args.runs, 7)):
            trivial["tide ask"].append(run_child(tide(5), env)[0])
            trivial["floor"].append(run_child(floor, env)[0])
            if llm.exists():
                trivial["llm"].append(run_child([str(llm), "-m", "tiny", "hi"], llm_env)[0])
        t_tide = statistics.median(trivial["tide ask"])
        t_floor = statistics.median(trivial["floor"])
        print(
            f"\ntrivial one-shot answer (5 tokens), process start to exit, median of {len(trivial['tide ask'])}:"
        )
        print(f"tide ask: {t_tide * 1000:.0f} ms")
        print(
            f"floor:    {t_floor * 1000:.0f} ms  (python + asyncio + httpx only, interpreter "
            f"teardown included; tide ask - floor = {(t_tide - t_floor) * 1000:+.0f} ms)"
        )
        if trivial["llm"]:
            t_llm = statistics.median(trivial["llm"])
            print(f"llm:      {t_llm * 1000:.0f} ms  (tide ask is {t_llm / t_tide:.1f}x quicker)")


if __name__ == "__main__":
    main()
