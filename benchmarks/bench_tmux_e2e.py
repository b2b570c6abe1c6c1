"""The last token on screen in a real terminal: tokentide's chat vs stock MarkdownStream.

    .venv/bin/python benchmarks/bench_tmux_e2e.py [--rate 5000] [--tokens 20000] [--runs 3]

tmux (private socket, 120×40) runs ``tide chat`` against a paced loopback SSE source
streaming a long Markdown answer whose last token is a unique marker; the benchmark
polls ``capture-pane`` every 20 ms and reports the time from the source's last write to
the marker appearing on screen.  The same is measured, in the same run, for a minimal
Textual app streaming into the stock ``Markdown`` widget via ``MarkdownStream``
(``benchmarks/stock_markdown_app.py``).  Medians of ``--runs``.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_tui_render import make_tokens  # noqa: E402
from benchmarks.paced_source import serve_paced  # noqa: E402

MARKER = "ZQXENDMARK"


def tmux(sock: str, *args: str) -> str:
    return subprocess.run(
        ["tmux", "-L", sock, *args], capture_output=True, text=True, check=False
    ).stdout


def wait_for(sock: str, needle: str, timeout: float, poll: float = 0.02) -> float | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle in tmux(sock, "capture-pane", "-p", "-t", "bench"):
            return time.monotonic()
        time.sleep(poll)
    return None


def one_run(kind: str, tokens: list[str], rate: float, timeout: float) -> float | None:
    with serve_paced(tokens, rate) as source, tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.toml"
        config.write_text(
            f'default = "bench"\n[profiles.bench]\napi = "openai"\nurl = "{source.url}"\n'
        )
        env = {
            "TIDE_CONFIG": str(config),
            "TIDE_DATA_DIR": str(Path(tmp) / "data"),
            "TERM": "xterm-256color",
        }
        python = shlex.quote(sys.executable)
        if kind == "tide chat":
            command = f"{python} -m tokentide chat"
            ready, start_keys = "Send", ["go", "Enter"]
        else:
            command = f"{python} {shlex.quote(str(ROOT / 'benchmarks' / 'stock_markdown_app.py'))} {shlex.quote(source.url)}"
            ready, start_keys = None, ["g"]
        sock = f"tide-bench-{uuid.uuid4().hex[:8]}"
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        tmux(
            sock,
            "new-session",
            "-d",
            "-s",
            "bench",
            "-x",
            "120",
            "-y",
            "40",
            f"cd {shlex.quote(str(ROOT))} && env {exports} {command}",
        )
        try:
            if ready is not None:
                wait_for(sock, ready, 20)
            else:
                time.sleep(2.0)  # the stock app has no visible ready state; it starts on a key
            tmux(sock, "send-keys", "-t", "bench", *start_keys)
            seen = wait_for(sock, MARKER, timeout)
            if seen is None or source.last_sent is None:
                return None
            return seen - source.last_sent
        finally:
            tmux(sock, "kill-server")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=5000)
    parser.add_argument("--tokens", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--stock-runs", type=int, default=1, help="stock is slow: fewer runs")
    parser.add_argument("--timeout", type=float, default=120)
    args = parser.parse_args()
    tokens = [*make_tokens(args.tokens - 1), f" {MARKER}"]
    print(f"{args.tokens:,} Markdown tokens at {args.rate:,.0f} tok/s, tmux 120×40, "
          f"load {os.getloadavg()[0]:.1f}")  # fmt: skip
    results: dict[str, list[float | None]] = {"tide chat": [], "stock MarkdownStream": []}
    for run in range(args.runs):
        results["tide chat"].append(one_run("tide chat", tokens, args.rate, args.timeout))
        if run < args.stock_runs:
            results["stock MarkdownStream"].append(
                one_run("stock", tokens, args.rate, args.timeout)
            )
    print(
        "\n| app | last token on screen after the source sent it (median) | runs |\n|---|---|---|"
    )
    medians: dict[str, float] = {}
    for name, values in results.items():
        ok = [v for v in values if v is not None]
        shown = ", ".join("timeout" if v is None else f"{v:.2f}" for v in values)
        if ok:
            medians[name] = statistics.median(ok)
            print(f"| {name} | {medians[name]:.2f} s | {shown} |")
        else:
            print(f"| {name} | did not finish within {args.timeout:.0f} s | {shown} |")
    if len(medians) == 2:
        print(
            f"\nstock / tide: {medians['stock MarkdownStream'] / max(medians['tide chat'], 1e-3):.1f}x"
        )


if __name__ == "__main__":
    main()
