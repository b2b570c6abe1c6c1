"""Save SVG screenshots of the comparison screen for the docs.

    .venv/bin/python scripts/screenshot_compare.py [--out docs/images]

Runs the comparison screen headless (``App.run_test``) against the loopback test server
(the shared deterministic server behind the comparison tests' mode-aware front, so the
non-streaming reply arrives after the time the streamed answer takes), with real clocks:
``compare.svg`` when both panes are done (and, with ``--running``, ``compare-running.svg``
while tokens stream).
The server runs in a child process, so it does not share the screen's interpreter lock.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent

ANSWER = (
    "Streaming sends each token as soon as the model produces it, so you start reading "
    "after the **first** token. Without streaming the server sends nothing until the "
    "*whole* answer is ready.\n\n"
    "- time to first token: one token's worth\n"
    "- total time: about the same either way\n"
)


def _loopback() -> ModuleType:
    sys.path.insert(0, str(ROOT))
    spec = importlib.util.spec_from_file_location(
        "compare_loopback", ROOT / "tests" / "compare" / "conftest.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def serve() -> None:
    """Child process: run the loopback server, print its URL, stop when stdin closes."""
    loopback = _loopback()
    with loopback.serve_mode_aware() as (server, _front):
        print(server.url(text=ANSWER, delay=0.04) + "/v1", flush=True)
        sys.stdin.read()


@contextlib.contextmanager
def server_process() -> Iterator[str]:
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert child.stdout is not None
        yield child.stdout.readline().strip()
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(10)


async def shoot(out: Path, url: str, *, running: bool = False) -> None:
    from tokentide.config.model import Profile
    from tokentide.tui.compare_screen import CompareApp

    profile = Profile(name="loopback", api="openai", url=url, model="demo", max_retries=0)
    app = CompareApp([profile], "Why does streaming matter?")
    async with app.run_test(size=(120, 30)) as pilot:
        screen = app.compare_screen
        while not screen.generations:
            await pilot.pause(0.05)
        stream = screen.generations[0]
        while stream.stats.tokens < 22:
            await pilot.pause(0.02)
        if running:
            screen.refresh_stats()
            await pilot.pause(0.1)
            app.save_screenshot("compare-running.svg", str(out))
        await screen.finished.wait()
        await pilot.pause(0.3)
        app.save_screenshot("compare.svg", str(out))
        await screen.stop_all()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    parser.add_argument("--running", action="store_true", help="also shoot mid-stream")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve()
        return
    args.out.mkdir(parents=True, exist_ok=True)
    with server_process() as url:
        asyncio.run(shoot(args.out, url, running=args.running))
    print(
        f"wrote {args.out / 'compare.svg'}" + (" and compare-running.svg" if args.running else "")
    )


if __name__ == "__main__":
    main()
