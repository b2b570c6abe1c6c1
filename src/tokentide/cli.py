"""The ``tide`` command line.

    tide                      chat on a terminal; with piped stdin, same as ``tide ask``
    tide ask [PROMPT]...      one-shot: the answer streamed to stdout (never imports Textual;
                              a well-formed one never imports typer either: entry.py)
    tide chat                 the Textual chat app
    tide compare PROMPT       streaming vs non-streaming, side by side
    tide config path|show|init|check
    tide history list|show|export|delete
    tide models [-P NAME]     the models the server offers

Importing this module is cheap: backends, Textual and the history store are imported by
the commands that need them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from tokentide.errors import TideError

__all__ = ["app", "main"]

app = typer.Typer(
    name="tide",
    help="Chat with language models in the terminal, tokens rendered live as they stream.",
    add_completion=True,  # tide --install-completion; startup cost: docs in README
    no_args_is_help=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Show, create and check the config file.", add_completion=False)
app.add_typer(config_app, name="config")


class _State:
    config: Path | None = None
    debug: bool = False
    """``tide --debug`` set the debug log up already."""


def config_option() -> Path | None:
    """The config file named with ``tide --config``, if any (for subcommand modules)."""
    return _State.config


def _fail(error: TideError) -> typer.Exit:
    from tokentide.sanitize import sanitize

    typer.echo(f"tide: {sanitize(str(error))}", err=True)
    return typer.Exit(code=error.exit_code)


def load_config() -> Any:
    """The config file ``tide --config`` named (or the default one), its warnings said
    on stderr (for subcommand modules too)."""
    from tokentide.config.load import load_settings

    settings = load_settings(_State.config)
    for warning in settings.warnings:
        typer.echo(warning, err=True)
    return settings


ProfileOpt = Annotated[
    str | None, typer.Option("--profile", "-P", help="Profile from the config file.")
]


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
    _State.config = config
    _State.debug = debug
    if debug:
        from tokentide.config.paths import data_dir
        from tokentide.logsetup import setup_debug_log

        path = setup_debug_log(data_dir() / "debug.log")
        typer.echo(f"debug log: {path}", err=True)
    if ctx.invoked_subcommand is not None:
        return
    if not sys.stdin.isatty():
        ctx.invoke(ask)  # cat notes.md | tide
    else:
        ctx.invoke(chat)


def _ask_command() -> Callable[..., None]:
    """``tide ask`` with the options of :data:`tokentide.entry.ASK_OPTIONS`.

    Its options are declared once, there, because the entry point reads a well-formed
    ``tide ask`` without importing typer (see :mod:`tokentide.entry`); this command is
    what prints its help and its errors, completes it, and runs it otherwise.
    """
    import inspect

    from tokentide.entry import ASK_OPTIONS

    def ask(**values: Any) -> None:
        """Send one prompt and stream the answer to stdout.

        Piped stdin is appended to the prompt after a blank line.
        """
        from tokentide.ask import AskArgs
        from tokentide.ask import main as ask_main

        values["prompt"] = tuple(values.get("prompt") or ())
        if _State.debug:
            values["debug"] = False  # tide --debug set the log up already
        config = str(_State.config) if _State.config else None
        raise typer.Exit(code=ask_main(AskArgs(**values), config=config))

    annotated: Any = Annotated  # built from data, so not a type mypy can check
    keyword = inspect.Parameter.KEYWORD_ONLY
    prompt = typer.Argument(help="The prompt (words are joined with spaces).", show_default=False)
    parameters = [
        inspect.Parameter("prompt", keyword, default=None, annotation=annotated[list[str] | None, prompt])
    ]  # fmt: skip
    for option in ASK_OPTIONS:
        flag = option.kind is bool
        info = typer.Option(
            *option.names, help=option.help, metavar=option.metavar, show_default=False
        )
        kind: Any = option.kind if flag else option.kind | None
        parameters.append(
            inspect.Parameter(
                option.dest, keyword, default=False if flag else None, annotation=annotated[kind, info]
            )
        )  # fmt: skip
    ask.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    return ask


ask = app.command(
    "ask",
    epilog="Exit codes: 0 ok, 2 usage or config, 3 cannot connect, 4 server or protocol "
    "error or a tool call (tools are off), 5 timeout, 130 interrupted.",
)(_ask_command())


@app.command()
def chat(
    profile: ProfileOpt = None,
    continue_last: Annotated[
        bool, typer.Option("--continue", help="Open the last conversation.")
    ] = False,
    conversation: Annotated[
        str | None,
        typer.Option(
            "--conversation",
            help="Open this conversation: its id, or a unique prefix (tide history list).",
        ),
    ] = None,
) -> None:
    """Open the chat app."""
    from tokentide.config.load import resolve_profile

    try:
        settings = load_config()
        chosen = resolve_profile(settings, profile)
        if conversation is not None:
            # The same prefixes as `tide history`, and its errors (exit 2), before Textual.
            from tokentide.history.cli import resolve_conversation

            conversation = resolve_conversation(conversation)
    except TideError as error:
        raise _fail(error) from None
    from tokentide.tui.app import run_chat  # deferred: pulls in Textual

    raise typer.Exit(
        code=run_chat(settings, chosen, conversation_id=conversation, continue_last=continue_last)
    )


@config_app.command("path")
def config_path_cmd() -> None:
    """Print where the config file is (or would be)."""
    from tokentide.config.paths import config_path
    from tokentide.config.show import visible

    typer.echo(visible(str(config_path(_State.config))))


@config_app.command("init")
def config_init() -> None:
    """Write a commented example config file (mode 0600)."""
    from tokentide.config.load import write_example
    from tokentide.config.paths import config_path

    path = config_path(_State.config)
    try:
        write_example(path)
    except TideError as error:
        raise _fail(error) from None
    typer.echo(f"wrote {path}")


@config_app.command("show")
def config_show() -> None:
    """Show the profiles as tokentide understands them (secrets masked)."""
    from tokentide.config.load import BUILTIN_LOCAL
    from tokentide.config.show import show_lines

    try:
        settings = load_config()
    except TideError as error:
        raise _fail(error) from None
    for line in show_lines(settings, BUILTIN_LOCAL):
        typer.echo(line)


@config_app.command("check")
def config_check(profile: ProfileOpt = None) -> None:
    """Check a profile: can its backend be built, and does the server answer?"""
    import asyncio

    from tokentide.backends.base import GenerationRequest
    from tokentide.backends.registry import create_backend
    from tokentide.config.load import resolve_profile
    from tokentide.config.secrets import mask_url
    from tokentide.config.show import visible
    from tokentide.generation import Generation

    try:
        settings = load_config()
        chosen = resolve_profile(settings, profile)
        backend = create_backend(chosen)
    except TideError as error:
        raise _fail_masked(error) from None

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
    if chosen.api == "triton-grpc":
        _grpc_health(backend)
    if gen.error is not None:
        raise _fail_masked(gen.error)
    ttft = gen.stats.ttft
    typer.echo(
        f"ok: {visible(mask_url(backend.name))} answered"
        + (f" (first token {ttft * 1000:.0f} ms)" if ttft else "")
    )


def _fail_masked(error: TideError) -> typer.Exit:
    """:func:`_fail` for the config commands: a URL password the message quotes is masked."""
    from tokentide.config.secrets import mask_url
    from tokentide.config.show import visible

    typer.echo(f"tide: {visible(mask_url(str(error)))}", err=True)
    return typer.Exit(code=error.exit_code)


def _grpc_health(backend: Any) -> None:
    """Triton's own health answers: server live/ready, model ready, tensor names."""
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


def _register_subcommands() -> None:
    """Commands that live with their own packages (imported only for the full CLI)."""
    from tokentide.compare.cli import register
    from tokentide.history.cli import history_app
    from tokentide.models_cli import register as register_models

    app.add_typer(
        history_app,
        name="history",
        help="List, show, export, import and delete saved conversations.",
    )
    register(app)
    register_models(app)


def main(argv: list[str] | None = None) -> None:
    """Run the typer app on ``argv`` (default: the process's arguments)."""
    _register_subcommands()
    app(args=argv)
