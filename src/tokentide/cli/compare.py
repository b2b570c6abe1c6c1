"""``tide compare``: the command.  :func:`register` adds it to the ``tide`` Typer app;
the comparison itself is :mod:`tokentide.compare` (one engine, with this headless view
and the live screen, :mod:`tokentide.tui.compare_screen`).

    tide compare PROMPT -P NAME [-P NAME ...] [--mode both|stream|create]
                 [--runs N] [--warmup K] [--sequential] [--json | --csv]
                 [-t TEMPLATE] [--max-tokens N] [--temperature T] [--seed S]
                 [--api KIND --url URL --model M --api-key-env VAR]

On a terminal (and without ``--json``/``--csv``) it opens the live comparison screen;
otherwise (a pipe, a file, ``--json``, ``--csv``) it runs headless and prints a plain
table (or JSON / CSV).  Exit codes: 0 every run succeeded, 4 some run failed (each
failure is reported with its run), 2 usage or configuration error, 130 interrupted.

Importing this module is cheap: the runner, backends and Textual are imported when the
command runs.
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, Annotated, Any

import typer

from tokentide.cli.context import fail, load_config
from tokentide.cli.options import (
    ApiKeyEnvOpt,
    ApiOpt,
    MaxTokensOpt,
    ModelOpt,
    SeedOpt,
    TemperatureOpt,
    TemplateOpt,
    UrlOpt,
)
from tokentide.errors import EXIT_INTERRUPTED, TideError, UsageError

if TYPE_CHECKING:
    from tokentide.compare.runner import Comparison, Mode, Target
    from tokentide.config.model import Profile

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "compare", "register"]

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_FAILED = 4


class ModeChoice(enum.StrEnum):
    both = "both"
    stream = "stream"
    create = "create"

    @property
    def modes(self) -> tuple[Mode, ...]:
        if self is ModeChoice.both:
            return ("stream", "create")
        return ("stream",) if self is ModeChoice.stream else ("create",)


def register(app: typer.Typer) -> None:
    """Add the ``compare`` command to ``app``."""
    app.command(
        "compare",
        help="Streaming vs non-streaming (or several backends), side by side, with numbers.",
    )(compare)


def compare(
    ctx: typer.Context,
    prompt: Annotated[
        str | None,
        typer.Argument(help="The prompt (headless: else read from piped stdin)."),
    ] = None,
    profiles: Annotated[
        list[str] | None,
        typer.Option("--profile", "-P", help="Profile to compare; repeat for several."),
    ] = None,
    mode: Annotated[
        ModeChoice,
        typer.Option("--mode", help="both: stream and create; or only one of them."),
    ] = ModeChoice.both,
    runs: Annotated[
        int, typer.Option("--runs", "-n", min=1, help="Counted runs per target × mode (headless).")
    ] = 3,
    warmup: Annotated[
        int, typer.Option("--warmup", min=0, help="Warm-up runs first, not counted (headless).")
    ] = 1,
    sequential: Annotated[
        bool,
        typer.Option(
            "--sequential",
            help="One request at a time (default: every target × mode at the same moment).",
        ),
    ] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="One JSON document: every run and the summaries.")
    ] = False,
    csv_out: Annotated[bool, typer.Option("--csv", help="One CSV row per run.")] = False,
    max_tokens: MaxTokensOpt = None,
    template: TemplateOpt = None,
    temperature: TemperatureOpt = None,
    seed: SeedOpt = None,
    api: ApiOpt = None,
    url: UrlOpt = None,
    model: ModelOpt = None,
    api_key_env: ApiKeyEnvOpt = None,
) -> None:
    """Streaming vs non-streaming (or several backends), side by side, with numbers."""
    from tokentide.compare.runner import make_targets

    headless = json_out or csv_out or not _isatty(sys.stdout)
    try:
        if json_out and csv_out:
            raise UsageError("Give --json or --csv, not both.")
        chosen = _profiles(
            ctx, profiles or [], template,
            api=api, url=url, model=model, api_key_env=api_key_env,
            max_tokens=max_tokens, temperature=temperature, seed=seed,
        )  # fmt: skip
        text = _prompt(prompt, sys.stdin, required=headless)
        targets = make_targets(chosen)
    except TideError as error:
        raise fail(error) from None
    if headless:
        code = run_headless(
            targets,
            text or "",
            modes=mode.modes,
            runs=runs,
            warmup=warmup,
            sequential=sequential,
            output="json" if json_out else "csv" if csv_out else "table",
        )
    else:
        from tokentide.tui.compare_screen import run_compare_app  # deferred: Textual

        code = run_compare_app(chosen, text, modes=mode.modes, targets=targets)
    raise typer.Exit(code=code)


# -- helpers ----------------------------------------------------------------------------


def _isatty(stream: IO[Any]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _profiles(
    ctx: typer.Context,
    names: Sequence[str],
    template_name: str | None,
    *,
    api: str | None,
    url: str | None,
    model: str | None,
    api_key_env: str | None,
    max_tokens: int | None,
    temperature: float | None,
    seed: int | None,
) -> list[Profile]:
    """-P profiles with the template, then the flags, applied; else an ad-hoc profile from
    --api/--url/...; else the template's profile, else the default profile."""
    from tokentide.config.load import profile_from_flags, resolve_profile

    flags: dict[str, Any] = {
        "api": api, "url": url, "model": model, "api_key_env": api_key_env,
        "max_tokens": max_tokens, "temperature": temperature, "seed": seed,
    }  # fmt: skip
    settings = load_config(ctx) if names or api is None or template_name is not None else None
    template = None
    if settings is not None and template_name is not None:
        from tokentide.config.templates import resolve_template

        template = resolve_template(settings, template_name)
    if not names and api is not None:
        return [profile_from_flags(None, template=template, **flags)]
    assert settings is not None
    if not names:
        names = [template.profile] if template is not None and template.profile else []
    bases = [resolve_profile(settings, name) for name in names] or [resolve_profile(settings)]
    return [profile_from_flags(base, template=template, **flags) for base in bases]


