"""Measure the chat app's start-up and history load (numbers for docs/performance.md).

    .venv/bin/python tests/tui/measure_startup.py [--runs 7]

* first frame: a fresh ``python`` process is spawned; it imports ``tokentide.tui.app``,
  builds the app (config-less profile, empty history database) and runs it headless;
  the first ``call_after_refresh`` after mount records the wall time and exits.  The
  figure is spawn → first frame (interpreter start and every import included); our
  modules are compiled to bytecode first, as an install does.
* history load: a database holding one conversation whose branch on screen has 200
  messages (100 prompts, 100 Markdown answers of ~1,500 characters with a list and a
  code block), with branches beside it: every tenth answer was regenerated once (its
  other version is not on screen) and the tenth prompt was edited, its first version
  keeping 9 messages of its own below it (220 messages in all).  It is opened with
  ``conversation_id=``; the figures are from starting the app (``run_test``, so app
  start-up is included) to the newest messages laid out and painted (what the user
  sees), and to the end of the open (the messages it mounts: all of them before the
  lazy window, the last ``HISTORY_WINDOW`` after).

``PYTHONPATH=<tree>/src`` measures another tree (a ``git worktree`` of an older commit)
with this script, for a before/after in one run.
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import sys, time
from pathlib import Path
from tokentide.config.model import Profile, Settings
import tokentide.tui.app
from tokentide.tui.app import ChatApp

class Timed(ChatApp):
    CSS_PATH = str(Path(tokentide.tui.app.__file__).with_name("app.tcss"))

    def on_mount(self) -> None:
        # Registered before the app's own after-refresh work (warming the backend
        # import), which runs once the first frame is already on screen.
        self.call_after_refresh(self._first_frame)
        super().on_mount()

    def _first_frame(self) -> None:
        print(f"FIRST_FRAME {time.time():.6f} {time.process_time():.6f}", flush=True)
        self.exit(0)

profile = Profile(name="p", api="openai", url="http://127.0.0.1:9/v1", model="m")
tools = None
if len(sys.argv) > 2:  # an mcpServers file: the app starts its servers after this frame
    from tokentide.chat.tool_setup import CommandLineTools

    tools = CommandLineTools(mcp=(sys.argv[2],))
Timed(
    Settings(profiles={"p": profile}), profile, history_path=Path(sys.argv[1]), tools=tools
).run(headless=True)
"""

SERVER = ROOT / "tests" / "tools" / "servers" / "toolserver.py"


def mcp_file(directory: Path, servers: int) -> Path:
    """An ``{"mcpServers": ...}`` file of ``servers`` test MCP servers (stdio)."""
    import json

    entries = {
        f"bench{i}": {"command": sys.executable, "args": [str(SERVER), "--state", str(directory)]}
        for i in range(servers)
    }
    path = directory / "mcp.json"
    path.write_text(json.dumps({"mcpServers": entries}))
    return path


ANSWER = (
    """\
## Step {i}

Here is what to do, with **bold** and `code`:

- first, read the file
- then, change the line
- finally, run the tests

```python
def step_{i}(value: int) -> int:
    return value * {i}
```

That should be enough. """
    + "More words to make the paragraph longer. " * 20
)


