"""MCP's shapes turned into the protocol's: a listed ``Tool`` into a
:class:`~tokentide.backends.tool_spec.ToolSpec`, a ``CallToolResult`` into the text the
model reads.

Only called once a server is running, so the SDK is already imported; the types are
named for mypy alone (``TYPE_CHECKING``), and the code reads attributes, so this module
can be imported without the SDK.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final

from tokentide.backends.tool_spec import ToolSpec

if TYPE_CHECKING:
    import mcp_types

__all__ = ["MAX_RESULT_CHARS", "result_text", "tool_spec"]

MAX_RESULT_CHARS: Final = 100_000
"""Longer results are cut (with a note): a tool dumping a whole file would otherwise
fill the model's context window and the screen."""


def tool_spec(tool: mcp_types.Tool) -> ToolSpec:
    schema: dict[str, Any] = dict(tool.input_schema or {})
    schema.setdefault("type", "object")
    if schema.get("type") == "object":
        schema.setdefault("properties", {})
    return ToolSpec(name=tool.name, description=tool.description or "", parameters=schema)


def _block_text(block: object) -> str:
    kind = getattr(block, "type", "")
    if kind == "text":
        return str(getattr(block, "text", ""))
    if kind in ("image", "audio"):
        data = str(getattr(block, "data", ""))
        size = len(data) * 3 // 4  # base64
        return f"[{kind} {getattr(block, 'mime_type', '')}, {size} bytes, not shown]"
    if kind == "resource_link":
        return f"[resource {getattr(block, 'uri', '')}]"
    if kind == "resource":
        resource = getattr(block, "resource", None)
        text = getattr(resource, "text", None)
        if isinstance(text, str):
            return text
        return f"[resource {getattr(resource, 'uri', '')}, binary, not shown]"
    return f"[{kind or 'unknown'} content, not shown]"


def result_text(result: mcp_types.CallToolResult) -> str:
    """The result as text: text blocks joined by newlines; other blocks named; the
    structured content (JSON) when there is nothing else."""
    parts = [_block_text(block) for block in result.content]
    text = "\n".join(part for part in parts if part)
    if not text and result.structured_content is not None:
        try:
            text = json.dumps(result.structured_content, ensure_ascii=False)
        except (TypeError, ValueError):
            text = str(result.structured_content)
    return truncate(text)


def truncate(text: str, limit: int = MAX_RESULT_CHARS) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n[… {len(text) - limit} more characters cut by tide]"
