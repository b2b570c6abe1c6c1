"""``tide config path|show|init|check``: where the config file is, what tokentide makes
of it, a commented example, and whether a profile's server answers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from tokentide.cli.context import fail, load_config, state
from tokentide.cli.options import ProfileOpt
from tokentide.errors import TideError

if TYPE_CHECKING:
    from tokentide.backends.base import ReportsHealth

__all__ = ["config_app"]

config_app = typer.Typer(help="Show, create and check the config file.", add_completion=False)


@config_app.command("path")
def config_path_cmd(ctx: typer.Context) -> None:
    """Print where the config file is (or would be)."""
    from tokentide.config.paths import config_path
    from tokentide.config.show import visible

    typer.echo(visible(str(config_path(state(ctx).config))))


@config_app.command("init")
def config_init(ctx: typer.Context) -> None:
    """Write a commented example config file (mode 0600)."""
    from tokentide.config.load import write_example
    from tokentide.config.paths import config_path

    path = config_path(state(ctx).config)
    try:
        write_example(path)
    except TideError as error:
        raise fail(error) from None
    typer.echo(f"wrote {path}")


@config_app.command("show")
def config_show(ctx: typer.Context) -> None:
    """Show the profiles as tokentide understands them (secrets masked)."""
    from tokentide.config.load import BUILTIN_LOCAL
    from tokentide.config.show import show_lines

    try:
        settings = load_config(ctx)
    except TideError as error:
        raise fail(error) from None
    for line in show_lines(settings, BUILTIN_LOCAL):
        typer.echo(line)


@config_app.command("check")
def config_check(ctx: typer.Context, profile: ProfileOpt = None) -> None:
    """Check a profile: can its backend be built, and does the server answer?"""
    import asyncio

    from tokentide.backends.base import GenerationRequest, ReportsHealth
    from tokentide.backends.registry import create_backend
    from tokentide.config.load import resolve_profile
    from tokentide.config.secrets import mask_url
    from tokentide.config.show import visible
    from tokentide.generation import Generation

    try:
        settings = load_config(ctx)
        chosen = resolve_profile(settings, profile)
        backend = create_backend(chosen)
    except TideError as error:
        raise fail(error, mask=True) from None

    async def probe() -> Generation:
        request = GenerationRequest.from_prompt("Say OK.", max_tokens=4, model=chosen.model)
        gen = Generation(backend, request, deadlines=chosen.deadlines)
        try:
            async with gen:
                await gen.wait()
        finally:
            await backend.aclose()
        return gen

    gen = asyncio.run(probe())
    if isinstance(backend, ReportsHealth):
        _health(backend)
    if gen.error is not None:
        raise fail(gen.error, mask=True)
    ttft = gen.stats.ttft
    typer.echo(
        f"ok: {visible(mask_url(backend.name))} answered"
        + (f" (first token {ttft * 1000:.0f} ms)" if ttft else "")
    )


def _health(backend: ReportsHealth) -> None:
    """The server's own health answers (Triton: server live/ready, model ready, tensor
    names), for a backend that has them (:class:`~tokentide.backends.base.ReportsHealth`)."""
    import asyncio

    from tokentide.sanitize import sanitize

    async def ask() -> dict[str, Any]:
        try:
            result: dict[str, Any] = await backend.probe()
            return result
        finally:
            await backend.aclose()

    report = asyncio.run(ask())
    for key in ("server", "model", "live", "ready", "model_ready"):
        typer.echo(f"{key}: {sanitize(str(report.get(key)))}")
    for problem in report.get("problems", []):
        typer.echo(f"problem: {sanitize(str(problem))}")
