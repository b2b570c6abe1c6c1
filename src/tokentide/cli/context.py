"""What every command shares: the root options (``tide --config PATH --debug``) kept in
the Typer context, the config file loaded with its warnings said, and errors printed
for a person with their exit code.

The root callback puts a :class:`CliState` in the root context's ``obj``; a command
reads it with :func:`state`.  A sub-app run on its own (``history_app()`` in a test)
has no root callback, and gets the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from tokentide.errors import TideError

if TYPE_CHECKING:
    from tokentide.config.model import Settings

__all__ = ["CliState", "fail", "load_config", "state"]


@dataclass(slots=True)
class CliState:
    """The root options, for every command."""

    config: Path | None = None
    """The config file ``tide --config`` named (None: ``$TIDE_CONFIG`` or the default)."""
    debug: bool = False
    """``tide --debug`` set the debug log up already."""


def state(ctx: typer.Context) -> CliState:
    """The root options of the command line ``ctx`` belongs to."""
    obj = ctx.find_root().obj
    return obj if isinstance(obj, CliState) else CliState()


def load_config(ctx: typer.Context) -> Settings:
    """The config file ``tide --config`` named (or the default one), its warnings said
    on stderr."""
    from tokentide.config.load import load_settings

    settings = load_settings(state(ctx).config)
    for warning in settings.warnings:
        typer.echo(warning, err=True)
    return settings


def fail(error: TideError, *, mask: bool = False) -> typer.Exit:
    """Say ``error`` on stderr, sanitised, and give the exit to raise (its exit code).

    ``mask``: a URL password the message quotes is masked, and control characters are
    shown as escapes (the commands that name servers: ``config``, ``models``).
    """
    if mask:
        from tokentide.config.secrets import mask_url
        from tokentide.config.show import visible

        text = visible(mask_url(str(error)))
    else:
        from tokentide.sanitize import sanitize

        text = sanitize(str(error))
    typer.echo(f"tide: {text}", err=True)
    return typer.Exit(code=error.exit_code)
