"""``tide models``: the models a profile's server offers.  :func:`register` adds it to
the ``tide`` Typer app.

    tide models [-P NAME | --api KIND --url URL [--api-key-env VAR]] [--json]

Output, chosen for where stdout goes:

* a terminal: a table (model id, context window in tokens, what else the server says),
  the profile's own model marked ``*``, under a line naming the server;
* a pipe or a file: one model id per line and nothing else, as ``cut``, ``fzf`` and
  ``xargs`` want them (``tide models -P vllm | head -1``);
* ``--json``: one JSON document for scripts (``docs/models.md`` has its shape); ids
  exactly as the server sent them, every non-ASCII or control character escaped, so
  it is safe on a terminal too.

Everything the server sent is sanitised (:mod:`tokentide.sanitize`) before the table
or the lines show it.  Exit codes: 0 listed (even an empty list), 2 usage or
configuration (including an api that has no model list), 3 cannot connect, 4 the
server refused or sent something that is not a model list, 5 timeout, 130 interrupted.

Importing this module is cheap: the backends are imported when the command runs.
"""

from __future__ import annotations

import json
import sys
from typing import IO, TYPE_CHECKING, Annotated, Any

import typer

from tokentide.cli.context import fail, load_config
from tokentide.cli.options import ApiKeyEnvOpt, ApiOpt, ProfileOpt, UrlOpt
from tokentide.errors import EXIT_INTERRUPTED, TideError

if TYPE_CHECKING:
    from tokentide.backends.models import ModelInfo
    from tokentide.config.model import Profile

__all__ = ["models", "register", "render_json", "render_lines", "render_table"]

_ID_WIDTH = 48
"""Widest id column padded for; longer ids push their row's columns right."""


def register(app: typer.Typer) -> None:
    """Add the ``models`` command to ``app``."""
    app.command("models", help="List the models the server of a profile offers.")(models)


def models(
    ctx: typer.Context,
    profile: ProfileOpt = None,
    api: ApiOpt = None,
    url: UrlOpt = None,
    api_key_env: ApiKeyEnvOpt = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON document (ids exactly as sent).")
    ] = False,
) -> None:
    """List the models the server of a profile offers."""
    import asyncio

    from tokentide.backends.models import list_models

    try:
        chosen = _profile(ctx, profile, api=api, url=url, api_key_env=api_key_env)
        listed = asyncio.run(list_models(chosen))
    except TideError as error:
        raise fail(error, mask=True) from None
    except KeyboardInterrupt:
        raise typer.Exit(code=EXIT_INTERRUPTED) from None
    out = sys.stdout
    if as_json:
        out.write(render_json(listed, chosen) + "\n")
    elif _isatty(out):
        out.write("".join(line + "\n" for line in render_table(listed, chosen)))
        _note_missing(listed, chosen)
    else:
        out.write("".join(line + "\n" for line in render_lines(listed)))
    out.flush()


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _profile(
    ctx: typer.Context,
    name: str | None,
    *,
    api: str | None,
    url: str | None,
    api_key_env: str | None,
) -> Profile:
    """``-P NAME`` (or the default profile) with the flags applied; an ad-hoc profile
    from ``--api``/``--url`` when no profile is named."""
    from tokentide.config.load import profile_from_flags, resolve_profile

    flags: dict[str, Any] = {"api": api, "url": url, "api_key_env": api_key_env}
    if name is None and api is not None:
        return profile_from_flags(None, **flags)
    return profile_from_flags(resolve_profile(load_config(ctx), name), **flags)


def _where(profile: Profile) -> str | None:
    """The server's URL as shown (the environment's when the profile names none; a
    password in it masked), or None for the in-process backends."""
    import os

    from tokentide.backends.registry import api_spec, with_env_url
    from tokentide.config.secrets import mask_url

    if not api_spec(profile.api).needs_url:
        return None
    try:
        url = with_env_url(profile, os.environ).url
    except TideError:
        url = profile.url
    return mask_url(url) if url else None


# -- output -----------------------------------------------------------------------------


def render_lines(listed: list[ModelInfo]) -> list[str]:
    """One sanitised id per line (a pipe's output)."""
    return [info.label() for info in listed]


def render_table(listed: list[ModelInfo], profile: Profile) -> list[str]:
    """The terminal's table: a heading line, the column titles, one row per model."""
    from tokentide.backends.models import is_configured
    from tokentide.sanitize import sanitize_title

    where = _where(profile)
    server = sanitize_title(f"{profile.api} {where}" if where else profile.api, 200)
    count = f"{len(listed)} model{'s' if len(listed) != 1 else ''}"
    lines = [f"{count} at {server} (profile {sanitize_title(profile.name, 60)!r})"]
    if not listed:
        return lines
    labels = [info.label() for info in listed]
    width = min(max(len("MODEL"), *(len(label) for label in labels)), _ID_WIDTH)
    contexts = [f"{info.context_window:,}" if info.context_window else "–" for info in listed]
    cwidth = max(len("CONTEXT"), *(len(c) for c in contexts))
    lines.append(f"  {'MODEL':<{width}}  {'CONTEXT':>{cwidth}}  DETAILS")
    marked = False
    for info, label, context in zip(listed, labels, contexts, strict=True):
        mine = is_configured(info, profile)
        marked = marked or mine
        details = info.detail_text()
        if info.owned_by and info.owned_by != "local":
            owner = sanitize_title(info.owned_by, 40)
            details = f"owned by {owner}" + (f", {details}" if details else "")
        row = f"{'*' if mine else ' '} {label:<{width}}  {context:>{cwidth}}  {details}"
        lines.append(row.rstrip())
    if marked:
        lines.append("* the model the profile uses")
    return lines


def _note_missing(listed: list[ModelInfo], profile: Profile) -> None:
    from tokentide.backends.models import configured_model
    from tokentide.sanitize import sanitize_title

    if profile.model and listed and configured_model(listed, profile) is None:
        typer.echo(
            f"tide: profile {sanitize_title(profile.name, 60)!r} asks for model "
            f"{sanitize_title(profile.model, 120)!r}, which the server does not list.",
            err=True,
        )


def render_json(listed: list[ModelInfo], profile: Profile) -> str:
    """The ``--json`` document (see docs/models.md)."""
    from tokentide.backends.models import is_configured

    document = {
        "profile": profile.name,
        "api": profile.api,
        "url": _where(profile),
        "model": profile.model,
        "models": [
            {
                "id": info.id,
                "context_window": info.context_window,
                "owned_by": info.owned_by,
                "ready": info.ready,
                "configured": is_configured(info, profile),
                "details": dict(info.details),
            }
            for info in listed
        ],
    }
    # ensure_ascii: control and non-ASCII characters travel as \u escapes, exact for a
    # script and inert on a terminal.
    return json.dumps(document, ensure_ascii=True, indent=2)
