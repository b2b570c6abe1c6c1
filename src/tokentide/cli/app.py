"""The ``tide`` typer app: the root options, and every command registered on it.

Importing this module is cheap: backends, Textual and the history store are imported by
the commands that need them (each command's own module says what it imports).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from tokentide.cli.ask import EPILOG, ask_command
from tokentide.cli.chat import chat
from tokentide.cli.context import CliState

__all__ = ["app", "main"]

app = typer.Typer(
    name="tide",
    help="Chat with language models in the terminal, tokens rendered live as they stream.",
    add_completion=True,  # tide --install-completion; startup cost: docs in README
    no_args_is_help=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)
ask = app.command("ask", epilog=EPILOG)(ask_command())
app.command("chat")(chat)


@app.callback(invoke_without_command=True)
def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", help="Config file (default: $TIDE_CONFIG or the platform config dir)."
        ),
    ] = None,
    debug: Annotated[
        bool, typer.Option("--debug", help="Write a debug log (secrets redacted) for bug reports.")
    ] = False,
    version: Annotated[bool, typer.Option("--version", help="Show the version and exit.")] = False,
) -> None:
    """Chat with language models in the terminal, tokens rendered live as they stream."""
    if version:
        from tokentide import __version__

        typer.echo(f"tokentide {__version__}")
        raise typer.Exit()
    ctx.obj = CliState(config=config, debug=debug)
    if debug:
        from tokentide.config.paths import data_dir
        from tokentide.logsetup import setup_debug_log

        path = setup_debug_log(data_dir() / "debug.log")
        typer.echo(f"debug log: {path}", err=True)
    if ctx.invoked_subcommand is not None:
        return
    if not sys.stdin.isatty():
        ctx.invoke(ask, ctx)  # cat notes.md | tide (the commands take the context first)
    else:
        ctx.invoke(chat, ctx)


def register_subcommands() -> None:
    """The commands with sub-commands or their own helpers (imported only for the full
    command line; ``tide ask`` on the typer app does not need them)."""
    if any(group.name == "config" for group in app.registered_groups):
        return  # registered already (a second main() in one process)
    from tokentide.cli.compare import register as register_compare
    from tokentide.cli.config import config_app
    from tokentide.cli.history import history_app
    from tokentide.cli.models import register as register_models

    app.add_typer(config_app, name="config")
    app.add_typer(
        history_app,
        name="history",
        help="List, show, export, import and delete saved conversations.",
    )
    register_compare(app)
    register_models(app)


def main(argv: list[str] | None = None) -> None:
    """Run the typer app on ``argv`` (default: the process's arguments)."""
    register_subcommands()
    app(args=argv)
