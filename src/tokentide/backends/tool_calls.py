"""Tool calls on the wire, both ways, in the OpenAI, Anthropic and Ollama dialects.

From the server, made into :class:`~tokentide.backends.events.ToolCallRequested`:

* :class:`FragmentAssembler`: streamed calls whose pieces arrive by index (OpenAI
  ``delta.tool_calls[{index, id, function: {name, arguments: "<fragment>"}}]``, the id and
  name on the first fragment only, TGI repeating them; Anthropic ``tool_use`` blocks with
  ``input_json_delta`` fragments).  A fragment at a known index that brings a *new* id
  starts a new call (servers that number every call 0).
* :func:`describe`: ``NAME(ARGS)`` made safe and short for a terminal.

A non-streaming answer carries its calls in :attr:`~tokentide.backends.base.Reply.tool_calls`;
a non-streaming :class:`~tokentide.generation.Generation` queues them as
``ToolCallRequested`` events before the ``Finish``, as a stream would.  An answer that
asked for calls ends with finish reason ``tool_calls`` (:func:`finish_reason`), whatever
the server called it (Anthropic ``tool_use``, Ollama and vLLM's forced calls ``stop``).

To the server (only when a request offers tools or its conversation holds calls, so a
request without them is byte for byte what it was): the tool definitions and choice
(:func:`openai_tools`, :func:`anthropic_tools`, :func:`ollama_tools`), and the
assistant turns that asked for calls and the results that answer them
(:func:`openai_messages`, :func:`anthropic_messages`, :func:`ollama_messages`).  The same
functions write a user turn's pictures (:mod:`~tokentide.backends.media`), again only
where there are some.

Arguments the model wrote that are not a JSON object (cut short, malformed, a bare
string) cannot go back as they are: Anthropic's ``input`` and Ollama's ``arguments`` must
be objects, and llama.cpp's server and vLLM parse OpenAI's argument string.  Such calls
are sent back with ``{}`` (:func:`arguments_object`); the tool's error result, which says
what was wrong, tells the model the rest.

A call without an id (Ollama names none; a conversation moved from one server to
another) gets one made from its position (``call_<turn>_<n>``), and its result the same
id, matched by the result's own id, else its name, else its order (:func:`call_ids`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tokentide.backends.events import ToolCallRequested
from tokentide.backends.media import anthropic_content, ollama_images, openai_content
from tokentide.backends.tool_spec import ForcedTool, ToolChoice, ToolSpec

if TYPE_CHECKING:
    from tokentide.backends.base import Message

__all__ = [
    "FragmentAssembler",
    "anthropic_messages",
    "anthropic_tools",
    "arguments_object",
    "arguments_text",
    "call_ids",
    "describe",
    "finish_reason",
    "ollama_messages",
    "ollama_tools",
    "openai_messages",
    "openai_tools",
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
        self._done: list[_Pending] = []
        """Calls a later call at the same index replaced, in order."""

    def add(self, key: object, *, id: Any = None, name: Any = None, arguments: Any = None) -> None:
        """One fragment: an id or name (kept once seen; repeats and nulls ignored) and a
        piece of the arguments.  A different id at the same key starts a new call."""
        call = self._calls.get(key)
        new_id = _str_or_none(id)
        if call is not None and call.id is not None and new_id is not None and new_id != call.id:
            self._done.append(self._calls.pop(key))
            call = None
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
        calls = [_finished(call) for call in (*self._done, *self._calls.values())]
        self._calls.clear()
        self._done.clear()
        return calls


def _finished(call: _Pending) -> ToolCallRequested:
    return ToolCallRequested(call.name or "(unnamed tool)", "".join(call.parts), call.id)


def describe(call: ToolCallRequested, *, limit: int = 200) -> str:
    """``NAME(ARGS)`` for a person: sanitised, on one line, the arguments cut to about
    ``limit`` characters and the name to 60."""
    from tokentide.sanitize import sanitize_title

    return f"{sanitize_title(call.name, 60)}({sanitize_title(call.arguments, limit)})"


def finish_reason(reason: str | None, asked: bool) -> str | None:
    """``tool_calls`` for an answer that asked for calls and that the server ended with
    ``stop`` or no reason (Ollama; vLLM's forced calls); any other reason as it came."""
    return "tool_calls" if asked and reason in (None, "stop") else reason


# -- to the server ------------------------------------------------------------------------


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text) if text.strip() else {}
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def arguments_object(text: str) -> dict[str, Any]:
    """A call's arguments as the JSON object to send back (Anthropic ``input``, Ollama
    ``arguments``); ``{}`` for text that is not one (see the module docstring)."""
    value = _json_object(text)
    return {} if value is None else value


def _arguments_json(text: str) -> str:
    """OpenAI's argument string: the model's own text when it is a JSON object (``"{}"``
    for none), else ``"{}"``."""
    return text if text.strip() and _json_object(text) is not None else "{}"


def call_ids(messages: Sequence[Message]) -> list[tuple[str, ...] | str | None]:
    """The id each message's calls (an assistant turn: a tuple) or result (a tool
    message: a string) go out with: the server's own where it gave one, else one made
    from its position.  Other messages: None."""
    ids: list[tuple[str, ...] | str | None] = []
    open_calls: list[tuple[str, str]] = []  # (id, name) not yet answered, in order
    for turn, message in enumerate(messages):
        if message.role == "assistant" and message.tool_calls:
            made = tuple(c.id or f"call_{turn}_{n}" for n, c in enumerate(message.tool_calls))
            open_calls = [(i, c.name) for i, c in zip(made, message.tool_calls, strict=True)]
            ids.append(made)
        elif message.role == "tool":
            ids.append(_answered(message, open_calls, turn))
        else:
            ids.append(None)
    return ids


