"""What ``tide ask -a`` of a 5 MB text file adds to the same prompt without it (issue
15's goal: under 100 ms), both measured in one run, interleaved, medians.

    .venv/bin/python benchmarks/bench_ask_attach.py [--mb 5] [--runs 11]

Each run is a whole process, start to exit, into a pipe, against a loopback server that
reads the request body and streams a 5-token answer (``benchmarks/sse_source.py``), so
the difference is the attachment's cost on tide's side: reading and checking the file,
the fenced block, the JSON body, sending it, and saving the exchange in the history
(measured both with the history, as ``tide ask`` runs by default, and with ``--no-log``).
Sources are compiled first, as an installed ``tide`` has them.
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.sse_source import serve_source

ROOT = Path(__file__).resolve().parent.parent
LINE = "def handler(request):  # a line of source code, about as long as they come\n"


def text_of(size: int) -> str:
    """ASCII text of ``size`` bytes, in lines, as a source file or a log is."""
    count = size // len(LINE) + 1
    return "".join(f"{i:08} {LINE}" for i in range(count))[:size]


def timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(
        argv, stdin=subprocess.DEVNULL, capture_output=True, env=env, check=False
    )
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"tide failed ({result.returncode}): {result.stderr.decode()[-500:]}")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=5.0, help="size of the attached file, MB")
    parser.add_argument("--runs", type=int, default=11)
    args = parser.parse_args()
    compileall.compile_dir(ROOT / "src", quiet=1)
    with serve_source() as base, tempfile.TemporaryDirectory() as tmp:
        attached = Path(tmp) / "big.txt"
        attached.write_text(text_of(int(args.mb * 1_000_000)))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TIDE_", "OPENAI"))}
        env |= {
            "TIDE_CONFIG": str(Path(tmp) / "none.toml"),
            "TIDE_DATA_DIR": str(Path(tmp) / "data"),
        }
        ask = [sys.executable, "-m", "tokentide", "ask", "--api", "openai", "--url",
               f"{base}/n/5/v1", "--model", "m", "summarise"]  # fmt: skip
        cases = {
            "without": ask,
            "with -a": [*ask, "-a", str(attached)],
            "without, --no-log": [*ask, "--no-log"],
            "with -a, --no-log": [*ask, "--no-log", "-a", str(attached)],
        }
        for argv in cases.values():
            timed(argv, env)  # warm the page cache and the history's file
        times: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.runs):
            for name, argv in cases.items():
                times[name].append(timed(argv, env))
    median = {name: statistics.median(values) * 1000 for name, values in times.items()}
    print(f"tide ask, {args.mb:g} MB text file attached vs not (median of {args.runs}, wall ms):")
    for name, value in median.items():
        spread = f"{min(times[name]) * 1000:.0f}–{max(times[name]) * 1000:.0f}"
        print(f"  {name:<20} {value:7.1f} ms   (min–max {spread})")
    print(f"  added by -a:          {median['with -a'] - median['without']:+.1f} ms")
    print(
        f"  added by -a, no log:  {median['with -a, --no-log'] - median['without, --no-log']:+.1f} ms"
    )
    print(f"  load average: {os.getloadavg()[0]:.2f}, cores: {os.cpu_count()}")


if __name__ == "__main__":
    main()
