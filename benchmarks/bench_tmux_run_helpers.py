"""One measured run of ``bench_tmux_e2e``: an answer streamed into an app in tmux, or a
long saved conversation opened.  See that module's docstring for what each figure is."""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.bench_text_helpers import make_answer, make_text
from benchmarks.bench_tmux_helpers import (
    Session,
    context_switches,
    cpu_seconds,
    rss_mb,
    wait_quiet,
    written_kb,
)
from benchmarks.paced_source import serve_paced

ROOT = Path(__file__).resolve().parent.parent
END = "ZQXENDMARK"
OPEN_END = "ZQXOPENEND"
STOCK_READY = "STOCKREADY"
"""What ``stock_markdown_app.py`` shows once it is up (its ``READY``; not imported: the
measuring process imports neither Textual nor tokentide)."""
MID_AT = (0.25, 0.50, 0.75)
QUIET = 0.02
"""A process is idle when it uses less than this many CPU seconds per second (2 % of a
core) for a whole second."""


@dataclass(frozen=True)
class AppSpec:
    """``tide chat`` from a checkout (``tree``: None is this one), or the stock app."""

    name: str
    kind: str  # "tide" or "stock"
    tree: Path | None = None
    mcp_servers: int = 0
    """Configure this many MCP servers (tests/tools/servers/toolserver.py over stdio):
    the app starts them after its first frame and they stay up while it streams."""


@dataclass(frozen=True)
class StreamRun:
    app: str
    rate: float
    tokens: int
    run: int
    end_lag: float | None
    mid_lags: tuple[float | None, ...]
    cpu_per_1k: float | None
    rss_before: float | None
    rss_after: float | None
    settle: float | None
    idle_wakeups: float | None
    idle_cpu_pct: float | None
    error: str | None = None

    @property
    def rss_growth(self) -> float | None:
        if self.rss_before is None or self.rss_after is None:
            return None
        return self.rss_after - self.rss_before

    @property
    def mid_median(self) -> float | None:
        ok = [v for v in self.mid_lags if v is not None]
        return statistics.median(ok) if ok and len(ok) == len(self.mid_lags) else None

    @property
    def mid_max(self) -> float | None:
        ok = [v for v in self.mid_lags if v is not None]
        return max(ok) if ok and len(ok) == len(self.mid_lags) else None


@dataclass(frozen=True)
class OpenRun:
    app: str
    run: int
    messages: int
    chars: int
    last_on_screen: float | None
    cpu_until_idle: float | None
    idle_after: float | None
    rss: float | None
    written_kb: float | None
    error: str | None = None


def _split(text: str) -> list[str]:
    lengths = (3, 4, 4, 4)  # mean 3.75 characters, as bench_tui_render.make_tokens does
    out: list[str] = []
    pos = 0
    while pos < len(text):
        step = lengths[len(out) % 4]
        out.append(text[pos : pos + step])
        pos += step
    return out


def stream_tokens(n_tokens: int) -> tuple[list[str], list[int], list[str]]:
    """About ``n_tokens`` Markdown tokens ending with :data:`END`, with unique mid-stream
    markers near :data:`MID_AT` of the way, each a paragraph of its own (never inside a
    code fence, so it shows as written): the tokens, the markers' indices and words."""
    text = make_text(max(n_tokens - 1 - len(MID_AT), 8))
    cuts: list[int] = []
    for f in MID_AT:
        for found in re.finditer("\n\n", text):
            p = found.end()
            if p >= f * len(text) and (not cuts or p > cuts[-1]) and text[:p].count("```") % 2 == 0:
                cuts.append(p)
                break
    tokens: list[str] = []
    words: list[str] = []
    indices: list[int] = []
    prev = 0
    for cut in cuts:
        tokens += _split(text[prev:cut])
        words.append(f"ZQXMID{len(words) + 1}")
        indices.append(len(tokens))
        tokens.append(f"{words[-1]}\n\n")
        prev = cut
    tokens += _split(text[prev:])
    tokens.append(f" {END}")
    return tokens, indices, words


