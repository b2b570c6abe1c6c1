"""The ``tide`` executable's first stop: route the one-shot path around typer.

``tide ask`` (and ``tide`` with piped stdin and no subcommand, e.g.
``cat notes.md | tide -P work "summarise"``) is parsed by :mod:`tokentide.ask` with
argparse; everything else goes to the typer app in :mod:`tokentide.cli`.  typer 0.29
imports pydantic, which costs more than a whole one-shot answer on loopback.
"""

from __future__ import annotations

import sys

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

        sys.exit(ask_main(argv[1:] if argv[:1] == ["ask"] else argv))
    from tokentide.cli import main as cli_main

    cli_main()
