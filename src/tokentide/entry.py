"""The ``tide`` executable's first stop: route the one-shot path around typer.

``tide ask`` (and ``tide`` with piped stdin and no subcommand, e.g.
``cat notes.md | tide -P work "summarise"``) is parsed by :mod:`tokentide.ask` with
argparse; everything else goes to the typer app in :mod:`tokentide.cli`.  typer 0.29
imports pydantic, which costs more than a whole one-shot answer on loopback.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn

__all__ = ["main"]


_COMMANDS = frozenset({"ask", "chat", "compare", "config", "history"})
_ROOT_OPTIONS = frozenset({"--help", "--version", "-c", "--config", "--debug"})


def _is_ask(argv: list[str]) -> bool:
    """``tide ask ...``, or ``tide [PROMPT] [ask options]`` with piped stdin."""
    if argv[:1] == ["ask"]:
        return True
    if sys.stdin.isatty():
        return False
    return not argv or (argv[0] not in _COMMANDS and argv[0] not in _ROOT_OPTIONS)


def main() -> None:
    argv = sys.argv[1:]
    if _is_ask(argv):
        # httpx imports its optional command-line tool (click + rich, ~55 ms) whenever
        # click is installed; its own __init__ falls back when that import fails, and the
        # one-shot path never uses it.
        sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
        from tokentide.ask import main as ask_main

        _exit_now(ask_main(argv[1:] if argv[:1] == ["ask"] else argv))
    from tokentide.cli import main as cli_main

    cli_main()


def _exit_now(code: int) -> NoReturn:
    """End a one-shot run without tearing the interpreter down.

    Finalising the interpreter (every module, every object, in order) took ~15 ms of a
    140 ms trivial ``tide ask`` (``docs/performance.md``), and scripts call ``tide ask``
    in loops.  Everything that matters at exit is done here first: the ``--debug`` log
    is flushed and closed, stdout and stderr are flushed.  ``tide ask`` holds nothing
    else: no history database, no temporary files; its backend is closed by then.
    """
    if "logging" in sys.modules:
        sys.modules["logging"].shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass  # a closed pipe: nothing more can be said there
    os._exit(code)
