"""The options several commands share are declared once (tokentide.cli.ask_options) and
made into typer options in tokentide.cli.options; the Python types written there agree
with the declarations, and the commands show the same option the same way."""

from __future__ import annotations

import types
import typing

import pytest
from typer.testing import CliRunner

from tokentide.cli import options
from tokentide.cli.app import app, register_subcommands
from tokentide.cli.ask_options import ASK_OPTIONS

SHARED = list(options.__all__)


@pytest.mark.parametrize("name", SHARED)
def test_each_shared_option_has_the_declared_type_and_names(name: str) -> None:
    kind, info = typing.get_args(getattr(options, name))
    # In an Annotated option typer takes the first name as the "default" argument.
    names = (info.default, *info.param_decls)
    declared = next(o for o in ASK_OPTIONS if names == o.names)
    assert isinstance(kind, types.UnionType)
    wanted = list[declared.kind] if declared.many else declared.kind  # type: ignore[name-defined]
    assert set(typing.get_args(kind)) == {wanted, type(None)}
    assert info.help == declared.help


def _help_line(command: list[str], flag: str) -> str:
    register_subcommands()
    result = CliRunner().invoke(app, [*command, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    return next(line.split(maxsplit=2)[-1] for line in result.output.splitlines()
                if line.strip().startswith(flag))  # fmt: skip


@pytest.mark.parametrize("flag", ["--url", "--api-key-env", "--api"])
def test_ask_compare_and_models_show_one_option_the_same_way(flag: str) -> None:
    shown = {_help_line(command, flag) for command in (["ask"], ["compare"], ["models"])}
    assert len(shown) == 1, shown
