"""The real app in a real terminal: ``tide chat`` beside stock Textual ``MarkdownStream``.

    .venv/bin/python benchmarks/bench_tmux_e2e.py                 # the reference (~40 min)
    .venv/bin/python benchmarks/bench_tmux_e2e.py --quick         # a smoke run (~1-2 min)
    .venv/bin/python benchmarks/bench_tmux_e2e.py --rates 200 --lengths 3000 --runs 5
    .venv/bin/python benchmarks/bench_tmux_e2e.py --tree before=/tmp/before --json out.json

Each app runs in its own tmux server (private socket, no user config, 120×40,
``TERM=xterm-256color``) against a paced loopback OpenAI-style SSE source
(``benchmarks/paced_source.py``) that streams a Markdown answer (sections, paragraphs,
lists, python fences, tables) at a fixed rate; ``capture-pane`` is polled every 20 ms.
The app's process is the Python process under the pane (``#{pane_pid}`` or its child);
its figures come from ``/proc``.  Apps: ``tide`` (``tide chat`` from this checkout),
one more per ``--tree [LABEL=]PATH`` (``tide chat`` with ``PYTHONPATH=PATH/src``, run in
PATH), and ``stock`` (``benchmarks/stock_markdown_app.py``: Textual's ``Markdown``
widget fed through ``MarkdownStream``, one ``write`` per token, as oterm and toad do).
Runs are interleaved: for each run, for each rate × length, every app in turn (the
order rotates from run to run).  Tables show medians of ``--runs`` (default 3), the
range, and each tide beside stock (and this checkout beside each ``--tree``, and
``tide+mcp`` beside ``tide`` with ``--mcp N``) as a ratio
(a difference for memory).  Ctrl-C, SIGTERM or SIGHUP stop it with the tables of the
runs done so far.

Per answer (rate × length):

* **end lag**: the source's last write (the unique end word) → that word on screen;
* **mid lag**: the same for three unique words the source sends as paragraphs of their
  own near 25, 50 and 75 % of the answer; per run the median and the max of the three;
* **CPU / 1k tokens**: the app process's CPU (user + system, all threads) from the
  source's first token to the end word on screen, per 1,000 tokens;
* **RSS before / after** (VmRSS): before the prompt is sent (the app ready and idle),
  and after the answer once the process is idle again (see below);
* **settle**: end word on screen → the process idle;
* **idle wakeups** and **idle CPU**: after that, over ``--idle`` seconds (default 5) of
  nothing happening, context switches (voluntary + involuntary, all threads) per second
  and CPU as % of one core.

"Idle" means using < 2 % of a core over a whole second.

**Open a long conversation** (``tide`` and each ``--tree``; no stock equivalent):
``--pairs`` (default 500) prompt/answer pairs, ~2 kB of Markdown per answer (~1 MB for
500), written with ``HistoryStore`` (``benchmarks/bench_tmux_db_helpers.py``, with the
tree's own store) before ``tide chat --conversation ID`` starts in tmux: time from
starting the session to the last answer's end word on screen, the process's CPU from
its start until idle, when it became idle, its RSS then and the bytes it wrote until then
(``wchar``: terminal and files).

Combinations that stream longer than ``--max-stream`` seconds (default 120; 20,000
tokens at 50 tok/s is 400 s) are left out and listed.  Linux and tmux only; every tmux
server is killed and its socket removed on every path.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_tmux_helpers import TmuxMissing, require_tmux  # noqa: E402
from benchmarks.bench_tmux_run_helpers import (  # noqa: E402
    AppSpec,
    OpenRun,
    StreamRun,
    conversation_pairs,
    open_run,
    stream_run,
)

RATES = (50.0, 200.0, 1000.0, 5000.0)
LENGTHS = (300, 3000, 20000)


def _numbers(text: str, kind: Callable[[str], float]) -> list[float]:
    return [kind(part) for part in text.replace(",", " ").split()]


def _tree(text: str) -> AppSpec:
    label, _, path = text.rpartition("=")
    tree = Path(path).expanduser().resolve()
    if not (tree / "src" / "tokentide").is_dir():
        raise argparse.ArgumentTypeError(f"{tree} has no src/tokentide: not a tokentide checkout")
    return AppSpec(label or tree.name, "tide", tree)


def _median(values: Sequence[float | None]) -> float | None:
    ok = [v for v in values if v is not None]
    return statistics.median(ok) if ok else None


def _cell(values: Sequence[float | None], fmt: str) -> str:
    med = _median(values)
    if med is None:
        return "–"
    ok = [v for v in values if v is not None]
    text = format(med, fmt)
    if len(ok) > 1:
        text += f" ({format(min(ok), fmt)}–{format(max(ok), fmt)})"
    if len(ok) < len(values):
        text += f" [{len(values) - len(ok)} failed]"
    return text


# (title, figure of one run, format, how to compare with stock: ratio, difference or not)
STREAM_METRICS: list[tuple[str, Callable[[StreamRun], float | None], str, str]] = [
    ("end lag, s", lambda r: r.end_lag, ".3f", "ratio"),
    ("mid lag (median of 3 words), s", lambda r: r.mid_median, ".3f", "ratio"),
    ("mid lag (max of 3 words), s", lambda r: r.mid_max, ".3f", "ratio"),
    ("CPU s per 1,000 tokens", lambda r: r.cpu_per_1k, ".2f", "ratio"),
    ("RSS before, MB", lambda r: r.rss_before, ".1f", "diff"),
    ("RSS after, MB", lambda r: r.rss_after, ".1f", "diff"),
    ("RSS growth (after − before), MB", lambda r: r.rss_growth, ".1f", "diff"),
    ("settle (end on screen → idle), s", lambda r: r.settle, ".2f", ""),
    ("idle wakeups / s", lambda r: r.idle_wakeups, ".1f", "ratio"),
    ("idle CPU, % of a core", lambda r: r.idle_cpu_pct, ".2f", "ratio"),
]


def stream_tables(
    apps: list[AppSpec], combos: list[tuple[float, int]], runs: list[StreamRun]
) -> str:
    # Comparisons: every tide beside stock, and this checkout beside each --tree.
    stock = [a.name for a in apps if a.kind == "stock"]
    trees = [a.name for a in apps if a.tree is not None]
    pairs = [(a.name, b) for b in stock for a in apps if a.kind != "stock"]
    pairs += [("tide", b) for b in trees]
    pairs += [(a.name, "tide") for a in apps if a.mcp_servers]
    lines: list[str] = []
    for title, get, fmt, compare in STREAM_METRICS:
        shown = pairs if compare else []
        sign = "/" if compare == "ratio" else "−"
        head = ["tok/s", "tokens", *[a.name for a in apps], *[f"{x} {sign} {y}" for x, y in shown]]
        lines += [f"\n**{title}**\n", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for rate, n in combos:
            these = {a.name: [get(r) for r in runs if (r.app, r.rate, r.tokens) == (a.name, rate, n)]
                     for a in apps}  # fmt: skip
            row = [f"{rate:,.0f}", f"{n:,}", *[_cell(these[a.name], fmt) for a in apps]]
            for x, y in shown:
                mine, base = _median(these[x]), _median(these[y])
                if mine is None or base is None or (compare == "ratio" and base <= 0):
                    row.append("–")
                elif compare == "ratio":
                    row.append(f"{mine / base:.2f}×")
                else:
                    row.append(f"{mine - base:+.1f}")
            lines.append("| " + " | ".join(row) + " |")
        if title.startswith("mid lag (max"):
            lines.append("\n(– in a run: one of the words was never on screen in a capture: it "
                         "went past between two, or was never painted)")  # fmt: skip
    return "\n".join(lines)


def open_table(runs: list[OpenRun], names: list[str]) -> str:
    lines = ["| app | last message on screen, s | CPU until idle, s | idle after, s | RSS, MB "
             "| written until idle, kB |", "|---|---|---|---|---|---|"]  # fmt: skip
    for name in names:
        mine = [r for r in runs if r.app == name]
        lines.append(f"| {name} | {_cell([r.last_on_screen for r in mine], '.2f')} | "
                     f"{_cell([r.cpu_until_idle for r in mine], '.2f')} | "
                     f"{_cell([r.idle_after for r in mine], '.1f')} | "
                     f"{_cell([r.rss for r in mine], '.1f')} | "
                     f"{_cell([r.written_kb for r in mine], '.0f')} |")  # fmt: skip
    return "\n".join(lines)


def measure(
    apps: list[AppSpec],
    combos: list[tuple[float, int]],
    runs: int,
    conversation: list[tuple[str, str]],
    idle: float,
    timeout: float | None,
    stream_results: list[StreamRun],
    open_results: list[OpenRun],
) -> None:
    """Every run, interleaved; results are appended as they come (kept on Ctrl-C)."""
    pairs = len(conversation)
    for run in range(runs):
        order = apps[run % len(apps) :] + apps[: run % len(apps)]
        for rate, n in combos:
            for app in order:
                result = stream_run(
                    app, rate, n, run, idle=idle, timeout=timeout or 4 * n / rate + 120
                )
                stream_results.append(result)
                note = f" ERROR {result.error}" if result.error else ""
                shown = "–" if result.end_lag is None else f"{result.end_lag:.3f} s"
                print(f"  run {run + 1} {app.name:>8} {rate:>6,.0f} tok/s {n:>6,} tokens: "
                      f"end lag {shown}, load {os.getloadavg()[0]:.2f}{note}", flush=True)  # fmt: skip
        for app in order:
            if conversation and app.kind == "tide":
                opened = open_run(app, conversation, run, timeout=timeout or 120)
                open_results.append(opened)
                shown = "–" if opened.last_on_screen is None else f"{opened.last_on_screen:.2f} s"
                cpu = "–" if opened.cpu_until_idle is None else f"{opened.cpu_until_idle:.2f} s"
                note = f" ERROR {opened.error}" if opened.error else ""
                print(f"  run {run + 1} {app.name:>8} open {2 * pairs:,} messages: last on "
                      f"screen {shown}, CPU {cpu}{note}", flush=True)  # fmt: skip


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--rates", help="tok/s, e.g. '200,5000' (default 50,200,1000,5000)")
    add("--lengths", help="answer tokens, e.g. 3000 (default 300,3000,20000)")
    add("--runs", type=int, help="runs per app and combination (default 3; medians)")
    add("--quick", action="store_true",
        help="smoke run: 200 and 5,000 tok/s × 300 tokens, 1 run, 2 s idle, 100 pairs")  # fmt: skip
    add("--max-stream", type=float, default=120.0,
        help="leave out combinations streaming longer than this, s (default 120)")  # fmt: skip
    add("--idle", type=float, help="idle window after each answer, s (default 5)")
    add("--pairs", type=int, help="prompt/answer pairs in the opened conversation (500)")
    add("--no-open", action="store_true", help="skip opening the long conversation")
    add("--no-stream", action="store_true", help="skip the streamed answers")
    add("--no-stock", action="store_true", help="skip the stock MarkdownStream app")
    add("--tree", type=_tree, action="append", default=[], metavar="[LABEL=]PATH",
        help="also run tide chat from the checkout at PATH (PYTHONPATH=PATH/src); repeatable")  # fmt: skip
    add(
        "--timeout",
        type=float,
        help="per-run limit, s (default 4 × stream time + 120; opening: 120)",
    )
    add("--json", type=Path, metavar="FILE", help="write every run's raw numbers here")
    add("--mcp", type=int, default=0, metavar="N",
        help="also run tide chat with N MCP servers configured (started after the first "
        "frame, up while it streams): app 'tide+mcp'")  # fmt: skip
    args = parser.parse_args()
    try:
        require_tmux()
    except TmuxMissing as error:
        sys.exit(f"bench_tmux_e2e: {error}")

    rates = (
        _numbers(args.rates, float)
        if args.rates
        else ([200.0, 5000.0] if args.quick else list(RATES))
    )
    lengths = (
        [int(v) for v in _numbers(args.lengths, float)]
        if args.lengths
        else ([300] if args.quick else list(LENGTHS))
    )
    runs = args.runs or (1 if args.quick else 3)
    idle = args.idle if args.idle is not None else (2.0 if args.quick else 5.0)
    pairs = args.pairs or (100 if args.quick else 500)
    apps = [AppSpec("tide", "tide"), *args.tree]
    if args.mcp:
        apps.append(AppSpec("tide+mcp", "tide", mcp_servers=args.mcp))
    names = [a.name for a in apps]
    if len(set(names)) < len(names) or "stock" in names:
        parser.error("each --tree needs its own LABEL (not tide or stock): --tree LABEL=PATH")
    if not args.no_stock:
        apps.append(AppSpec("stock", "stock"))
    combos = [(r, n) for r in rates for n in lengths if n / r <= args.max_stream]
    skipped = [(r, n) for r in rates for n in lengths if n / r > args.max_stream]
    if args.no_stream:
        combos, skipped = [], []

    print(f"bench_tmux_e2e {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, tmux 120×40, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; apps: "
          f"{', '.join(a.name + (f' ({a.tree})' if a.tree else '') for a in apps)}; "
          f"{runs} run(s), medians (min–max)")  # fmt: skip
    for r, n in skipped:
        print(f"left out: {n:,} tokens at {r:,.0f} tok/s ({n / r:.0f} s of streaming; "
              f"--max-stream {n / r:.0f} includes it)")  # fmt: skip
    stream_results: list[StreamRun] = []
    open_results: list[OpenRun] = []
    conversation = conversation_pairs(pairs) if not args.no_open else []
    signal.signal(signal.SIGTERM, _interrupt)  # so every tmux server is still killed
    signal.signal(signal.SIGHUP, _interrupt)
    try:
        measure(apps, combos, runs, conversation, idle, args.timeout, stream_results, open_results)
    except KeyboardInterrupt:
        print("\ninterrupted: the tables show the runs done so far")
    if stream_results:
        print(stream_tables(apps, combos, stream_results))
    if open_results:
        chars = open_results[0].chars
        print(f"\n**Open a conversation of {2 * pairs:,} messages ({chars / 1e6:.2f} MB)**\n")
        print(open_table(open_results, [a.name for a in apps if a.kind == "tide"]))
    print(f"\nload at the end {os.getloadavg()[0]:.2f}")
    if args.json:
        args.json.write_text(json.dumps(
            {"stream": [asdict(r) for r in stream_results],
             "open": [asdict(r) for r in open_results],
             "apps": [{"name": a.name, "kind": a.kind, "tree": str(a.tree or ROOT)} for a in apps]},
            indent=1, default=str))  # fmt: skip
        print(f"raw numbers: {args.json}")


if __name__ == "__main__":
    main()