def _prompt(prompt: str | None, stdin: IO[str] | None, *, required: bool) -> str | None:
    text = prompt
    if not text and stdin is not None and not _isatty(stdin):
        text = stdin.read()
    if text is not None and text.strip():
        return text
    if required:
        raise UsageError(
            "No prompt given.",
            hint='Usage: tide compare "your question" -P PROFILE [--runs N] [--json]',
        )
    return None


# -- headless ---------------------------------------------------------------------------


def run_headless(
    targets: Sequence[Target],
    prompt: str,
    *,
    modes: Sequence[Mode],
    runs: int,
    warmup: int,
    sequential: bool,
    output: str = "table",
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
) -> int:
    """Run the comparison without a screen; print it; return the exit code."""
    import asyncio

    from tokentide.compare.runner import Comparison, close_targets

    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    comparison = Comparison(
        targets, prompt, modes=modes, runs=runs, warmup=warmup, sequential=sequential
    )
    if _isatty(err):
        how = "one at a time" if sequential else "concurrently"
        _write(
            err,
            f"running {runs} run{'s' if runs != 1 else ''}"
            + (f" (+{warmup} warm-up)" if warmup else "")
            + f" of {len(targets)} target{'s' if len(targets) != 1 else ''} × "
            + f"{'/'.join(modes)} {how}…\n",
        )

    async def main() -> None:
        try:
            await comparison.run()
        finally:
            await close_targets(targets)

    interrupted = False
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        interrupted = True
    _print(comparison, output, out, interrupted=interrupted)
    if interrupted:
        _write(err, "stopped\n")
        _notice_create(comparison, err)
        return EXIT_INTERRUPTED
    return EXIT_OK if comparison.ok else EXIT_FAILED


def _notice_create(comparison: Comparison, err: IO[str]) -> None:
    """Reliability C5: a non-streaming request cannot be stopped on some servers."""
    if any(mode == "create" for _, mode in comparison.in_flight):
        _write(
            err,
            "note: a non-streaming request was in flight; some servers (llama.cpp, "
            "LM Studio) keep generating that answer until it is complete.\n",
        )


def _write(stream: IO[str], text: str) -> None:
    try:
        stream.write(text)
        stream.flush()
    except (BrokenPipeError, ValueError):
        pass


def _print(comparison: Comparison, output: str, out: IO[str], *, interrupted: bool) -> None:
    import json

    from tokentide.compare.report import csv_report, json_report, text_report

    if output == "json":
        document = json_report(comparison, interrupted=interrupted)
        _write(out, json.dumps(document, ensure_ascii=True, indent=2) + "\n")
    elif output == "csv":
        _write(out, csv_report(comparison.results))
    else:
        _write(out, text_report(comparison, interrupted=interrupted) + "\n")
