"""The per-token path (OpenAI backend + Generation + batch draining, in-process: the
``generation/queue path`` figure of ``bench_ask.py``) from several source trees, side by side.

    .venv/bin/python benchmarks/bench_ask_inprocess_trees.py --rounds 6 before=/tmp/before/src after=src

Each ``name=SRC`` runs in its own process with ``PYTHONPATH=SRC`` against one loopback
source (``benchmarks/sse_source.py``) streaming ``--tokens`` tokens; rounds alternate the
trees' order; each process reports the median of 3 streams.  Prints each tree's median
tokens/s over the rounds and its ratio to the first tree's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.sse_source import serve_source  # noqa: E402

CHILD = """
import asyncio, statistics, sys
sys.path.insert(0, sys.argv[3])
from benchmarks.bench_ask import in_process
rates = [asyncio.run(in_process(sys.argv[1], int(sys.argv[2]))) for _ in range(3)]
print(statistics.median(rates))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="+", help="name=SRC")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--tokens", type=int, default=50_000)
    args = parser.parse_args()
    trees = dict(spec.split("=", 1) for spec in args.trees)
    rates: dict[str, list[float]] = {name: [] for name in trees}
    with serve_source() as base:
        for i in range(args.rounds):
            order = list(trees) if i % 2 == 0 else list(trees)[::-1]
            for name in order:
                env = dict(os.environ, PYTHONPATH=str(Path(trees[name]).resolve()))
                out = subprocess.run(
                    [sys.executable, "-c", CHILD, base, str(args.tokens), str(ROOT)],
                    env=env, capture_output=True, text=True, check=True,
                ).stdout  # fmt: skip
                rates[name].append(float(out.split()[-1]))
    first = statistics.median(next(iter(rates.values())))
    for name, values in rates.items():
        median = statistics.median(values)
        print(
            f"{name}: {median:,.0f} tokens/s (min {min(values):,.0f}, max {max(values):,.0f}),"
            f" {median / first:.3f} of {next(iter(rates))}"
        )


if __name__ == "__main__":
    main()