def _env(tmp: Path, url: str, app: AppSpec) -> dict[str, str]:
    config = tmp / "config.toml"
    text = f'default = "bench"\n[profiles.bench]\napi = "openai"\nurl = "{url}"\n'
    server = ROOT / "tests" / "tools" / "servers" / "toolserver.py"
    for index in range(app.mcp_servers):
        state = tmp / f"mcp{index}"
        state.mkdir(exist_ok=True)
        text += (
            f"[mcp_servers.bench{index}]\ncommand = {str(sys.executable)!r}\n"
            f"args = [{str(server)!r}, '--name', 'bench{index}', '--state', {str(state)!r}]\n"
        )
    config.write_text(text)
    env = {
        "TIDE_CONFIG": str(config),
        "TIDE_DATA_DIR": str(tmp / "data"),
        "TERM": "xterm-256color",
        "COLORTERM": "truecolor",
    }
    if app.tree is not None:
        env["PYTHONPATH"] = str(app.tree / "src")
    return env


def _command(app: AppSpec, url: str, *extra: str) -> list[str]:
    if app.kind == "stock":
        return [sys.executable, str(ROOT / "benchmarks" / "stock_markdown_app.py"), url]
    return [sys.executable, "-m", "tokentide", "chat", *extra]


def stream_run(
    app: AppSpec, rate: float, n_tokens: int, run: int, *, idle: float, timeout: float
) -> StreamRun:
    """One answer streamed into ``app``; a failure is a run with its ``error`` set."""
    try:
        return _stream_run(app, rate, n_tokens, run, idle=idle, timeout=timeout)
    except (RuntimeError, OSError) as error:
        return StreamRun(app.name, rate, n_tokens, run, None, (None,) * len(MID_AT), None,
                         None, None, None, None, None, str(error))  # fmt: skip


def _stream_run(
    app: AppSpec, rate: float, n_tokens: int, run: int, *, idle: float, timeout: float
) -> StreamRun:
    tokens, marks, words = stream_tokens(n_tokens)
    holder: dict[str, float] = {}

    def on_start() -> None:  # in the source's thread, just before the first token
        pid = holder.get("pid")
        cpu = None if pid is None else cpu_seconds(int(pid))
        if cpu is not None:
            holder["cpu0"] = cpu

    def failed(error: str, rss_before: float | None = None) -> StreamRun:
        return StreamRun(app.name, rate, n_tokens, run, None, (None,) * len(marks), None,
                         rss_before, None, None, None, None, error)  # fmt: skip

    with (
        serve_paced(tokens, rate, marks=marks, on_start=on_start) as source,
        tempfile.TemporaryDirectory(prefix="tide-bench-") as tmpdir,
    ):
        tmp = Path(tmpdir)
        cwd = app.tree or ROOT
        with Session(_command(app, source.url), cwd=cwd, env=_env(tmp, source.url, app)) as s:
            pid = s.find_app()
            holder["pid"] = pid
            ready = "Send" if app.kind == "tide" else STOCK_READY
            if s.wait_for([ready], 30) is None:
                return failed(f"not ready{'' if s.dead() else ' within 30 s'}{s.last_words()}")
            wait_quiet(pid, quiet_for=0.5, threshold=QUIET, timeout=15)
            rss_before = rss_mb(pid)
            s.send(*(["go", "Enter"] if app.kind == "tide" else ["g"]))
            pending = dict(zip(words, marks, strict=True))
            seen: dict[int, float] = {}
            end_seen: float | None = None
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                screen = s.capture()
                now = time.monotonic()
                for word in [w for w in pending if w in screen]:
                    seen[pending.pop(word)] = now
                if END in screen:
                    end_seen = now
                    break
                time.sleep(0.02)  # polling the screen, as a person's eye would
            cpu_end = cpu_seconds(pid)
            if end_seen is None or source.last_sent is None:
                return failed(f"the end was not on screen within {timeout:.0f} s"
                              f"{s.last_words()}", rss_before=rss_before)  # fmt: skip
            cpu_per_1k = None
            if cpu_end is not None and "cpu0" in holder:
                cpu_per_1k = (cpu_end - holder["cpu0"]) / (len(tokens) / 1000)
            quiet = wait_quiet(pid, quiet_for=1.0, threshold=QUIET, timeout=60)
            settle = None if quiet is None else max(0.0, quiet[0] - end_seen)
            rss_after = rss_mb(pid)
            wakeups = idle_cpu = None
            ctx0, cpu0, t0 = context_switches(pid), cpu_seconds(pid), time.monotonic()
            time.sleep(idle)  # the idle window itself: nothing happens on purpose
            ctx1, cpu1, t1 = context_switches(pid), cpu_seconds(pid), time.monotonic()
            if None not in (ctx0, ctx1, cpu0, cpu1):
                wakeups = (ctx1 - ctx0) / (t1 - t0)  # type: ignore[operator]
                idle_cpu = 100 * (cpu1 - cpu0) / (t1 - t0)  # type: ignore[operator]
            mid = tuple(
                (seen[i] - source.sent_at[i]) if i in seen and i in source.sent_at else None
                for i in marks
            )
            return StreamRun(app.name, rate, n_tokens, run, end_seen - source.last_sent, mid,
                             cpu_per_1k, rss_before, rss_after, settle, wakeups,
                             idle_cpu)  # fmt: skip