def _answered(message: Message, open_calls: list[tuple[str, str]], turn: int) -> str:
    """The id of the call ``message`` answers, taken off ``open_calls``."""
    for key in (0, 1):
        wanted = message.tool_call_id if key == 0 else message.name
        for position, call in enumerate(open_calls):
            if wanted is not None and call[key] == wanted:
                return open_calls.pop(position)[0]
    if message.tool_call_id:
        return message.tool_call_id
    return open_calls.pop(0)[0] if open_calls else f"call_{turn}_result"


def _function(spec: ToolSpec) -> dict[str, Any]:
    return {"name": spec.name, "description": spec.description, "parameters": dict(spec.parameters)}


def openai_tools(specs: Sequence[ToolSpec], choice: ToolChoice) -> dict[str, Any]:
    """``tools`` and ``tool_choice`` for OpenAI's chat completions (nothing without tools)."""
    if not specs:
        return {}
    chosen: Any = choice
    if isinstance(choice, ForcedTool):
        chosen = {"type": "function", "function": {"name": choice.name}}
    return {
        "tools": [{"type": "function", "function": _function(spec)} for spec in specs],
        "tool_choice": chosen,
    }


def openai_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """``messages`` for OpenAI's chat completions; plain turns as ``{role, content}``."""
    out: list[dict[str, Any]] = []
    for message, ids in zip(messages, call_ids(messages), strict=True):
        if isinstance(ids, tuple):
            calls = [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": _arguments_json(call.arguments)},
                }
                for call_id, call in zip(ids, message.tool_calls, strict=True)
            ]
            # "" rather than null for no text: llama-cpp-python's server refuses null
            out.append({"role": "assistant", "content": message.content, "tool_calls": calls})
        elif isinstance(ids, str):
            out.append({"role": "tool", "tool_call_id": ids, "content": message.content})
        elif message.images and message.role == "user":
            out.append({"role": "user", "content": openai_content(message.content, message.images)})
        else:
            out.append({"role": message.role, "content": message.content})
    return out


_ANTHROPIC_CHOICE = {"auto": "auto", "required": "any", "none": "none"}


def anthropic_tools(specs: Sequence[ToolSpec], choice: ToolChoice) -> dict[str, Any]:
    """``tools`` (``input_schema``) and ``tool_choice`` (``auto``, ``any``, ``none`` or
    ``tool``) for Anthropic's Messages API (nothing without tools)."""
    if not specs:
        return {}
    chosen = (
        {"type": "tool", "name": choice.name}
        if isinstance(choice, ForcedTool)
        else {"type": _ANTHROPIC_CHOICE[choice]}
    )
    tools = [
        {"name": spec.name, "description": spec.description, "input_schema": dict(spec.parameters)}
        for spec in specs
    ]
    return {"tools": tools, "tool_choice": chosen}


def anthropic_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """``messages`` for Anthropic (system turns left out: they go in ``system``).

    An assistant turn with calls is content blocks (its text, then one ``tool_use`` each);
    results are ``tool_result`` blocks in a user turn, consecutive ones in the same turn
    (Anthropic requires every result of a turn's calls in the next message), and a user's
    text right after them joins that turn as a text block."""
    out: list[dict[str, Any]] = []
    results: list[dict[str, Any]] | None = None  # the open user turn of tool results
    for message, ids in zip(messages, call_ids(messages), strict=True):
        if message.role == "system":
            continue
        if isinstance(ids, str):
            block: dict[str, Any] = {"type": "tool_result", "tool_use_id": ids}
            if message.content:  # optional, and an empty one is not worth a refusal
                block["content"] = message.content
            block["is_error"] = message.is_error
            if results is None:
                results = []
                out.append({"role": "user", "content": results})
            results.append(block)
            continue
        if results is not None and message.role == "user":
            if message.images:
                results.extend(anthropic_content(message.content, message.images))
            else:
                results.append({"type": "text", "text": message.content})
            results = None
            continue
        results = None
        if isinstance(ids, tuple):
            blocks: list[dict[str, Any]] = []
            if message.content:
                blocks.append({"type": "text", "text": message.content})
            for call_id, call in zip(ids, message.tool_calls, strict=True):
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": call_id,
                        "name": call.name,
                        "input": arguments_object(call.arguments),
                    }
                )
            out.append({"role": "assistant", "content": blocks})
        elif message.images and message.role == "user":
            blocks = anthropic_content(message.content, message.images)
            out.append({"role": "user", "content": blocks})
        else:
            out.append({"role": message.role, "content": message.content})
    return out


def ollama_tools(specs: Sequence[ToolSpec], choice: ToolChoice) -> dict[str, Any]:
    """``tools`` for Ollama's ``/api/chat`` (OpenAI's shape).  Ollama has no
    ``tool_choice``: ``none`` sends no tools, the other choices send them as offered."""
    if not specs or choice == "none":
        return {}
    return {"tools": [{"type": "function", "function": _function(spec)} for spec in specs]}


def ollama_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """``messages`` for Ollama: calls with their arguments as objects, results as
    ``{"role": "tool", "content", "tool_name"}`` (Ollama matches them by name)."""
    out: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "assistant" and message.tool_calls:
            calls = [
                {"function": {"name": c.name, "arguments": arguments_object(c.arguments)}}
                for c in message.tool_calls
            ]
            out.append({"role": "assistant", "content": message.content, "tool_calls": calls})
        elif message.role == "tool":
            result: dict[str, Any] = {"role": "tool", "content": message.content}
            if message.name:
                result["tool_name"] = message.name
            out.append(result)
        elif message.images and message.role == "user":
            images = ollama_images(message.images)
            out.append({"role": "user", "content": message.content, "images": images})
        else:
            out.append({"role": message.role, "content": message.content})
    return out