def first_frame(runs: int, mcp: int = 0) -> tuple[list[float], list[float]]:
    times: list[float] = []
    cpu: list[float] = []
    env = {**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH") or str(ROOT / "src")}
    with tempfile.TemporaryDirectory() as tmp:
        env["TIDE_DATA_DIR"] = tmp
        db = Path(tmp) / "history.sqlite3"
        extra = [str(mcp_file(Path(tmp), mcp))] if mcp else []
        for _ in range(runs):
            started = time.time()
            out = subprocess.run(
                [sys.executable, "-c", CHILD, str(db), *extra],
                capture_output=True,
                text=True,
                env=env,
                check=True,
                timeout=60,
            ).stdout
            fields = next(line.split() for line in out.splitlines() if line.startswith("FIRST_"))
            times.append(float(fields[1]) - started)
            cpu.append(float(fields[2]))
    return times, cpu


async def history_load(runs: int) -> tuple[list[float], list[float], list[float]]:
    from tokentide.config.model import Profile, Settings
    from tokentide.history.store import HistoryStore
    from tokentide.tui.app import ChatApp

    empty: list[float] = []
    first: list[float] = []
    everything: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["TIDE_DATA_DIR"] = tmp
        db = Path(tmp) / "history.sqlite3"
        store = HistoryStore.open(db)
        conversation = store.create_conversation(title="long", profile="p")
        leaf = None
        for i in range(100):
            parent = leaf
            prompt = store.add_message(
                conversation, "user", f"Question {i}: how do I do step {i}?", parent_id=parent
            )
            if i == 10:  # another version of this prompt, with 9 messages of its own
                other = store.add_message(
                    conversation, "user", "An earlier wording", parent_id=parent
                )
                for j in range(5):
                    recorder = store.record_answer(conversation, profile="p", model="m")
                    recorder.finish(status="complete", text=ANSWER.format(i=j))
                    if j < 4:
                        store.add_message(conversation, "user", f"Follow-up {j}")
                del other
            if i % 10 == 0:  # a regenerated answer, beside the one on screen
                old = store.record_answer(conversation, profile="p", model="m", parent_id=prompt)
                old.finish(status="complete", text=ANSWER.format(i=-i))
            recorder = store.record_answer(conversation, profile="p", model="m", parent_id=prompt)
            recorder.append(ANSWER.format(i=i))
            recorder.finish(status="complete")
            leaf = recorder.message_id
        assert leaf is not None
        store.set_active_leaf(conversation, leaf)
        assert len(store.load(conversation).messages) == 200
        store.close()
        with sqlite3.connect(db) as raw:  # (older trees have no MessageTree.messages)
            assert raw.execute("SELECT count(*) FROM messages").fetchone()[0] == 220
        store = HistoryStore.open(db)
        store.close()
        profile = Profile(name="p", api="openai", url="http://127.0.0.1:9/v1", model="m")
        for _ in range(runs):
            empty_app = ChatApp(Settings(profiles={"p": profile}), profile, history_path=db)
            started = time.perf_counter()
            async with empty_app.run_test(size=(120, 40)) as pilot:
                await pilot.pause()
                empty.append(time.perf_counter() - started)
            app = ChatApp(
                Settings(profiles={"p": profile}),
                profile,
                history_path=db,
                conversation_id=conversation,
            )
            started = time.perf_counter()
            async with app.run_test(size=(120, 40)) as pilot:
                view = app.chat.view
                await app.chat.history_painted.wait()
                first.append(time.perf_counter() - started)
                await app.workers.wait_for_complete()
                await pilot.pause()
                everything.append(time.perf_counter() - started)
                assert len(app.chat.turns) == 200
                mounted = len(app.chat.query(".message"))
                assert mounted == 200 or mounted == getattr(
                    __import__("tokentide.tui.branch_view", fromlist=["x"]), "HISTORY_WINDOW", 0
                ), mounted
                del view
    return empty, first, everything


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument(
        "--mcp", type=int, default=0, metavar="N",
        help="also measure the first frame with N MCP servers configured, interleaved",
    )  # fmt: skip
    args = parser.parse_args()
    # As a regular install does (and as benchmarks/bench_ask.py explains): without it,
    # PYTHONDONTWRITEBYTECODE would make every spawned app recompile our sources.
    compileall.compile_dir(ROOT / "src" / "tokentide", quiet=1)
    frames: list[float] = []
    cpu: list[float] = []
    with_mcp: list[float] = []
    mcp_cpu: list[float] = []
    for _ in range(args.runs):  # interleaved: the machine's drift hits both alike
        one, one_cpu = first_frame(1)
        frames += one
        cpu += one_cpu
        if args.mcp:
            one, one_cpu = first_frame(1, args.mcp)
            with_mcp += one
            mcp_cpu += one_cpu
    print(
        f"first frame (spawn -> painted, headless): median {statistics.median(frames) * 1000:.0f} ms, "
        f"min {min(frames) * 1000:.0f} ms, max {max(frames) * 1000:.0f} ms; "
        f"CPU time of the process until then: median {statistics.median(cpu) * 1000:.0f} ms"
    )
    if args.mcp:
        ratio = statistics.median(with_mcp) / statistics.median(frames)
        print(
            f"first frame with {args.mcp} MCP servers configured: median "
            f"{statistics.median(with_mcp) * 1000:.0f} ms ({ratio:.2f}x), CPU "
            f"{statistics.median(mcp_cpu) * 1000:.0f} ms"
        )
    empty, first, everything = asyncio.run(history_load(args.runs))
    for what, loads in (
        ("baseline: the same app with no conversation, first paint", empty),
        ("open a 200-message branch of a 220-message tree, newest messages painted", first),
        ("... the open finished (every message it mounts mounted)", everything),
    ):
        print(
            f"{what}: median {statistics.median(loads) * 1000:.0f} ms, "
            f"min {min(loads) * 1000:.0f} ms, max {max(loads) * 1000:.0f} ms"
        )


if __name__ == "__main__":
    main()
