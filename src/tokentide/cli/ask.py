"""``tide ask``: one prompt, the answer streamed to stdout (:mod:`tokentide.ask`).

Its options are declared once, in :data:`~tokentide.cli.ask_options.ASK_OPTIONS`,
because the entry point reads a well-formed ``tide ask`` without importing typer (see
:mod:`tokentide.cli.entry`); this command is what prints its help and its errors,
completes it, and runs it otherwise.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Annotated, Any

import typer

from tokentide.cli.ask_options import ASK_OPTIONS
from tokentide.cli.context import state

__all__ = ["EPILOG", "ask_command"]

EPILOG = (
    "Exit codes: 0 ok, 2 usage or config, 3 cannot connect, 4 server or protocol "
    "error or a tool call (tools are off), 5 timeout, 130 interrupted."
)


def ask_command() -> Callable[..., None]:
    """The ``tide ask`` command function, its signature made from :data:`ASK_OPTIONS`."""

    def ask(ctx: typer.Context, **values: Any) -> None:
        """Send one prompt and stream the answer to stdout.

        Piped stdin is appended to the prompt after a blank line.
        """
        from tokentide.ask.run import AskArgs
        from tokentide.ask.run import main as ask_main

        root = state(ctx)
        values["prompt"] = tuple(values.get("prompt") or ())
        for option in ASK_OPTIONS:
            if option.many:
                values[option.dest] = tuple(values.get(option.dest) or ())
        if root.debug:
            values["debug"] = False  # tide --debug set the log up already
        config = str(root.config) if root.config else None
        raise typer.Exit(code=ask_main(AskArgs(**values), config=config))

    annotated: Any = Annotated  # built from data, so not a type mypy can check
    keyword = inspect.Parameter.KEYWORD_ONLY
    prompt = typer.Argument(help="The prompt (words are joined with spaces).", show_default=False)
    parameters = [
        inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context),
        inspect.Parameter("prompt", keyword, default=None, annotation=annotated[list[str] | None, prompt]),
    ]  # fmt: skip
    for option in ASK_OPTIONS:
        flag = option.kind is bool
        info = typer.Option(
            *option.names, help=option.help, metavar=option.metavar, show_default=False
        )
        kind: Any = option.kind if flag else option.kind | None
        if option.many:  # repeated options take strings (tests/test_ask_typer.py)
            kind = list[str] | None
        parameters.append(
            inspect.Parameter(
                option.dest, keyword, default=False if flag else None, annotation=annotated[kind, info]
            )
        )  # fmt: skip
    ask.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    return ask
