"""The ``tide`` executable's first stop: route the one-shot path around typer.

``tide ask`` (and bare ``tide`` with piped stdin) is parsed by :mod:`tokentide.ask` with
argparse; everything else goes to the typer app in :mod:`tokentide.cli`.  typer 0.29
imports pydantic, which costs more than a whole one-shot answer on loopback.
"""

from __future__ import annotations

import sys

__all__ = ["main"]


def main() -> None:
    argv = sys.argv[1:]
    if argv[:1] == ["ask"] or (not argv and not sys.stdin.isatty()):
        # httpx imports its optional command-line tool (click + rich, ~55 ms) whenever
        # click is installed; its own __init__ falls back when that import fails, and the
        # one-shot path never uses it.
        sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
        from tokentide.ask import main as ask_main

        sys.exit(ask_main(argv[1:]))
    from tokentide.cli import main as cli_main

    cli_main()
