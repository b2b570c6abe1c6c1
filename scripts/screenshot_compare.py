"""Save SVG screenshots of the comparison screen for the docs.

    .venv/bin/python scripts/screenshot_compare.py [--out docs/images]

Runs the comparison screen headless (``App.run_test``) against the loopback test server
(the shared deterministic server behind the comparison tests' mode-aware front, so the
non-streaming reply arrives after the time the streamed answer takes), with real clocks:
``compare-running.svg`` while tokens stream, ``compare.svg`` when both panes are done.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import sys
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


async def shoot(out: Path) -> None:
    from tokentide.config.model import Profile
    from tokentide.tui.compare_screen import CompareApp

    loopback = _loopback()
    with loopback.serve_mode_aware() as (server, _front):
        url = server.url(text=ANSWER, delay=0.04) + "/v1"
        profile = Profile(name="loopback", api="openai", url=url, model="demo", max_retries=0)
        app = CompareApp([profile], "Why does streaming matter?")
        async with app.run_test(size=(120, 30)) as pilot:
            screen = app.compare_screen
            while not screen.generations:
                await pilot.pause(0.05)
            stream = screen.generations[0]
            while stream.stats.tokens < 22:
                await pilot.pause(0.02)
            screen.refresh_stats()
            await pilot.pause(0.1)
            app.save_screenshot("compare-running.svg", str(out))
            for gen in screen.generations:
                await gen.wait()
            await pilot.pause(0.3)
            app.save_screenshot("compare.svg", str(out))
            await screen.stop_all()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    asyncio.run(shoot(args.out))
    print(f"wrote {args.out / 'compare.svg'} and {args.out / 'compare-running.svg'}")


if __name__ == "__main__":
    main()