def conversation_pairs(pairs: int) -> list[tuple[str, str]]:
    """``pairs`` prompt/answer pairs, ~2 kB of Markdown per answer; the last answer ends
    with :data:`OPEN_END`."""
    out = []
    for k in range(pairs):
        end = OPEN_END if k == pairs - 1 else f"E{k}"
        out.append((f"Question {k}: explain section {k}, please.",
                    make_answer(520, seed=k * 13, end=end)))  # fmt: skip
    return out


def open_run(app: AppSpec, pairs: list[tuple[str, str]], run: int, *, timeout: float) -> OpenRun:
    """``app`` opening a saved conversation of ``pairs``; a failure has ``error`` set."""
    chars = sum(len(q) + len(a) for q, a in pairs)
    try:
        return _open_run(app, pairs, run, chars, timeout=timeout)
    except (RuntimeError, OSError) as error:
        return OpenRun(app.name, run, 2 * len(pairs), chars, None, None, None, None, None,
                       str(error))  # fmt: skip


def _open_run(
    app: AppSpec, pairs: list[tuple[str, str]], run: int, chars: int, *, timeout: float
) -> OpenRun:
    with tempfile.TemporaryDirectory(prefix="tide-bench-") as tmpdir:
        tmp = Path(tmpdir)
        env = _env(tmp, "http://127.0.0.1:9/v1", app)
        source = tmp / "pairs.json"
        source.write_text(json.dumps(pairs))
        wrote = subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / "bench_tmux_db_helpers.py"), str(source)],
            env={**os.environ, **env},
            cwd=app.tree or ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if wrote.returncode != 0:
            raise RuntimeError(
                f"could not write the conversation: {wrote.stderr.strip().splitlines()[-1:]}"
            )
        conversation = wrote.stdout.strip()
        command = _command(app, "", "--conversation", conversation)
        with Session(command, cwd=app.tree or ROOT, env=env) as s:
            pid = s.find_app()
            seen = s.wait_for([OPEN_END], timeout)
            n = 2 * len(pairs)
            if seen is None:
                return OpenRun(app.name, run, n, chars, None, None, None, rss_mb(pid),
                               written_kb(pid), f"last message not on screen within "
                               f"{timeout:.0f} s{s.last_words()}")  # fmt: skip
            quiet = wait_quiet(pid, quiet_for=1.0, threshold=QUIET, timeout=timeout)
            rss, written = rss_mb(pid), written_kb(pid)
            if quiet is None:
                return OpenRun(app.name, run, n, chars, seen - s.started, cpu_seconds(pid),
                               None, rss, written, f"not idle within {timeout:.0f} s")  # fmt: skip
            return OpenRun(app.name, run, n, chars, seen - s.started, quiet[1],
                           quiet[0] - s.started, rss, written)  # fmt: skip
