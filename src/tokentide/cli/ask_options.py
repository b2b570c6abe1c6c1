"""The options of ``tide ask``, declared once: the typer command (:mod:`.ask`) is made
from them, the one-shot entry point (:mod:`.entry`) reads a well-formed command line
with :func:`parse_ask` without importing typer, and the other commands take their
shared options (``--api``, ``--url``, ``--model``, ...) from here too (:mod:`.options`).

Imports nothing but the standard library: the one-shot path starts here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["ASK_OPTIONS", "AskOption", "option", "parse_ask"]


@dataclass(frozen=True, slots=True)
class AskOption:
    """One option of ``tide ask``; the typer command in :mod:`tokentide.cli.ask` is
    made from these, and :func:`parse_ask` reads them the same way."""

    dest: str
    """The field of :class:`tokentide.ask.AskArgs` it sets."""
    names: tuple[str, ...]
    kind: type[str] | type[int] | type[float] | type[bool]
    """``bool``: a flag; otherwise the option takes one value of this type."""
    help: str
    metavar: str | None = None
    many: bool = False
    """The option may be given several times; every value is kept, in order (a tuple)."""


ASK_OPTIONS: Final = (
    AskOption("profile", ("--profile", "-P"), str, "Profile from the config file.", "NAME"),
    AskOption(
        "template", ("--template", "-t"), str,
        "Template from the config file ([templates.NAME]): its profile or model, system "
        "prompt and sampling; the other options beat it.", "NAME",
    ),
    AskOption("api", ("--api",), str, "Backend kind for an ad-hoc profile (openai, tgi, ollama, ...).", "KIND"),
    AskOption("url", ("--url",), str, "Server base URL, e.g. http://127.0.0.1:8000/v1.", "URL"),
    AskOption("model", ("--model", "-m"), str, "Model name sent to the server.", "NAME"),
    AskOption("api_key_env", ("--api-key-env",), str, "Environment variable holding the API key.", "VAR"),
    AskOption("target", ("--target",), str, "For --api local: path/to/file.py:function or module:function.", "TARGET"),
    AskOption("system", ("--system", "-s"), str, "System prompt.", "TEXT"),
    AskOption("max_tokens", ("--max-tokens",), int, "Most tokens to generate.", "N"),
    AskOption("temperature", ("--temperature",), float, "Sampling temperature (no short form: -t is --template).", "T"),
    AskOption("seed", ("--seed",), int, "Sampling seed.", "N"),
    AskOption("no_stream", ("--no-stream",), bool, "Wait for the whole answer (the server's non-streaming request)."),
    AskOption("json", ("--json",), bool, "One JSON object per event on stdout."),
    AskOption("stats", ("--stats",), bool, "Time to first token, tokens, tokens/s on stderr."),
    AskOption("raw", ("--raw",), bool, "Write the model's text unmodified (unsafe on a terminal)."),
    AskOption("continue_last", ("--continue", "-c"), bool, "Continue the most recent conversation (its active branch); starts one if there is none."),
    AskOption("conversation", ("--conversation",), str, "Continue this conversation: its id, or a unique prefix (tide history list).", "ID"),
    AskOption("no_log", ("--no-log",), bool, "Do not save this exchange in the history (log = false in the config: never)."),
    AskOption("mcp", ("--mcp",), str, "MCP servers from this JSON file ({\"mcpServers\": {...}}, as Claude Desktop writes it); repeat for more.", "FILE", many=True),
    AskOption("functions", ("--functions",), str, "Python functions in this file as tools; repeat for more.", "FILE.py", many=True),
    AskOption("approve", ("--approve",), str, "Which tool calls run: ask (default: asks, or in a pipe exits 2 at the first call), all, none.", "ask|all|none"),
    AskOption("allow_tool", ("--allow-tool",), str, "This tool runs without asking; repeat for more.", "NAME", many=True),
    AskOption("attach", ("--attach", "-a"), str, "Attach a text file, a folder's text files (.gitignore honoured), a picture (PNG, JPEG, GIF, WebP), or - for stdin; repeat for more.", "PATH", many=True),
    AskOption("config", ("--config",), str, "Config file (default: $TIDE_CONFIG or the platform config dir).", "PATH"),
    AskOption("debug", ("--debug",), bool, "Write a debug log (secrets redacted) for bug reports."),
)  # fmt: skip
_ASK_BY_NAME: Final = {name: option for option in ASK_OPTIONS for name in option.names}
_INT: Final = re.compile(r"-?[0-9]+")
_FLOAT: Final = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
"""Values read the same by ``int()``/``float()`` and by typer (pydantic); any other
spelling (``1_000``, ``nan``, ``٣``, `` 5``) is left to typer to accept or refuse."""


def parse_ask(args: list[str]) -> dict[str, Any] | None:
    """The options and prompt words of ``tide ask ARGS`` as typer reads them, or ``None``
    when typer must read them (help, an error, a form this reader does not take).

    Taken: ``--name value``, ``--name=value``, ``-X value``, flags, prompt words
    anywhere, ``--`` before words that start with ``-``; the last of a repeated option
    wins; an option's value is the next word whatever it looks like (as in click).
    """
    values: dict[str, Any] = {}
    prompt: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            prompt.extend(args[i:])
            break
        if arg[:1] != "-" or arg == "-":
            prompt.append(arg)
            continue
        name, equals, attached = arg.partition("=") if arg[:2] == "--" else (arg, "", "")
        option = _ASK_BY_NAME.get(name)
        if option is None:
            return None
        if option.kind is bool:
            if equals:
                return None
            values[option.dest] = True
            continue
        if equals:
            text = attached
        elif i < len(args):
            text = args[i]
            i += 1
        else:
            return None
        if option.many:
            values[option.dest] = (*values.get(option.dest, ()), text)
        elif option.kind is str:
            values[option.dest] = text
        elif (_INT if option.kind is int else _FLOAT).fullmatch(text):
            values[option.dest] = option.kind(text)
        else:
            return None
    values["prompt"] = tuple(prompt)
    return values


def option(dest: str) -> AskOption:
    """The declaration of the option that sets ``dest`` (for the commands that share it)."""
    return next(o for o in ASK_OPTIONS if o.dest == dest)
