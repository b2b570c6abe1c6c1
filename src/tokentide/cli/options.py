"""Options that several commands take, declared once.

Each is made from its declaration in :data:`~tokentide.cli.ask_options.ASK_OPTIONS`
(names, help, metavar), so ``tide ask --url``, ``tide compare --url`` and
``tide models --url`` are the same option.  The Python type is written out here, where
mypy can check it; the declaration's ``kind`` says the same (checked by
tests/test_cli_options.py).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from tokentide.cli.ask_options import option

__all__ = [
    "AllowToolOpt",
    "ApiKeyEnvOpt",
    "ApiOpt",
    "ApproveOpt",
    "FunctionsOpt",
    "MaxTokensOpt",
    "McpOpt",
    "ModelOpt",
    "ProfileOpt",
    "SeedOpt",
    "TemperatureOpt",
    "TemplateOpt",
    "UrlOpt",
]


def _typer(dest: str, help: str | None = None) -> Any:
    declared = option(dest)
    return typer.Option(
        *declared.names, help=help or declared.help, metavar=declared.metavar, show_default=False
    )


ProfileOpt = Annotated[str | None, _typer("profile")]
TemplateOpt = Annotated[str | None, _typer("template")]
ApiOpt = Annotated[str | None, _typer("api")]
UrlOpt = Annotated[str | None, _typer("url")]
ModelOpt = Annotated[str | None, _typer("model")]
ApiKeyEnvOpt = Annotated[str | None, _typer("api_key_env")]
MaxTokensOpt = Annotated[int | None, _typer("max_tokens")]
TemperatureOpt = Annotated[float | None, _typer("temperature")]
SeedOpt = Annotated[int | None, _typer("seed")]
McpOpt = Annotated[list[str] | None, _typer("mcp")]
FunctionsOpt = Annotated[list[str] | None, _typer("functions")]
ApproveOpt = Annotated[str | None, _typer("approve")]
AllowToolOpt = Annotated[list[str] | None, _typer("allow_tool")]
