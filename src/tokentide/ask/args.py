"""What a ``tide ask`` is given and what it keeps: its command line (:class:`AskArgs`),
how it writes (:class:`AskOptions`), and what the history saves of the answer
(:class:`Answer`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tokentide.ask.tools import AskRounds
    from tokentide.generation import Generation

__all__ = ["Answer", "AskArgs", "AskOptions"]


@dataclass(frozen=True, slots=True)
class AskArgs:
    """The command line of ``tide ask``: one field per option of
    :data:`tokentide.cli.ask_options.ASK_OPTIONS` (which says what each means), and the prompt."""

    prompt: tuple[str, ...] = ()
    profile: str | None = None
    template: str | None = None
    api: str | None = None
    url: str | None = None
    model: str | None = None
    api_key_env: str | None = None
    target: str | None = None
    system: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    seed: int | None = None
    no_stream: bool = False
    json: bool = False
    stats: bool = False
    raw: bool = False
    continue_last: bool = False
    conversation: str | None = None
    no_log: bool = False
    mcp: tuple[str, ...] = ()
    functions: tuple[str, ...] = ()
    approve: str | None = None
    allow_tool: tuple[str, ...] = ()
    attach: tuple[str, ...] = ()
    config: str | None = None
    debug: bool = False


@dataclass(frozen=True, slots=True)
class AskOptions:
    stream: bool = True
    json: bool = False
    stats: bool = False
    raw: bool = False


@dataclass(slots=True)
class Answer:
    """What the history saves of an answer, filled in by :func:`run_ask` when given one:
    the generation, which holds the model's text exactly as received (stdout may have
    had it sanitised), its reasoning, state, error, stats and the server's model."""

    generation: Generation | None = None
    rounds: AskRounds | None = None
    """With tools: the rounds, whose builder holds the whole answer (calls, results)."""
    stopped: bool = False
    """Ctrl+C, or a call no one could approve, ended it (saved as ``stopped``)."""
