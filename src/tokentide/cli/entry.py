"""The ``tide`` executable's first stop: the one-shot path without importing typer.

``tide ask`` (and ``tide`` with piped stdin and no subcommand, e.g.
``cat notes.md | tide -P work "summarise"``) is a command of the typer app in
:mod:`tokentide.cli.app` like every other, with its options declared once, in
:data:`~tokentide.cli.ask_options.ASK_OPTIONS`.  But typer 0.29 costs a one-shot answer
~16 ms to import and ~80 ms more for pydantic, which it imports to convert any option
value that is not a flag (docs/performance.md, "tide ask on the Typer app"); the whole
answer takes ~160 ms.  So a well-formed ``tide ask`` command line is read here by
:func:`~tokentide.cli.ask_options.parse_ask`, which accepts only what the typer command
would read the same way, and anything else (``--help``, a mistake, ``-Pwork``, a value
that is not plainly a number) goes to the typer app, which prints the help or the error
exactly as for every other command.
Shell completion always goes to the typer app.

A mistyped command (``tide histroy list``, ``tide confg path``) is caught here, before
either path: a word in the command position that is not a command but is within edit
distance 2 of one is a usage error (exit 2), on a terminal and in a pipe, and nothing is
sent to a model.  ``tide ask "chta is a word"`` always sends its prompt.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn

__all__ = ["main", "suggestion"]


_SUBCOMMANDS: dict[str, tuple[str, ...]] = {
    "ask": (),
    "chat": (),
    "compare": (),
    "config": ("path", "show", "init", "check"),
    "history": ("list", "show", "export", "import", "delete"),
    "models": (),
}
"""Every command of the typer app (tests/test_cli_typos.py checks this against it)."""
_COMMANDS = frozenset(_SUBCOMMANDS)
_ROOT_OPTIONS = frozenset(
    {
        "--help",
        "--version",
        "--config",
        "--debug",
        "--install-completion",
        "--show-completion",
    }
)
_MAX_DISTANCE = 2
_COMPLETION_VARIABLES = frozenset({"_TIDE_COMPLETE", "_TOKENTIDE_COMPLETE"})
"""Set by the completion scripts typer installs (``_{PROG}_COMPLETE``)."""


def _distance(a: str, b: str) -> int:
    """Edit distance (insert, delete, substitute, swap two neighbours), at most 3."""
    if abs(len(a) - len(b)) > _MAX_DISTANCE:
        return _MAX_DISTANCE + 1
    before: list[int] = []
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            best = min(row[j] + 1, current[j - 1] + 1, row[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                best = min(best, before[j - 2] + 1)
            current.append(best)
        before, row = row, current
    return min(row[-1], _MAX_DISTANCE + 1)


def suggestion(word: str, names: tuple[str, ...] | frozenset[str]) -> str | None:
    """The name ``word`` is probably a typo of, or ``None``.

    Within edit distance 2 (case aside), and nearer than the word is long, so ``a`` or
    ``ok`` are not taken for ``ask``.  A name itself, or an option, is never a typo.
    """
    if word in names or word.startswith("-"):
        return None
    lowered = word.lower()
    best: tuple[int, str] | None = None
    for name in sorted(names):
        d = _distance(lowered, name)
        if d <= _MAX_DISTANCE and d < len(word) and (best is None or d < best[0]):
            best = (d, name)
    return None if best is None else best[1]


def _command_position(argv: list[str]) -> int:
    """Index of the word typer would read as the command (after the root options)."""
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--config":
            i += 2
        elif arg == "--debug" or arg.startswith("--config="):
            i += 1
        else:
            break
    return i


def _typo(argv: list[str]) -> tuple[str, str, str | None] | None:
    """``(word, suggestion, prompt)`` when the command, or a sub-command, is a near miss;
    ``prompt`` is what ``tide ask`` would send instead (``None`` for a sub-command)."""
    i = _command_position(argv)
    if i >= len(argv):
        return None
    word = argv[i]
    if word not in _COMMANDS:
        near = suggestion(word, _COMMANDS)
        return None if near is None else (word, near, " ".join(argv[i:]))
    subcommands = _SUBCOMMANDS[word]
    if subcommands and i + 1 < len(argv):
        near = suggestion(argv[i + 1], subcommands)
        if near is not None:
            return argv[i + 1], near, None
    return None


def _refuse_typo(word: str, near: str, prompt: str | None) -> NoReturn:
    import shlex

    from tokentide.sanitize import sanitize

    lines = [f"tide: No such command {sanitize(word)!r}. Did you mean {near!r}?"]
    if prompt is not None:
        lines.append(f"To send it as a prompt: tide ask {sanitize(shlex.quote(prompt))}")
    sys.stderr.write("\n".join(lines) + "\n")
    _exit_now(2)


def _ask_argv(argv: list[str]) -> tuple[list[str], list[str]] | None:
    """``(root options, ask arguments)`` for ``tide [--config PATH] [--debug] ask ...``, or
    ``tide [PROMPT] [ask options]`` with piped stdin; ``None`` for anything else."""
    i = _command_position(argv)
    if i > len(argv):
        return None  # ``--config`` without its path: typer says so
    if argv[i : i + 1] == ["ask"]:
        return argv[:i], argv[i + 1 :]
    if sys.stdin.isatty():
        return None
    if i == len(argv) or (argv[i] not in _COMMANDS and argv[i] not in _ROOT_OPTIONS):
        return argv[:i], argv[i:]
    return None


def main() -> None:
    argv = sys.argv[1:]
    if _COMPLETION_VARIABLES & os.environ.keys():
        # The shell asks typer for completions (tide --install-completion): it runs
        # ``tide`` with no arguments and stdin that is not a terminal, which is not ask.
        from tokentide.cli.app import main as cli_main

        cli_main()
        return
    if argv[:1] != ["ask"] and (typo := _typo(argv)) is not None:
        _refuse_typo(*typo)
    if (split := _ask_argv(argv)) is not None:
        # httpx imports its optional command-line tool (click + rich, ~55 ms) whenever
        # click is installed; its own __init__ falls back when that import fails, and the
        # one-shot path never uses it.
        sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
        root, rest = split
        # The root options before ``ask`` are ask's own --config and --debug.
        from tokentide.cli.ask_options import parse_ask

        if (values := parse_ask([*root, *rest])) is not None:
            from tokentide.ask.run import AskArgs
            from tokentide.ask.run import main as ask_main

            _exit_now(ask_main(AskArgs(**values), exiting=True))
        argv = [*root, "ask", *rest]  # help or an error: the typer app says it
    from tokentide.cli.app import main as cli_main

    cli_main(argv)


def _exit_now(code: int) -> NoReturn:
    """End a one-shot run without tearing the interpreter down.

    Finalising the interpreter (every module, every object, in order) took ~15 ms of a
    140 ms trivial ``tide ask`` (``docs/performance.md``), and scripts call ``tide ask``
    in loops.  Everything that matters at exit is done here first: the ``--debug`` log
    is flushed and closed, stdout and stderr are flushed.  ``tide ask`` holds nothing
    else: no temporary files; its backend is closed by then.  The exchange it saved in
    the history is committed (WAL): the connection is dropped here, which leaves the
    WAL for the next writer's checkpoint instead of checkpointing at close (~2 ms).
    """
    if "logging" in sys.modules:
        sys.modules["logging"].shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass  # a closed pipe: nothing more can be said there
    os._exit(code)
