"""A trivial ``tide ask`` (process start to exit) from several source trees, side by side.

    .venv/bin/python benchmarks/bench_ask_trees.py 60 before=/tmp/before/src after=src \\
        nolog=src,--no-log

Each ``name=SRC[,FLAG...]`` is a tree (a ``git worktree`` of the commit to compare, or
``src`` for this checkout) run with ``PYTHONPATH=SRC`` and this venv's ``tide``, plus
any extra flags.  Every run asks the loopback source (``benchmarks/sse_source.py``) for a
5-token answer with no config file, each tree with its own ``TIDE_DATA_DIR`` (so a tree
that saves exchanges writes a history that grows by one per run).  Runs interleave the
trees, alternating which goes first, after one uncounted round; it prints the median and
minimum per tree and each tree's median over the first tree's.  Sources are compiled
first, as an installed ``tide`` would be.
"""

from __future__ import annotations

import compileall
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.sse_source import serve_source  # noqa: E402


def main(argv: list[str]) -> None:
    if len(argv) < 2 or not argv[0].isdigit():
        raise SystemExit(__doc__)
    runs = int(argv[0])
    trees: dict[str, tuple[str, list[str]]] = {}
    for spec in argv[1:]:
        name, _, rest = spec.partition("=")
        src, *flags = rest.split(",")
        trees[name] = (str(Path(src).resolve()), flags)
    for src, _ in trees.values():
        compileall.compile_dir(f"{src}/tokentide", quiet=1)
    tide = str(Path(sys.executable).parent / "tide")
    times: dict[str, list[float]] = {name: [] for name in trees}
    with serve_source() as base, tempfile.TemporaryDirectory() as tmp:
        for i in range(runs + 1):
            order = list(trees) if i % 2 else list(trees)[::-1]
            for name in order:
                src, flags = trees[name]
                env = dict(
                    os.environ,
                    PYTHONPATH=src,
                    TIDE_CONFIG=f"{tmp}/none.toml",
                    TIDE_DATA_DIR=f"{tmp}/data-{name}",
                )
                args = [tide, "ask", "hi", "--api", "openai", "--url", f"{base}/n/5/v1", *flags]
                start = time.perf_counter()
                subprocess.run(
                    args, env=env, stdin=subprocess.DEVNULL, capture_output=True, check=True
                )
                if i:
                    times[name].append(time.perf_counter() - start)
    first = statistics.median(next(iter(times.values())))
    for name, xs in times.items():
        median = statistics.median(xs)
        print(
            f"{name}: median {median * 1000:.1f} ms, min {min(xs) * 1000:.1f} ms,"
            f" {median / first:.3f} of {next(iter(times))}"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
