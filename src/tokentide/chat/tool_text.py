"""A tool call and its result as one short line for a person, as the app's blocks and
``tide ask``'s stderr show them: ``▸ calc.add(a=2, b=3) → 5``.

Everything here is untrusted (the model wrote the call, the tool its result): it is
sanitised and cut to one line.  The whole arguments and result are shown where there
is room for them (the app's expanded block, ``--json``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from tokentide.backends.events import ToolCallRequested
from tokentide.backends.tool_spec import ToolResult

if TYPE_CHECKING:
    from tokentide.tools import ToolSource

__all__ = ["KIND_NAMES", "call_text", "pretty_arguments", "result_text", "source_text", "tool_line"]

KIND_NAMES = {"mcp-stdio": "MCP server", "mcp-http": "MCP server", "functions": "functions file"}
"""A tool source's kind as a person says it."""


def source_text(source: ToolSource) -> str:
    """``MCP server 'calc'`` / ``functions file 'my_tools'``, sanitised."""
    from tokentide.sanitize import sanitize_title

    kind = KIND_NAMES.get(source.kind, source.kind)
    return f"{kind} {sanitize_title(source.source, 60)!r}"


def _value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)


def call_text(
    call: ToolCallRequested, source: ToolSource | None = None, *, limit: int = 120
) -> str:
    """``server.tool(a=2, b='x')``: the tool qualified by where it comes from, the
    arguments as keywords when they are a JSON object (else as the model wrote them)."""
    from tokentide.sanitize import sanitize_title

    name = call.name if source is None else f"{source.source}.{source.original}"
    try:
        arguments = json.loads(call.arguments) if call.arguments.strip() else {}
    except (ValueError, RecursionError):
        arguments = None
    if isinstance(arguments, dict):
        shown = ", ".join(f"{key}={_value(value)}" for key, value in arguments.items())
    else:
        shown = call.arguments
    return f"{sanitize_title(name, 60)}({sanitize_title(shown, limit)})"


def result_text(result: ToolResult, *, limit: int = 120) -> str:
    """The result on one line (``error: ...`` for a failed call), cut to ``limit``."""
    from tokentide.sanitize import sanitize_title

    text = sanitize_title(" ".join(result.content.split()), limit)
    return f"error: {text}" if result.is_error else text


def tool_line(
    call: ToolCallRequested,
    source: ToolSource | None = None,
    result: ToolResult | None = None,
    *,
    denied: str | None = None,
) -> str:
    """``▸ calc.add(a=2, b=3) → 5``; ``… running`` before the result, ``✗ denied: why``."""
    head = f"▸ {call_text(call, source)}"
    if denied is not None:
        from tokentide.sanitize import sanitize_title

        return f"{head} ✗ not run: {sanitize_title(denied, 120)}"
    if result is None:
        return f"{head} …"
    return f"{head} → {result_text(result)}"


def pretty_arguments(call: ToolCallRequested) -> str:
    """The arguments as indented JSON (as the model wrote them when they are not JSON),
    sanitised: for the approval dialog and the expanded block."""
    from tokentide.sanitize import sanitize

    try:
        value = json.loads(call.arguments) if call.arguments.strip() else {}
        text = json.dumps(value, indent=2, ensure_ascii=False)
    except (ValueError, RecursionError):
        text = call.arguments
    return sanitize(text)
