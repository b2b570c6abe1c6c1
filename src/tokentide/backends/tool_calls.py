"""Tool calls as the OpenAI, Anthropic and Ollama dialects send them, made into
:class:`~tokentide.backends.events.ToolCallRequested`.

tokentide offers the model no tools, but a server can still answer with a call (a
profile's ``params`` may declare tools, or the model may be trained to call them).  The
dialects parse such calls so that they are reported instead of vanishing.

* :class:`FragmentAssembler`: streamed calls whose pieces arrive by index (OpenAI
  ``delta.tool_calls[{index, id, function: {name, arguments: "<fragment>"}}]``, the id and
  name on the first fragment only, TGI repeating them; Anthropic ``tool_use`` blocks with
  ``input_json_delta`` fragments).
* :func:`describe`: ``NAME(ARGS)`` made safe and short for a terminal.

A non-streaming answer carries its calls in :attr:`~tokentide.backends.base.Reply.tool_calls`;
a non-streaming :class:`~tokentide.generation.Generation` queues them as
``ToolCallRequested`` events before the ``Finish``, as a stream would.
"""

from __future__ import annotations

import json
from typing import Any

from tokentide.backends.events import ToolCallRequested

__all__ = [
    "FragmentAssembler",
    "arguments_text",
    "describe",
]


def arguments_text(value: Any) -> str:
    """Arguments as JSON text: a string as sent, anything else serialised."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        return "(arguments too deeply nested to show)"


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


class _Pending:
    __slots__ = ("id", "name", "parts")

    def __init__(self) -> None:
        self.id: str | None = None
        self.name: str | None = None
        self.parts: list[str] = []


class FragmentAssembler:
    """Joins the fragments of streamed tool calls, keyed by their index."""

    def __init__(self) -> None:
        self._calls: dict[object, _Pending] = {}

    def add(self, key: object, *, id: Any = None, name: Any = None, arguments: Any = None) -> None:
        """One fragment: an id or name (kept once seen; repeats and nulls ignored) and a
        piece of the arguments."""
        call = self._calls.get(key)
        if call is None:
            call = self._calls[key] = _Pending()
        if call.id is None:
            call.id = _str_or_none(id)
        if call.name is None:
            call.name = _str_or_none(name)
        if isinstance(arguments, str):
            call.parts.append(arguments)
        elif arguments is not None:
            call.parts.append(arguments_text(arguments))

    def pop(self, key: object) -> list[ToolCallRequested]:
        """The finished call at ``key`` (none if there is none)."""
        call = self._calls.pop(key, None)
        return [] if call is None else [_finished(call)]

    def flush(self) -> list[ToolCallRequested]:
        """Every call still open, in the order they started."""
        calls = [_finished(call) for call in self._calls.values()]
        self._calls.clear()
        return calls


def _finished(call: _Pending) -> ToolCallRequested:
    return ToolCallRequested(call.name or "(unnamed tool)", "".join(call.parts), call.id)


def describe(call: ToolCallRequested, *, limit: int = 200) -> str:
    """``NAME(ARGS)`` for a person: sanitised, on one line, the arguments cut to about
    ``limit`` characters and the name to 60."""
    from tokentide.sanitize import sanitize_title

    return f"{sanitize_title(call.name, 60)}({sanitize_title(call.arguments, limit)})"
